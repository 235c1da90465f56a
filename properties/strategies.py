"""Hypothesis strategies for routing configurations and problems (config + scores + bias).

`routing_configs()` draws valid `RoutingConfig`s: the presets, small and large E (up to 1024), G = 1,
one expert per group (G = E), K at its maximum Kg * E / G, S from 0 to 4, both shared modes, both
scaling modes, both scorings, renormalize on and off, awkward r values.

`routing_problems()` draws a config, scores [T, E] and an optional bias [E] of independent dtypes,
on a device. Big tensors are generated from a drawn seed with `torch.Generator` (fast, and the seed
shrinks); the tie structures that matter for top-k are drawn by Hypothesis itself as small arrays with
a `fill` value (many exact ties, shrinkable). Each row is one of `ROW_KINDS`:

    gaussian     logits N(0, s^2) for s in 0.01 .. 100
    ties         logits from 3 distinct values: exact ties everywhere
    near_ties    one value and its neighbours within 2 ulp (float32): near-ties that are not exact
    bf16_small   N(0, 1e-3) rounded to bfloat16: few distinct values near 0, many exact ties
    huge         N(0, 1) * 1e4 or * 1e30 (float16 overflows to inf)
    nonfinite    gaussian with NaN, +inf and -inf sprinkled in
    all_nan      every logit NaN
    all_neg_inf  every logit -inf (p = 0 everywhere)
    very_negative logits in [-120, -40]: sigmoid underflows, all-zero p rows (the 1e-20 epsilon)
    tie_block    up to 3 rows drawn by Hypothesis from `TIE_VALUES` with a `fill` value (shrinkable ties)

and the bias is one of `BIAS_KINDS` (none, DeepSeek-like small per-expert values, ties, large, negative
(b < 0 for most experts), zero, non-finite entries). Arguments are validated when a strategy is built,
not when it is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from moegate.reference import (
    BIAS_DTYPES,
    SCORE_DTYPES,
    RoutingConfig,
    get_preset,
    preset_names,
)

from .problem import RoutingProblem

ROW_KINDS = (
    "gaussian",
    "ties",
    "near_ties",
    "bf16_small",
    "huge",
    "nonfinite",
    "all_nan",
    "all_neg_inf",
    "very_negative",
    "tie_block",
)
BIAS_KINDS = ("none", "deepseek", "ties", "large", "negative", "zero", "nonfinite")

# Experts counts: small and odd ones first (Hypothesis shrinks toward the front), then real model sizes.
EXPERT_COUNTS = (1, 2, 3, 4, 5, 6, 8, 9, 12, 16, 20, 24, 32, 48, 60, 64, 128, 160, 256, 384, 512, 1024)
# r: 1 first, then real models' values, then awkward ones (1/r not exact, tiny, huge).
SCALING_FACTORS = (1.0, 2.5, 2.827, 16.0, 2.446, 0.5, 1.0 / 3.0, 0.1, 1e-3, 1e3, 7.0)
# Values of the Hypothesis-drawn tie blocks (0 first: shrinks there).
TIE_VALUES = (0.0, 1.0, -1.0, 0.5, 2.0, -0.25, 1e-3, 4.0, float("nan"), float("inf"), float("-inf"))
# Largest T * E of one drawn problem (keeps one example cheap: 32 rows at E = 1024).
MAX_ELEMENTS = 32 * 1024

_DTYPE_NAMES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def parse_dtypes(name: str, value: Any, allowed: tuple[torch.dtype, ...]) -> tuple[torch.dtype, ...]:
    """A tuple of torch dtypes from None (all `allowed`), one dtype/name, or a sequence of them."""
    if value is None:
        return allowed
    items = [value] if isinstance(value, torch.dtype | str) else value
    if not isinstance(items, Sequence) or len(items) == 0:
        raise ValueError(f"{name}={value!r}, but {name} must be None or a non-empty sequence of dtypes")
    out = []
    for item in items:
        dtype = (
            _DTYPE_NAMES.get(item.strip().lower().replace("torch.", "")) if isinstance(item, str) else item
        )
        if dtype not in allowed:
            raise ValueError(f"{name} contains {item!r}, but each must be one of {allowed}")
        out.append(dtype)
    return tuple(dict.fromkeys(out))


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r} ({type(value).__name__}), but {name} must be a bool")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}={value!r} ({type(value).__name__}), but {name} must be an int")
    if value < minimum:
        raise ValueError(f"{name}={value!r}, but {name} must be >= {minimum}")


# ---- configurations ------------------------------------------------------------------------------------


def routing_configs(
    *, presets: bool = True, max_experts: int = 1024, max_shared: int = 4
) -> st.SearchStrategy[RoutingConfig]:
    """Valid RoutingConfigs: presets (if `presets`) and drawn ones with E <= max_experts, S <= max_shared.

    Drawn configs cover G = 1, one expert per group (G = E) and every divisor between, Kg from 1 to G,
    K = 1, small, random and at its maximum Kg * E / G, both scorings, renormalize on/off, both shared
    modes and S in 0..max_shared, the scaling on the output or not, r from `SCALING_FACTORS`.
    """
    _check_bool("presets", presets)
    _check_int("max_experts", max_experts, 1)
    _check_int("max_shared", max_shared, 0)
    counts = [e for e in EXPERT_COUNTS if e <= max_experts] or [max_experts]
    preset_list = [get_preset(n) for n in preset_names() if get_preset(n).num_experts <= max_experts]
    preset_list = [
        c if c.num_fused_shared_experts <= max_shared else c.replace(num_fused_shared_experts=max_shared)
        for c in preset_list
    ]

    @st.composite
    def drawn(draw: st.DrawFn) -> RoutingConfig:
        E = draw(st.sampled_from(counts))
        # G = 1, G = E (one expert per group), or a proper divisor: groups of >= 2 experts, where the
        # group score (top-2 sum with a bias) and the kept/dropped boundary matter most.
        proper = [d for d in range(2, E) if E % d == 0]
        G = draw(st.one_of(st.just(1), st.just(E), *([st.sampled_from(proper)] * 2 if proper else [])))
        Kg = draw(st.one_of(st.integers(1, G), st.integers(1, max(1, G - 1))))
        max_k = Kg * (E // G)
        K = draw(st.one_of(st.integers(1, min(max_k, 8)), st.just(max_k), st.integers(1, max_k)))
        S = draw(st.integers(0, max_shared))
        return RoutingConfig(
            num_experts=E,
            topk=K,
            num_expert_group=G,
            topk_group=Kg,
            scoring_func=draw(st.sampled_from(("sigmoid", "softmax"))),
            renormalize=draw(st.booleans()),
            routed_scaling_factor=draw(st.sampled_from(SCALING_FACTORS)),
            num_fused_shared_experts=S,
            shared_expert_mode=draw(st.sampled_from(("split", "replica"))),
            apply_routed_scaling_factor_on_output=draw(st.booleans()),
        )

    @st.composite
    def preset_variant(draw: st.DrawFn) -> RoutingConfig:
        config = draw(st.sampled_from(preset_list))
        # The presets' deployment knobs vary between engines: where r is applied, how S is folded in.
        return config.replace(
            apply_routed_scaling_factor_on_output=draw(st.booleans()),
            shared_expert_mode=draw(st.sampled_from(("split", "replica"))),
        )

    if presets and preset_list:
        return st.one_of(drawn(), preset_variant())
    return drawn()


# ---- scores and bias -----------------------------------------------------------------------------------


def _row_values(kind: str, E: int, gen: torch.Generator) -> torch.Tensor:
    """One row [E] float32 of the given ROW_KIND, from the generator."""
    if kind == "gaussian":
        scales = torch.tensor([0.01, 0.1, 1.0, 1.0, 3.0, 10.0, 100.0])
        scale = scales[torch.randint(len(scales), (1,), generator=gen)]
        return torch.randn(E, generator=gen) * scale
    if kind == "ties":
        values = torch.randn(3, generator=gen).to(torch.bfloat16).float()
        return values[torch.randint(3, (E,), generator=gen)]
    if kind == "near_ties":
        x = torch.full((E,), float(torch.randn(1, generator=gen)))
        steps = torch.randint(-2, 3, (E,), generator=gen)
        for direction in (1, -1):
            for _ in range(2):
                moving = steps * direction > 0
                toward = torch.full_like(x, direction * float("inf"))
                x = torch.where(moving, torch.nextafter(x, toward), x)
                steps = torch.where(moving, steps - direction, steps)
        return x
    if kind == "bf16_small":
        return (torch.randn(E, generator=gen) * 1e-3).to(torch.bfloat16).float()
    if kind == "huge":
        scale = 1e4 if bool(torch.randint(2, (1,), generator=gen)) else 1e30
        return torch.randn(E, generator=gen) * scale
    if kind == "nonfinite":
        x = torch.randn(E, generator=gen)
        which = torch.randint(10, (E,), generator=gen)
        x = torch.where(which == 0, torch.full_like(x, float("nan")), x)
        x = torch.where(which == 1, torch.full_like(x, float("inf")), x)
        return torch.where(which == 2, torch.full_like(x, float("-inf")), x)
    if kind == "all_nan":
        return torch.full((E,), float("nan"))
    if kind == "all_neg_inf":
        return torch.full((E,), float("-inf"))
    if kind == "very_negative":
        return -40.0 - 80.0 * torch.rand(E, generator=gen)
    raise ValueError(f"kind={kind!r}, but kind must be one of {ROW_KINDS}")


def _bias_values(kind: str, E: int, gen: torch.Generator) -> torch.Tensor | None:
    if kind == "none":
        return None
    if kind == "deepseek":
        return torch.randn(E, generator=gen) * 0.01
    if kind == "ties":
        return torch.tensor([0.0, 0.01, -0.01])[torch.randint(3, (E,), generator=gen)]
    if kind == "large":
        return torch.randn(E, generator=gen)
    if kind == "negative":
        # b = p + bias < 0 for most experts: a dropped-group sentinel of 0 (instead of -inf) then beats
        # every kept expert, the "wrong group sentinel" bug class.
        return -0.5 - torch.rand(E, generator=gen)
    if kind == "zero":
        return torch.zeros(E)
    if kind == "nonfinite":
        bias = torch.randn(E, generator=gen) * 0.01
        positions = torch.randint(E, (min(E, 2),), generator=gen)
        specials = torch.tensor([float("nan"), float("inf"), float("-inf")])
        return bias.index_put((positions,), specials[torch.randint(3, (len(positions),), generator=gen)])
    raise ValueError(f"kind={kind!r}, but kind must be one of {BIAS_KINDS}")


def move_problem(problem: RoutingProblem, device: str | torch.device) -> RoutingProblem:
    """`problem` with its tensors on `device`, keeping a row stride larger than E (a slice of a wider
    tensor stays a slice: the wider tensor is moved and sliced again)."""
    device = torch.device(device)
    if problem.device == device:
        return problem
    scores = problem.scores
    base = scores._base
    if (
        base is not None
        and base.dim() == 2
        and scores.shape[0] > 1
        and base.shape[0] == scores.shape[0]
        and base.stride() == scores.stride()
    ):
        offset = scores.storage_offset() - base.storage_offset()
        moved = base.to(device)[:, offset : offset + scores.shape[1]]
    else:
        moved = scores.to(device)
    bias = None if problem.bias is None else problem.bias.to(device)
    return RoutingProblem(problem.config, moved, bias, seed=problem.seed, note=problem.note)


def routing_problems(
    *,
    configs: st.SearchStrategy[RoutingConfig] | Sequence[RoutingConfig | str] | None = None,
    dtypes: Sequence[torch.dtype | str] | torch.dtype | str | None = None,
    bias_dtypes: Sequence[torch.dtype | str] | torch.dtype | str | None = None,
    device: str | torch.device = "cpu",
    max_rows: int = 64,
    min_rows: int = 0,
    row_kinds: Sequence[str] | None = None,
    bias_kinds: Sequence[str] | None = None,
    row_stride: str = "any",
) -> st.SearchStrategy[RoutingProblem]:
    """RoutingProblems: a config, scores [T, E] and bias [E] or None.

    Args:
        configs: a strategy of RoutingConfigs, a sequence of configs or preset names, or None
            (`routing_configs()`).
        dtypes: score dtypes to draw from (torch dtypes or names "float32", "bf16", ...); None: all three.
        bias_dtypes: bias dtypes, drawn independently of the scores' dtype; None: all three; "scores": the
            bias always in the scores' dtype (kernels that take nothing else).
        device: where the tensors are placed (generated on CPU, then moved; the row stride is kept).
        max_rows, min_rows: T is drawn in [min_rows, max_rows], further capped so that T * E <= 32768
            and T * G * G <= 2^22 (keeps one example cheap for the oracle).
        row_kinds, bias_kinds: restrict the generators (subsets of ROW_KINDS, BIAS_KINDS).
        row_stride: "any" (some problems get a row stride larger than E, padded with NaN), "contiguous", or
            "padded" (every problem of T > 1 rows gets one).

    Each problem's `seed` is the drawn generator seed; `note` lists the row and bias kinds used.
    """
    if configs is None:
        config_strategy = routing_configs()
    elif isinstance(configs, st.SearchStrategy):
        config_strategy = configs
    elif isinstance(configs, Sequence) and not isinstance(configs, str) and len(configs) > 0:
        resolved = []
        for c in configs:
            if isinstance(c, str):
                resolved.append(get_preset(c))
            elif isinstance(c, RoutingConfig):
                resolved.append(c)
            else:
                raise TypeError(f"configs contains {c!r}, but each must be a RoutingConfig or a preset name")
        config_strategy = st.sampled_from(resolved)
    else:
        raise TypeError(
            f"configs={configs!r}, but configs must be None, a strategy, or a non-empty sequence of "
            "RoutingConfigs / preset names"
        )
    score_dtypes = parse_dtypes("dtypes", dtypes, SCORE_DTYPES)
    same_dtype_bias = isinstance(bias_dtypes, str) and bias_dtypes == "scores"
    bias_dtype_list = (
        BIAS_DTYPES if same_dtype_bias else parse_dtypes("bias_dtypes", bias_dtypes, BIAS_DTYPES)
    )
    pads = {"any": (0, 0, 1, 3, 8), "contiguous": (0,), "padded": (1, 3, 8)}
    if row_stride not in pads:
        raise ValueError(f"row_stride={row_stride!r}, but row_stride must be one of {tuple(pads)}")
    try:
        torch_device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r}, but device must name a torch device ({e})") from None
    _check_int("min_rows", min_rows, 0)
    _check_int("max_rows", max_rows, 0)
    if max_rows < min_rows:
        raise ValueError(f"max_rows={max_rows}, but max_rows must be >= min_rows={min_rows}")
    kinds = tuple(ROW_KINDS if row_kinds is None else row_kinds)
    for k in kinds:
        if k not in ROW_KINDS:
            raise ValueError(f"row_kinds contains {k!r}, but each must be one of {ROW_KINDS}")
    b_kinds = tuple(BIAS_KINDS if bias_kinds is None else bias_kinds)
    for k in b_kinds:
        if k not in BIAS_KINDS:
            raise ValueError(f"bias_kinds contains {k!r}, but each must be one of {BIAS_KINDS}")
    if not kinds or not b_kinds:
        raise ValueError("row_kinds and bias_kinds must not be empty")
    generated = [k for k in kinds if k != "tie_block"]
    with_tie_block = "tie_block" in kinds

    @st.composite
    def problems(draw: st.DrawFn) -> RoutingProblem:
        config = draw(config_strategy)
        E = config.num_experts
        # T * E <= 32768, and T * G * G <= 2^22 (the oracle compares groups pairwise).
        G = config.num_expert_group
        cap = max(min_rows, min(max_rows, MAX_ELEMENTS // E, max(1, (1 << 22) // (G * G))))
        T = draw(
            st.one_of(st.integers(max(min_rows, 1), max(min_rows, min(cap, 8))), st.integers(min_rows, cap))
        )
        dtype = draw(st.sampled_from(score_dtypes))
        seed = draw(st.integers(0, 2**32 - 1))
        used = (
            draw(st.lists(st.sampled_from(generated), min_size=1, max_size=3, unique=True))
            if generated
            else []
        )
        gen = torch.Generator().manual_seed(seed)
        row_kind = torch.randint(max(1, len(used)), (T,), generator=gen).tolist()
        rows = [_row_values(used[k], E, gen) for k in row_kind] if used else []
        scores = torch.stack(rows) if rows else torch.zeros(T, E)
        # A Hypothesis-drawn block of rows with exact ties (fill: most entries share one value).
        if not with_tie_block:
            tie_block = 0
        elif not used:
            tie_block = T
        else:
            tie_block = draw(st.integers(0, min(T, 3)))
        if tie_block:
            block = draw(
                arrays(
                    np.float32,
                    (tie_block, E),
                    elements=st.sampled_from(TIE_VALUES),
                    fill=st.sampled_from(TIE_VALUES),
                )
            )
            scores[:tie_block] = torch.from_numpy(block)
            used = [*used, "tie_block"]
        bias_kind = draw(st.sampled_from(b_kinds))
        bias = _bias_values(bias_kind, E, gen)
        if bias is not None:
            bias = bias.to(dtype if same_dtype_bias else draw(st.sampled_from(bias_dtype_list)))
        scores = scores.to(dtype)
        pad = draw(st.sampled_from(pads[row_stride]))
        if pad and T > 1:
            offset = draw(st.integers(0, pad))
            # The padding holds NaN: a kernel that reads past the row shows it.
            wide = torch.full((T, E + pad), float("nan"), dtype=dtype)
            wide[:, offset : offset + E] = scores
            scores = wide[:, offset : offset + E]
        note = f"rows: {'+'.join(used)}; bias: {bias_kind}" + (
            f"; row stride {E + pad}" if pad and T > 1 else ""
        )
        problem = RoutingProblem(config, scores, bias, seed=seed, note=note)
        return move_problem(problem, torch_device) if torch_device.type != "cpu" else problem

    return problems()
