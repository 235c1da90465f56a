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
