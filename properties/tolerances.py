"""Every numerical tolerance moegate uses, defined once, each with the reason for its size.

Two kinds of tolerance:
- Tie tolerance, on biased scores b (and group scores): two candidates whose b differ by no more than
  `TIE_ATOL + TIE_RTOL * max(|b1|, |b2|)` are a near-tie, and either order is a valid selection,
  because two correct float32 implementations may differ by a few ulp in p (expf, the softmax sum's
  order) and so flip a near-tie. Candidates with *identical inputs* (the same logit and the same bias
  entry) get identical b in any deterministic implementation: for them the lower-index rule is exact.
- Weight tolerance, on the returned weights: the contract does all arithmetic in float32 after an
  exact conversion of the inputs, so the tolerance does not depend on the input dtype; it covers a few
  ulp of expf and of the (differently ordered) sums of softmax and renormalization.
"""

from __future__ import annotations

import torch

# b = p + bias with p in [0, 1]: an ulp of p near 1 is 6e-8, and cancellation against the bias can leave
# that absolute error on a b near 0, so the absolute part is ~16 ulp of 1. The relative part is ~80 ulp.
TIE_ATOL = 1e-6
TIE_RTOL = 1e-5

# (rtol, atol) per input dtype. The same for all three on purpose: float16 and bfloat16 inputs are
# converted to float32 exactly, so the only error is float32 rounding (expf <= 2 ulp on CUDA, softmax and
# renormalization sums of up to 1024 terms in another order: well under 1e-5 relative). The absolute
# part covers weights near 0 (sigmoid of very negative logits, where expf underflows differently).
WEIGHT_TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float32: (1e-5, 1e-6),
    torch.float16: (1e-5, 1e-6),
    torch.bfloat16: (1e-5, 1e-6),
}

# The effective-weight invariant (SPEC.md): c * w_shared == 1 and the routed sum == r "up to float32
# rounding": (1 / r) * r and a renormalized sum of K <= 1024 terms are within this of the exact value.
INVARIANT_RTOL = 1e-5


def weight_tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for weights produced from scores of `dtype`."""
    if dtype not in WEIGHT_TOLERANCES:
        raise TypeError(f"dtype={dtype}, but weight tolerances exist for {tuple(WEIGHT_TOLERANCES)}")
    return WEIGHT_TOLERANCES[dtype]


def tie_width(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The allowed difference for two biased scores (broadcasting, float32): TIE_ATOL + TIE_RTOL * max|.|.

    Infinite scores tie only with equal infinities (the width is inf, but inf - inf is handled by
    `near_tie`).
    """
    return TIE_ATOL + TIE_RTOL * torch.maximum(x.abs(), y.abs())


def near_tie(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Elementwise: x and y are equal, or both finite and within the tie width of each other."""
    finite = torch.isfinite(x) & torch.isfinite(y)
    close = (x - y).abs() <= tie_width(x, y)
    return (x == y) | (finite & close)


# ---- weights written in a narrower dtype ------------------------------------------------------------------
# Some kernels write topk_weights in the scores' dtype (FlashInfer writes bfloat16 weights for bfloat16
# logits). Such a weight is right when it is the correctly rounded SPEC weight, within the float32 error
# above: it lies between the rounded ends of the float32 tolerance interval. The weights are still handed
# to the oracle as float32 (the conversion from bfloat16 or float16 is exact).
WEIGHT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def check_weight_dtype(weight_dtype: torch.dtype) -> torch.dtype:
    """`weight_dtype` if it is one of WEIGHT_DTYPES; TypeError otherwise."""
    if weight_dtype not in WEIGHT_DTYPES:
        raise TypeError(f"weight_dtype={weight_dtype}, but weight_dtype must be one of {WEIGHT_DTYPES}")
    return weight_dtype


def round_to_weight_dtype(x: torch.Tensor, weight_dtype: torch.dtype) -> torch.Tensor:
    """x (float64) rounded as a kernel rounds its float32 result into `weight_dtype`, back in float64."""
    rounded = x.to(torch.float32)
    if weight_dtype != torch.float32:
        rounded = rounded.to(weight_dtype)
    return rounded.to(torch.float64)


def weight_bounds(
    expected: torch.Tensor,
    input_dtype: torch.dtype,
    weight_dtype: torch.dtype = torch.float32,
    *,
    expected_rounded: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The interval [lo, hi] (float64, elementwise) a returned weight must lie in.

    expected: the exact (float64) or reference (float32) weights. float32 weights: expected -+ (atol + rtol *
    |expected|). A narrower `weight_dtype`: the ends of that interval rounded into it. With
    `expected_rounded` (expected is itself a weight the same kernel wrote in `weight_dtype`, as when a
    relation compares two calls), one ulp of `weight_dtype` more on each side: a float32 sum taken in
    another order may cross a rounding boundary.
    """
    rtol, atol = weight_tolerance(input_dtype)
    expected = expected.to(torch.float64)
    tol = atol + rtol * expected.abs()
    lo, hi = expected - tol, expected + tol
    if check_weight_dtype(weight_dtype) == torch.float32:
        return lo, hi
    lo, hi = round_to_weight_dtype(lo, weight_dtype), round_to_weight_dtype(hi, weight_dtype)
    if expected_rounded:
        lo = torch.nextafter(lo.to(weight_dtype), torch.full_like(lo, float("-inf")).to(weight_dtype))
        hi = torch.nextafter(hi.to(weight_dtype), torch.full_like(hi, float("inf")).to(weight_dtype))
        lo, hi = lo.to(torch.float64), hi.to(torch.float64)
    return lo, hi


def weights_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    input_dtype: torch.dtype,
    weight_dtype: torch.dtype = torch.float32,
    *,
    expected_rounded: bool = False,
) -> torch.Tensor:
    """Elementwise: `actual` lies in `weight_bounds(expected, ...)` (NaN never does)."""
    lo, hi = weight_bounds(expected, input_dtype, weight_dtype, expected_rounded=expected_rounded)
    actual = actual.to(torch.float64)
    return (actual >= lo) & (actual <= hi)


def rounding_rtol(weight_dtype: torch.dtype) -> float:
    """Half an ulp of `weight_dtype`, relative: the rounding error of one weight written in it (0 for
    float32, whose rounding the weight tolerance already covers)."""
    check_weight_dtype(weight_dtype)
    return 0.0 if weight_dtype == torch.float32 else float(torch.finfo(weight_dtype).eps) / 2
