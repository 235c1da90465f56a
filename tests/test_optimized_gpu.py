"""GPU tests of the fused kernel against the reference run on the same CUDA tensors (marker `gpu`).

Every kernel check uses fresh random inputs (a seed per case), poisons the output buffers before the
launch (ids -1e9-ish, weights NaN), checks that every id is in range and the ids of a row are distinct,
and compares with `moegate.reference.route` tie-aware: ids exactly, except where the differential
(`moegate.properties.differential.assert_routing_close`) accepts a near-tie; weights within
`weight_tolerance(dtype)`.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import zlib

import numpy as np
import pytest
import torch

from moegate import reference
from moegate.optimized import (
    PLAN_BOUND,
    PLAN_LATENCY,
    PLAN_THROUGHPUT,
    SPECIALIZATIONS,
    build_route,
    dispatch_plan,
    generic_plan,
    launch,
    route,
)
from moegate.optimized import dispatch as dispatch_module
from moegate.optimized.build import get_kernel
from moegate.optimized.dispatch import BOUND_MIN_BLOCKS_PER_SM, lazy_named_plan_applies
from moegate.optimized.launch import resident_blocks_per_sm
from moegate.properties.differential import assert_routing_close
from moegate.properties.problem import RoutingProblem
from moegate.properties.tolerances import weight_tolerance
from moegate.reference import PRESET_HAS_BIAS, PRESETS, RoutingConfig

pytestmark = pytest.mark.gpu
route_module = importlib.import_module("moegate.optimized.route")

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
POISON_ID = -123456789
CUDA = "cuda"


# ---- helpers -------------------------------------------------------------------------------------------
def seed_of(*parts: object) -> int:
    """A stable seed per test case (fresh inputs for every case, reproducible)."""
    return zlib.crc32(repr(parts).encode())


def random_inputs(
    config: RoutingConfig, num_rows: int, dtype: torch.dtype, bias_dtype: torch.dtype | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    scores = (torch.randn(num_rows, config.num_experts, generator=g) * 2.0).to(dtype)
    bias = None
    if bias_dtype is not None:
        bias = (torch.randn(config.num_experts, generator=g) * 0.3).to(bias_dtype).to(CUDA)
    return scores.to(CUDA), bias


def poisoned_out(num_rows: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((num_rows, width), POISON_ID, dtype=torch.int32, device=CUDA)
    weights = torch.full((num_rows, width), float("nan"), dtype=torch.float32, device=CUDA)
    return ids, weights


def run_route(scores, bias, config, fn=route):
    """`fn` (route or a build_route) into poisoned buffers; the same buffers must come back."""
    out = poisoned_out(scores.shape[0], config.output_width)
    result = fn(scores, bias, config, out=out)
    assert result[0] is out[0] and result[1] is out[1]
    return result


def run_plan(plan, scores, bias, config, selection=None):
    """Launch a given plan (e.g. the generic kernel on a specialized shape) into poisoned buffers, in step
    5's plan `selection` (None: the one the dispatch picks from T)."""
    ids, weights = poisoned_out(scores.shape[0], config.output_width)
    launch(plan, scores, bias, config, ids, weights, selection=selection)
    return ids, weights


def assert_valid(config: RoutingConfig, ids: torch.Tensor, weights: torch.Tensor) -> None:
    """Every id in range and distinct within its row; every slot written; no NaN weight."""
    E, K, S = config.num_experts, config.topk, config.num_fused_shared_experts
    assert ids.dtype == torch.int32 and weights.dtype == torch.float32
    assert tuple(ids.shape) == tuple(weights.shape) == (ids.shape[0], config.output_width)
    routed = ids[:, :K]
    bad = (routed < 0) | (routed >= E)
    assert not bad.any(), f"routed id out of [0, {E}) at {bad.nonzero()[:5].tolist()}: {routed[bad][:5]}"
    shared = ids[:, K:]
    bad = (shared < E) | (shared >= E + max(S, 1))
    assert not bad.any(), f"shared id out of [{E}, {E + S}) at {bad.nonzero()[:5].tolist()}"
    if ids.shape[1] > 1:
        ordered = ids.sort(dim=1).values
        dup = (ordered[:, 1:] == ordered[:, :-1]).any(dim=1)
        assert not dup.any(), f"repeated ids in rows {dup.nonzero()[:5].flatten().tolist()}"
    nan = torch.isnan(weights)
    assert not nan.any(), f"NaN weights at {nan.nonzero()[:5].tolist()}"


def assert_bitwise_generic(
    fast: tuple[torch.Tensor, torch.Tensor], slow: tuple[torch.Tensor, torch.Tensor], note: str
) -> None:
    """A specialized kernel's (ids, weights) bitwise the generic kernel's on the same rows, naming the first
    row whose ids differ and how many do."""
    bad = (fast[0] != slow[0]).any(dim=1).nonzero().flatten().tolist()
    assert not bad, (
        f"{note}: ids differ from the generic kernel in {len(bad)} rows, first row "
        f"{bad[0]}: {fast[0][bad[0]].tolist()} != {slow[0][bad[0]].tolist()}"
    )
    assert torch.equal(fast[1], slow[1]), f"{note}: weights differ bitwise"


def assert_matches_reference(config, scores, bias, actual, note: str = "", near_ties: bool = False) -> None:
    """Tie-aware comparison with the reference on the same CUDA tensors.

    Rows whose ids equal the reference's compare weights within weight_tolerance; the (rare) differing
    rows go to the differential, which accepts only near-ties that the oracle also accepts. Shared ids
    (replica mode depends on the row index) must match exactly everywhere. `near_ties`: rows built to tie,
    so any number of them may differ (each still judged by the differential); else at most 1%.
    """
    ids, weights = actual
    assert_valid(config, ids, weights)
    exp_ids, exp_w = reference.route(scores, bias, config)
    K = config.topk
    assert torch.equal(ids[:, K:], exp_ids[:, K:]), f"{note}: shared ids differ"
    rtol, atol = weight_tolerance(scores.dtype)
    same = (ids == exp_ids).all(dim=1)
    if same.any():
        torch.testing.assert_close(
            weights[same], exp_w[same], rtol=rtol, atol=atol, msg=lambda m: f"{note}: {m}"
        )
    rows = (~same).nonzero().flatten()
    if rows.numel() == 0:
        return
    if not near_ties:
        assert rows.numel() <= max(4, scores.shape[0] // 100), f"{note}: {rows.numel()} rows differ in ids"
    # The differing rows, routed slots only (the shared slots matched above), judged on the CPU.
    routed_only = config.replace(num_fused_shared_experts=0)
    problem = RoutingProblem(
        routed_only,
        scores[rows].cpu(),
        None if bias is None else bias.cpu(),
        note=f"{note} (rows {rows[:8].tolist()} of {scores.shape[0]})",
    )
    expected = (exp_ids[rows, :K].cpu(), exp_w[rows, :K].cpu())
    got = (ids[rows, :K].cpu(), weights[rows, :K].cpu())
    assert_routing_close(problem, expected, got)


def preset_bias_dtype(name: str) -> torch.dtype | None:
    return torch.float32 if PRESET_HAS_BIAS[name] else None


# ---- every preset x dtype x scaling x shared mode -----------------------------------------------------
@pytest.mark.parametrize("mode", ["split", "replica"])
@pytest.mark.parametrize("apply_scaling", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_match_reference(name, dtype, apply_scaling, mode) -> None:
    config = PRESETS[name].replace(
        apply_routed_scaling_factor_on_output=apply_scaling, shared_expert_mode=mode
    )
    if mode == "replica":
        config = config.replace(num_fused_shared_experts=max(config.num_fused_shared_experts, 3))
    scores, bias = random_inputs(
        config, 515, dtype, preset_bias_dtype(name), seed_of(name, dtype, apply_scaling, mode)
    )
    assert_matches_reference(config, scores, bias, run_route(scores, bias, config), f"{name} {dtype}")


# ---- row counts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["deepseek-v3", "deepseek-v2", "kimi-k2"])
def test_zero_rows_launch_nothing(name) -> None:
    config = PRESETS[name]
    scores = torch.empty(0, config.num_experts, device=CUDA, dtype=torch.bfloat16)
    ids, weights = route(scores, None, config)
    assert ids.shape == weights.shape == (0, config.output_width)
    assert ids.dtype == torch.int32 and weights.dtype == torch.float32 and ids.is_cuda


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(PRESETS))
def test_one_row(name, dtype) -> None:
    config = PRESETS[name]
    scores, bias = random_inputs(config, 1, dtype, preset_bias_dtype(name), seed_of("one", name, dtype))
    assert_matches_reference(config, scores, bias, run_route(scores, bias, config), f"T=1 {name}")


@pytest.mark.parametrize(
    ("name", "dtype", "mode"),
    [("deepseek-v3", torch.bfloat16, "split"), ("deepseek-v2", torch.float16, "replica")],
)
def test_many_rows(name, dtype, mode) -> None:
    config = PRESETS[name].replace(shared_expert_mode=mode)
    T = 2**17 + 3
    scores, bias = random_inputs(config, T, dtype, preset_bias_dtype(name), seed_of("many", name))
    assert_matches_reference(config, scores, bias, run_route(scores, bias, config), f"T={T} {name}")


# ---- ties --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(PRESETS))
def test_all_equal_rows_take_the_lowest_indices(name, dtype) -> None:
    config = PRESETS[name]
    scores = torch.full((33, config.num_experts), 0.25, dtype=dtype, device=CUDA)
    bias = None if not PRESET_HAS_BIAS[name] else torch.full((config.num_experts,), -0.5, device=CUDA)
    ids, weights = run_route(scores, bias, config)
    exp_ids, exp_w = reference.route(scores, bias, config)
    assert torch.equal(ids, exp_ids)  # identical inputs: the lower-index rule is exact
    torch.testing.assert_close(weights, exp_w, rtol=1e-6, atol=1e-7)
    assert torch.equal(
        ids[:, : config.topk].cpu(), torch.arange(config.topk, dtype=torch.int32).expand(33, -1)
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(PRESETS))
def test_coarse_values_with_many_exact_ties(name, dtype) -> None:
    config = PRESETS[name]
    g = torch.Generator().manual_seed(seed_of("coarse", name, dtype))
    scores = (torch.randint(-2, 3, (257, config.num_experts), generator=g) * 0.5).to(dtype).to(CUDA)
    bias = None
    if PRESET_HAS_BIAS[name]:
        bias = (torch.randint(-2, 3, (config.num_experts,), generator=g) * 0.125).to(torch.bfloat16).to(CUDA)
    actual = run_route(scores, bias, config)
    assert_matches_reference(config, scores, bias, actual, f"coarse {name}")


# ---- non-finite inputs ---------------------------------------------------------------------------------
def nonfinite_scores(config: RoutingConfig, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    E = config.num_experts
    rows = [
        torch.full((E,), float("nan")),
        torch.full((E,), float("inf")),
        torch.full((E,), float("-inf")),
    ]
    for fill in (float("nan"), float("inf"), float("-inf")):
        for fraction in (0.05, 0.5, 0.95):
            row = torch.randn(E, generator=g)
            row[torch.rand(E, generator=g) < fraction] = fill
            rows.append(row)
    mixed = torch.randn(E, generator=g)
    picks = torch.randint(0, 4, (E,), generator=g)
    mixed[picks == 1] = float("nan")
    mixed[picks == 2] = float("inf")
    mixed[picks == 3] = float("-inf")
    rows.append(mixed)
    rows.append(torch.randn(E, generator=g) * 200.0)  # sigmoid/softmax saturate, denormals appear
    return torch.stack(rows).to(dtype).to(CUDA)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(PRESETS))
def test_nonfinite_scores(name, dtype) -> None:
    config = PRESETS[name]
    scores = nonfinite_scores(config, dtype, seed_of("nonfinite", name, dtype))
    _, bias = random_inputs(config, 1, dtype, preset_bias_dtype(name), seed_of("nonfinite-bias", name))
    assert_matches_reference(config, scores, bias, run_route(scores, bias, config), f"nonfinite {name}")


@pytest.mark.parametrize("name", ["deepseek-v3", "kimi-k2", "moonlight-16b-a3b"])
def test_nonfinite_bias(name) -> None:
    config = PRESETS[name]
    E = config.num_experts
    for seed, fill in enumerate((float("nan"), float("inf"), float("-inf"))):
        scores, bias = random_inputs(config, 64, torch.bfloat16, torch.float32, seed_of("nfb", name, seed))
        bias[torch.arange(E, device=CUDA) % 3 == 0] = fill
        assert_matches_reference(config, scores, bias, run_route(scores, bias, config), f"bias {fill} {name}")
    # Every b = -inf: group scores are all -inf, groups 0..Kg-1 are kept; no dropped expert may win.
    scores = torch.randn(16, E, device=CUDA)
    bias = torch.full((E,), float("-inf"), device=CUDA)
    ids, weights = run_route(scores, bias, config)
    assert_matches_reference(config, scores, bias, (ids, weights), f"all -inf b {name}")


@pytest.mark.parametrize(
    ("scores_dtype", "bias_dtype"),
    [
        (torch.float32, torch.bfloat16),
        (torch.float32, torch.float16),
        (torch.bfloat16, torch.float32),
        (torch.bfloat16, torch.float16),
        (torch.float16, torch.bfloat16),
    ],
    ids=str,
)
@pytest.mark.parametrize("name", ["deepseek-v3", "kimi-k2", "glm-4.5", "moonlight-16b-a3b"])
def test_bias_dtype_independent_of_scores(name, scores_dtype, bias_dtype) -> None:
    config = PRESETS[name]
    scores, bias = random_inputs(
        config, 300, scores_dtype, bias_dtype, seed_of("bd", name, scores_dtype, bias_dtype)
    )
    assert_matches_reference(config, scores, bias, run_route(scores, bias, config), f"bias {bias_dtype}")


# ---- layouts -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("pad", [1, 3, 8])
@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "name", ["deepseek-v3", "kimi-k2", "qwen3-moe", "glm-4.5", "deepseek-v2", "mixtral-8x7b"]
)
def test_strided_rows(name, dtype, offset, pad) -> None:
    # A row-strided view (row stride E + pad) starting `offset` elements in: the vector loads must fall
    # back to scalar loads whenever the pointer or the stride is misaligned.
    config = PRESETS[name]
    E = config.num_experts
    g = torch.Generator().manual_seed(seed_of("strided", name, dtype, offset, pad))
    storage = (torch.randn(129 * (E + pad) + offset, generator=g) * 2).to(dtype).to(CUDA)
    scores = storage[offset : offset + 128 * (E + pad)].view(128, E + pad)[:, :E]
    assert scores.stride() == (E + pad, 1)
    _, bias = random_inputs(config, 1, dtype, preset_bias_dtype(name), seed_of("strided-bias", name))
    assert_matches_reference(config, scores, bias, run_route(scores, bias, config), f"strided {name}")


SHAPES = {
    "G=E with bias": (RoutingConfig(num_experts=64, topk=8, num_expert_group=64, topk_group=8), True),
    "G=E no bias": (RoutingConfig(num_experts=32, topk=4, num_expert_group=32, topk_group=6), False),
    "K max grouped": (RoutingConfig(num_experts=64, topk=16, num_expert_group=8, topk_group=2), True),
    "K max deepseek shape": (PRESETS["deepseek-v3"].replace(topk=128), True),
    "K = E = 256": (RoutingConfig(num_experts=256, topk=256, scoring_func="softmax"), False),
    "E=1024 grouped": (RoutingConfig(num_experts=1024, topk=8, num_expert_group=8, topk_group=4), True),
    "E=1024 K=40 S=3": (RoutingConfig(num_experts=1024, topk=40, num_fused_shared_experts=3), True),
    "E=1024 K max": (RoutingConfig(num_experts=1024, topk=1024, renormalize=False), False),
    "E=72 G=3": (RoutingConfig(num_experts=72, topk=5, num_expert_group=3, topk_group=2), True),
    "E=160 G=8 softmax": (PRESETS["deepseek-v2"], False),
    "E=1": (RoutingConfig(num_experts=1, topk=1, num_fused_shared_experts=2), True),
    "E=8 G=4": (RoutingConfig(num_experts=8, topk=3, num_expert_group=4, topk_group=2), True),
    "S=40 split": (PRESETS["deepseek-v3"].replace(num_fused_shared_experts=40), True),
    "S=40 replica": (
        PRESETS["kimi-k2"].replace(num_fused_shared_experts=40, shared_expert_mode="replica"),
        True,
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_shapes(shape, dtype) -> None:
    config, has_bias = SHAPES[shape]
    for scoring in ("sigmoid", "softmax"):
        cfg = config.replace(scoring_func=scoring)
        bias_dtype = torch.float32 if has_bias else None
        scores, bias = random_inputs(cfg, 97, dtype, bias_dtype, seed_of("shape", shape, dtype, scoring))
        assert_matches_reference(cfg, scores, bias, run_route(scores, bias, cfg), f"{shape} {scoring}")


# ---- specializations agree with the generic kernel, bitwise --------------------------------------------
def spread_scores(config: RoutingConfig, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Rows whose softmax numerators exp(x - max) straddle 2^-64 (x about 44.4 below the row maximum),
    where the specialized kernels switch from the branch-free division to div.rn, and rows far past it."""
    g = torch.Generator().manual_seed(seed)
    E = config.num_experts
    near = -torch.rand(16, E, generator=g) * 50.0  # numerators from 1 down to below 2^-64
    near[:, 0] = 0.0
    far = -torch.rand(4, E, generator=g) * 120.0  # subnormal and zero numerators
    far[:, -1] = 0.0
    edge = torch.full((2, E), -44.36)  # about ln(2^-64), on either side after rounding
    edge[:, 0] = 0.0
    edge[1, 1:] = -44.37
    return torch.cat([near, far, edge]).to(dtype).to(CUDA)


def plan_selections(plan) -> tuple[int, ...]:
    """Step 5's plans that have a kernel of their own in `plan` (the bound plan only where it applies)."""
    bound = (PLAN_BOUND,) if plan.bound_name_expression is not None else ()
    return (PLAN_THROUGHPUT, PLAN_LATENCY, *bound)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", SPECIALIZATIONS, ids=lambda s: s.name)
def test_specialization_equals_generic_kernel(spec, dtype) -> None:
    base = spec.config(routed_scaling_factor=2.5)
    for has_bias in (False, True):
        for renormalize in (False, True):
            for mode in ("split", "replica"):
                config = base.replace(
                    renormalize=renormalize,
                    num_fused_shared_experts=2,
                    shared_expert_mode=mode,
                    apply_routed_scaling_factor_on_output=mode == "replica",
                )
                plan = dispatch_plan(config, dtype)
                assert plan.specialization == spec.name
                seed = seed_of("spec", spec.name, dtype, has_bias, renormalize, mode)
                scores, bias = random_inputs(config, 300, dtype, torch.float32 if has_bias else None, seed)
                scores = torch.cat(
                    [scores, nonfinite_scores(config, dtype, seed), spread_scores(config, dtype, seed)]
                )
                slow = run_plan(generic_plan(config, dtype), scores, bias, config)
                for selection in plan_selections(plan):
                    fast = run_plan(plan, scores, bias, config, selection)
                    assert torch.equal(fast[0], slow[0]), (
                        f"{spec.name} {config} plan {selection}: ids differ from the generic kernel"
                    )
                    assert torch.equal(fast[1], slow[1]), (
                        f"{spec.name} {config} plan {selection}: weights differ bitwise"
                    )
                    assert_valid(config, *fast)


# ---- step 5's plans return bitwise the same output -------------------------------------------------
def clustered_scores(config: RoutingConfig, seed: int) -> torch.Tensor:
    """float32 rows whose largest logits crowd into a few lanes, so that one lane wins most of the K rounds
    (route.cu's segment kernel then moves a lane's sorted keys up round after round, as far as the rounds
    reach): ascending and descending ramps (the K largest on the last or the first lanes), and a block of K
    to 2K high logits at a random offset over a low background."""
    g = torch.Generator().manual_seed(seed)
    E, K = config.num_experts, config.topk
    ramp = torch.linspace(-2.0, 2.0, E)
    rows = [ramp, ramp.flip(0)]
    for _ in range(14):
        row = torch.randn(E, generator=g) - 6.0
        width = min(E, int(torch.randint(K, 2 * K + 1, (1,), generator=g)))
        start = int(torch.randint(0, E - width + 1, (1,), generator=g))
        row[start : start + width] = torch.randn(width, generator=g) + 2.0
        rows.append(row)
    return torch.stack(rows)


def tie_heavy_scores(config: RoutingConfig, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Rows that stress the selection: coarse values (many exact ties, often more than 32 candidates at
    the K-th key), all-equal rows, a row where every lane maximum ties, rows whose top keys crowd into a
    few lanes, and non-finite rows."""
    g = torch.Generator().manual_seed(seed)
    E = config.num_experts
    coarse = torch.randint(-2, 3, (96, E), generator=g) * 0.5
    equal = torch.full((4, E), 0.25)
    lanes = torch.full((1, E), -1.0)
    lanes[0, :: max(1, E // 32)] = 1.0  # one top key per lane
    rows = torch.cat([coarse, equal, lanes, clustered_scores(config, seed)]).to(dtype).to(CUDA)
    return torch.cat([rows, nonfinite_scores(config, dtype, seed)])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", SPECIALIZATIONS, ids=lambda s: s.name)
def test_latency_and_throughput_plans_agree_bitwise(spec, dtype) -> None:
    config = spec.config(routed_scaling_factor=2.5, num_fused_shared_experts=1)
    plan = dispatch_plan(config, dtype)
    for has_bias in (False, True):
        seed = seed_of("plans", spec.name, dtype, has_bias)
        random_rows, bias = random_inputs(config, 200, dtype, torch.float32 if has_bias else None, seed)
        if has_bias:  # coarse bias values tie too
            g = torch.Generator().manual_seed(seed)
            bias = (torch.randint(-2, 3, (config.num_experts,), generator=g) * 0.125).to(CUDA)
        scores = torch.cat([random_rows, tie_heavy_scores(config, dtype, seed)])
        latency = run_plan(plan, scores, bias, config, PLAN_LATENCY)
        throughput = run_plan(plan, scores, bias, config, PLAN_THROUGHPUT)
        assert_valid(config, *latency)
        assert torch.equal(latency[0], throughput[0]), f"{spec.name} bias={has_bias}: ids differ by plan"
        assert torch.equal(latency[1], throughput[1]), f"{spec.name} bias={has_bias}: weights differ"
        if plan.bound_name_expression is not None:
            bound = run_plan(plan, scores, bias, config, PLAN_BOUND)
            assert torch.equal(bound[0], throughput[0]), f"{spec.name} bias={has_bias}: bound plan ids"
            assert torch.equal(bound[1], throughput[1]), f"{spec.name} bias={has_bias}: bound plan weights"
        if plan.latency_name_expression is not None:
            # The latency kernel holds the throughput path too (route.cu: it follows the argument `plan`);
            # launched with plan = throughput (and the throughput geometry) it must agree as well.
            crossed = dataclasses.replace(plan, name_expression=plan.latency_name_expression)
            both = run_plan(crossed, scores, bias, config, PLAN_THROUGHPUT)
            assert torch.equal(both[0], throughput[0]) and torch.equal(both[1], throughput[1]), spec.name
        assert_matches_reference(config, scores, bias, latency, f"latency plan {spec.name}")


def _ulps_below(value: torch.Tensor, ulps: int) -> torch.Tensor:
    """The float32 `ulps` representable values below `value`."""
    for _ in range(ulps):
        value = torch.nextafter(value, torch.tensor(float("-inf")))
    return value


def candidate_order(config: RoutingConfig, x: torch.Tensor, has_bias: bool) -> torch.Tensor:
    """The experts of one row of logits x [E] in descending order of p (float64), the kept groups' experts
    first (SPEC steps 3-4 on p, with the group score of a row with a bias when `has_bias`: a bias that is
    one value for every expert leaves that order as it is)."""
    x = x.double()
    p = torch.sigmoid(x) if config.scoring_func == "sigmoid" else torch.softmax(x, dim=0)
    if not config.has_groups:
        return p.argsort(descending=True, stable=True)
    _, kept = _kept_groups(p, config, has_bias)
    in_kept = torch.zeros(config.num_expert_group, dtype=torch.bool)
    in_kept[kept] = True
    n = config.num_experts // config.num_expert_group
    candidates = p.masked_fill(~in_kept.repeat_interleave(n), -1.0)
    return candidates.argsort(descending=True, stable=True)


def softmax_near_tie_rows(
    config: RoutingConfig, seed: int, base_rows: int = 12, has_bias: bool = False
) -> torch.Tensor:
    """float32 logits for a softmax row whose K-th and (K+1)-th largest (of the kept groups:
    `candidate_order`) differ by 0 to 64 ulps or by 2^-24 .. 2^-8, the smaller one at the lower expert index
    and at the higher (distinct numerators expf(x - max) that the division by the row's sum rounds to one p:
    SPEC's tie rule then takes the lower index), rows with 2K logits a few ulps apart around the K-th, and
    rows whose maximum stands 60 above every other logit (their numerators are below 2^-64, or 0)."""
    g = torch.Generator().manual_seed(seed)
    E, K = config.num_experts, config.topk
    rows = []
    for _ in range(base_rows):
        x = torch.randn(E, generator=g) * 2.0
        order = candidate_order(config, x, has_bias)
        w, n = int(order[K - 1]), int(order[K])
        low, high = min(w, n), max(w, n)
        for gap in [0, 1, 2, 3, 8, 64] + [-(2.0**-j) for j in range(8, 25, 4)]:
            for larger, smaller in ((low, high), (high, low)):
                row = x.clone()
                row[larger] = x[w]
                row[smaller] = _ulps_below(x[w], gap) if isinstance(gap, int) else x[w] + gap
                rows.append(row)
        cluster = x.clone()
        picks = torch.randperm(E, generator=g)[: min(E, 2 * K)]
        for i, e in enumerate(picks.tolist()):
            cluster[e] = _ulps_below(x[w], i % 5)
        rows.append(cluster)
        lone = x.clone()
        lone[int(order[0])] = x[int(order[0])] + 60.0
        rows.append(lone)
    return torch.stack(rows)


SOFTMAX_SPECS = [s for s in SPECIALIZATIONS if s.scoring_func == "softmax"]


@pytest.mark.parametrize("spec", SOFTMAX_SPECS, ids=lambda s: s.name)
def test_softmax_near_ties_equal_the_generic_kernel_in_every_plan(spec) -> None:
    # The throughput plan of a warp-per-row softmax row (route.cu: kLazySoftmax, Qwen3-Next) selects on the
    # numerators and divides only its staged candidates; p ties from distinct numerators must still go to the
    # lower index, whichever of the two has the larger logit.
    config = spec.config(routed_scaling_factor=2.5, num_fused_shared_experts=1)
    scores = softmax_near_tie_rows(config, seed_of("softmax-near", spec.name)).to(CUDA)
    assert scores.shape[0] > 200
    plan = dispatch_plan(config, torch.float32)
    slow = run_plan(generic_plan(config, torch.float32), scores, None, config)
    for selection in plan_selections(plan):
        fast = run_plan(plan, scores, None, config, selection)
        assert_valid(config, *fast)
        assert_bitwise_generic(fast, slow, f"{spec.name} plan {selection}")
    assert_matches_reference(config, scores, None, slow, f"{spec.name} softmax near ties")


SEGMENT_SPECS = [s for s in SPECIALIZATIONS if s.kernel == "segment"]


@pytest.mark.parametrize("bias_dtype", [torch.float32, None], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", SEGMENT_SPECS, ids=lambda s: s.name)
def test_rows_per_segment_equal_the_generic_kernel_on_odd_strided_batches(spec, dtype, bias_dtype) -> None:
    # route_segment_kernel (the throughput plan of the E <= 128 rows and of DeepSeek-V2's groups): a warp's
    # segments of L lanes route 32 / L rows; a T that is not a multiple of that leaves the last segments
    # without a row (they route a copy of the last row and store nothing). Random, tie-heavy, non-finite
    # and wide-spread rows, in contiguous, padded and misaligned layouts, with a bias and without (the keys
    # then skip the add: route.cu's biased_score_keys), bitwise against the generic kernel.
    config = spec.config(routed_scaling_factor=2.5, num_fused_shared_experts=1)
    plan = dispatch_plan(config, dtype)
    assert "route_segment_kernel" in plan.kernel_name(PLAN_THROUGHPUT)
    for num_rows, layout in ((2115, "contiguous"), (3001, "padded"), (1999, "misaligned")):
        seed = seed_of("segment", spec.name, dtype, num_rows)
        rows, bias = random_inputs(config, num_rows, dtype, bias_dtype, seed)
        rows = torch.cat([tie_heavy_scores(config, dtype, seed), spread_scores(config, dtype, seed), rows])
        rows = rows[:num_rows]
        E = config.num_experts
        if layout == "contiguous":
            scores = rows.contiguous()
        else:
            pad = 5 if layout == "padded" else 1
            buffer = torch.zeros(num_rows, E + pad, dtype=dtype, device=CUDA)
            start = 0 if layout == "padded" else 1
            buffer[:, start : start + E] = rows
            scores = buffer[:, start : start + E]
        slow = run_plan(generic_plan(config, dtype), scores, bias, config)
        fast = run_plan(plan, scores, bias, config, PLAN_THROUGHPUT)
        assert_valid(config, *fast)
        assert torch.equal(fast[0], slow[0]), f"{spec.name} {layout} T={num_rows}: ids differ"
        assert torch.equal(fast[1], slow[1]), f"{spec.name} {layout} T={num_rows}: weights differ bitwise"


NAMED_SPECS = [s for s in SPECIALIZATIONS if s.has_named_keys]


def _ordered_keys(config: RoutingConfig, scores: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Each row's selection keys ord(p + bias) as int64, computed by torch in float32 (the kernels' p up to
    the softmax sum's order), sorted in SPEC's order: descending key, then ascending expert index; the
    experts of dropped groups (the reference's steps 3-4 on these b) last, as -1."""
    x = scores.float().nan_to_num(nan=float("-inf"))
    p = torch.sigmoid(x) if config.scoring_func == "sigmoid" else torch.softmax(x, dim=1)
    b = p if bias is None else p + bias.float()
    u = b.contiguous().view(torch.int32).long() & 0xFFFFFFFF
    key = torch.where(u >= 0x80000000, 0xFFFFFFFF - u, u | 0x80000000)
    E = config.num_experts
    if config.has_groups:
        G = config.num_expert_group
        kept = reference.group_selection(reference.group_scores(b, G, bias is not None), config.topk_group)
        in_kept = torch.zeros(b.shape[0], G, dtype=torch.bool, device=b.device).scatter_(1, kept, True)
        key = key.masked_fill(~in_kept.repeat_interleave(E // G, dim=1), -1)
    order = torch.argsort(key * 512 + (E - torch.arange(E, device=key.device)), dim=1, descending=True)
    return key.gather(1, order)


def adjacent_near_tie_rows(
    config: RoutingConfig, seed: int, base_rows: int = 8, has_bias: bool = False
) -> torch.Tensor:
    """float32 logits in which the logits of the k-th and (k + 1)-th largest experts (of the kept groups,
    `candidate_order`), for every k < K + 1, are moved to 0 to 3 ulps of each other, the smaller at the lower
    index and at the higher: their keys then share select_by_named_keys' bucket (all but the low 5 to 8
    bits) often, unequal or equal."""
    g = torch.Generator().manual_seed(seed)
    E, K = config.num_experts, config.topk
    rows = []
    for _ in range(base_rows):
        x = torch.randn(E, generator=g) * 2.0
        order = candidate_order(config, x, has_bias)
        for k in range(min(K, E - 1)):
            w, n = int(order[k]), int(order[k + 1])
            for ulps in (0, 1, 2, 3):
                for larger, smaller in ((min(w, n), max(w, n)), (max(w, n), min(w, n))):
                    row = x.clone()
                    row[larger] = x[w]
                    row[smaller] = _ulps_below(x[w], ulps)
                    rows.append(row)
    return torch.stack(rows)


@pytest.mark.parametrize("has_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("spec", NAMED_SPECS, ids=lambda s: s.name)
def test_named_keys_near_ties_equal_the_generic_kernel(spec, has_bias) -> None:
    # route.cu's select_by_named_keys selects on (k >> b, -e), E <= 2^b, and proves the result SPEC's (k, -e)
    # one: keys that share a bucket k >> b at the K-th winner and the first expert left out, or between
    # adjacent winners, unequal (the warp's rows selected again exactly, out of line) or equal (the lower
    # index first).
    # Rows built to put such keys there, bitwise against the generic kernel: in float32 (unequal keys in one
    # bucket, counted below so that the test cannot pass on rows without them) and in bf16 (equal keys).
    # The bias is one value (0.3) for every expert: p + 0.3 keeps the near ties of p (a random bias
    # separates them; the sigmoid's boundary rows are built on it as well).
    config = spec.config(routed_scaling_factor=2.5, num_fused_shared_experts=1)
    plan = dispatch_plan(config, torch.float32)
    throughput = plan.kernel_name(PLAN_THROUGHPUT)
    assert throughput.startswith("moegate::route_segment_kernel<") and throughput.endswith(", 0>")
    seed = seed_of("named", spec.name, has_bias)
    g = torch.Generator().manual_seed(seed)
    biases: list[torch.Tensor | None] = [None]
    if has_bias:
        biases = [torch.full((config.num_experts,), 0.3, device=CUDA)]
        if config.scoring_func == "sigmoid":
            biases.append((torch.randn(config.num_experts, generator=g) * 0.3).to(CUDA))
    K = config.topk
    bits = next(b for b in (5, 6, 7, 8) if config.num_experts <= 1 << b)  # route.cu's kIdBits
    for bias in biases:
        if config.scoring_func == "sigmoid":
            boundary = near_tie_rows(config, bias, seed)
        else:
            boundary = softmax_near_tie_rows(config, seed, has_bias=bias is not None)
        adjacent = adjacent_near_tie_rows(config, seed, has_bias=bias is not None)
        rows = torch.cat([boundary, adjacent]).to(CUDA)
        for dtype in (torch.float32, torch.bfloat16):
            scores = rows.to(dtype)
            keys = _ordered_keys(config, scores, bias)
            same_bucket = (keys[:, :-1] >> bits) == (keys[:, 1:] >> bits)
            unequal = keys[:, :-1] != keys[:, 1:]
            cases = (
                int((same_bucket[:, K - 1] & unequal[:, K - 1]).sum()),
                int((same_bucket[:, : K - 1] & unequal[:, : K - 1]).any(dim=1).sum()),
                int((~unequal[:, :K]).any(dim=1).sum()),
            )
            # What each kind of row must hold: float32 all three (a random bias: the boundary's), bf16 equal
            # keys (its logits are too coarse for unequal ones in one bucket; a random bias: none asked).
            random_bias = bias is not None and bias.unique().numel() > 1
            if dtype == torch.float32:
                wanted = cases[:1] if random_bias else cases
            else:
                wanted = () if random_bias else cases[2:]
            counts = f"{dtype}: rows with keys in one bucket (boundary, adjacent, equal): {cases}"
            assert min(wanted, default=10) >= 10, counts
            slow = run_plan(generic_plan(config, dtype), scores, bias, config)
            fast = run_plan(dispatch_plan(config, dtype), scores, bias, config, PLAN_THROUGHPUT)
            assert_valid(config, *fast)
            note = f"{spec.name} {dtype} bias={None if bias is None else bias[:2].tolist()}"
            assert_bitwise_generic(fast, slow, note)
            assert_matches_reference(config, scores, bias, fast, f"{note} named keys", near_ties=True)


def bucket_edge_rows(config: RoutingConfig, seed: int, base_rows: int = 240) -> torch.Tensor:
    """float32 softmax logits whose numerators meet at an edge of select_by_named_keys' buckets: 1 to K
    experts at the row maximum 0 (numerator 1.0, bits 0x3f800000, the lowest key of its bucket), 3 more at
    -2^-24 to -2^-22 (numerators 1 - 2^-24 .. 1 - 2^-22, in the bucket below), at random indices, the
    others far below. The lazy numerators' keys then order them by bucket, while the division by the
    row's sum often rounds them to one p, which SPEC's tie rule orders by index."""
    g = torch.Generator().manual_seed(seed)
    E, K = config.num_experts, config.topk
    rows = []
    for i in range(base_rows):
        x = torch.randn(E, generator=g) * 2.0 - 8.0
        picks = torch.randperm(E, generator=g).tolist()
        at_max = 1 + i % K
        for e in picks[:at_max]:
            x[e] = 0.0
        for e in picks[at_max : at_max + 3]:
            x[e] = -(2.0**-24) * (1 + int(torch.randint(0, 4, (1,), generator=g)))
        rows.append(x)
    return torch.stack(rows)


LAZY_NAMED_SPECS = [s for s in NAMED_SPECS if s.scoring_func == "softmax"]


@pytest.mark.parametrize("has_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", LAZY_NAMED_SPECS, ids=lambda s: s.name)
def test_lazy_named_keys_at_bucket_edges_equal_the_generic_kernel(spec, dtype, has_bias) -> None:
    # route.cu's select_by_named_keys on lazy softmax numerators (no bias): the rounds order by the
    # numerators' buckets, and p = RN(e / sum) may merge numerators of two buckets into one p. The checks
    # (adjacent winners by p and index; the experts left out against the top of the next bucket, divided)
    # must send such rows to the exact rounds. Rows built for it (bucket_edge_rows; counted below on torch's
    # float32 numerators, so that the test cannot pass on rows without such ties), bitwise against the
    # generic kernel in each plan of the row's segment kernels; with a bias (one value for every expert) the
    # same kernels take p, not numerators. The lazy numerators are the bound plan's where
    # lazy_named_plan_applies (float32 Qwen3-MoE and DeepSeek-V2-Lite); the
    # other kernels take p, and the same rows must pass them. The rows' edge values (0 and -k 2^-24) are
    # exact in float16 and bfloat16, so the cast keeps the ties; the count below is made on the cast rows.
    config = spec.config(routed_scaling_factor=2.5, num_fused_shared_experts=1)
    rows = bucket_edge_rows(config, seed_of("lazy-edges", spec.name)).to(dtype).float()
    numerator = torch.exp(rows - rows.max(dim=1, keepdim=True).values)
    p = numerator / numerator.sum(dim=1, keepdim=True)
    merged = ((p == p.max(dim=1, keepdim=True).values) & (numerator < 1.0)).any(dim=1)
    assert int(merged.sum()) >= 10, f"only {int(merged.sum())} rows where a numerator below 1 has the top p"
    scores = rows.to(dtype).to(CUDA)
    bias = torch.full((config.num_experts,), 0.3, device=CUDA) if has_bias else None
    plan = dispatch_plan(config, dtype)
    lazy = lazy_named_plan_applies(*spec.key, spec.lanes, dtype)
    assert (plan.bound_name_expression is not None) == lazy, f"{spec.name} {dtype}: bound plan {plan}"
    slow = run_plan(generic_plan(config, dtype), scores, bias, config)
    for selection in (PLAN_THROUGHPUT, *((PLAN_BOUND,) if lazy else ())):
        note = f"{spec.name} {dtype} plan {selection} lazy bucket edges"
        fast = run_plan(plan, scores, bias, config, selection)
        assert_valid(config, *fast)
        assert_bitwise_generic(fast, slow, note)
        assert_matches_reference(config, scores, bias, fast, note, near_ties=True)


def test_dispatch_switches_plans_past_one_block_per_sm() -> None:
    config = PRESETS["deepseek-v3"]
    plan = dispatch_plan(config, torch.bfloat16)
    sm_count = torch.cuda.get_device_properties(0).multi_processor_count
    last = sm_count * plan.warps_per_block  # rows of one block per SM
    assert plan.selection_plan(1, sm_count) == PLAN_LATENCY
    assert plan.selection_plan(last, sm_count) == PLAN_LATENCY
    assert plan.selection_plan(last + 1, sm_count) == PLAN_THROUGHPUT
    first_bound = BOUND_MIN_BLOCKS_PER_SM * last  # that many full blocks per SM
    assert plan.selection_plan(first_bound - plan.warps_per_block, sm_count) == PLAN_THROUGHPUT
    assert plan.selection_plan(first_bound, sm_count) == PLAN_BOUND
    # On either side of each switch the kernel still returns the reference's routing.
    for T in (last, last + 1, first_bound - plan.warps_per_block, first_bound):
        scores, bias = random_inputs(config, T, torch.bfloat16, torch.float32, seed_of("switch", T))
        assert_matches_reference(config, scores, bias, run_route(scores, bias, config), f"T={T}")


@pytest.mark.parametrize("spec", SPECIALIZATIONS, ids=lambda s: s.name)
def test_capped_grids_loop_to_the_generic_kernels_output(spec, monkeypatch) -> None:
    # Where its blocks loop, the grid is the SM count times the plan's cap_blocks_per_sm of the driver's
    # resident blocks for the kernel that runs (3 on an H200 for the segment bound kernels and Qwen3-Next's
    # throughput kernel, 4 for the other warp and segment kernels; a full SM for Mixtral's row-per-thread
    # kernel). Each kernel in its throughput and bound plans, at a T that makes every block loop at least
    # twice with a partial last stride (the grid held at the cap: LOOP_BLOCK_ROWS at 0): with the driver's
    # count, with 3 forced for every kernel (where the plan loops at its resident blocks), and with the grid
    # grown past its cap (LOOP_BLOCK_ROWS at rows_per_block: a block's rows in one pass), bitwise the generic
    # kernel's output. A softmax row also without a bias: the path its models take (the lazy numerators,
    # where route.cu's kLazyNamed holds).
    config = spec.config(routed_scaling_factor=2.5, num_fused_shared_experts=1)
    bias_dtypes = (torch.float32, None) if spec.scoring_func == "softmax" else (torch.float32,)
    dtype = torch.bfloat16
    plan = dispatch_plan(config, dtype)
    sm_count = torch.cuda.get_device_properties(0).multi_processor_count
    rows_per_block = plan.warps_per_block * plan.rows_per_warp
    for selection in (PLAN_THROUGHPUT, *((PLAN_BOUND,) if plan.bound_name_expression else ())):
        kernel = get_kernel(plan.kernel_name(selection))
        resident = resident_blocks_per_sm(kernel.ptr, plan.block, plan.shared_mem_bytes)
        assert 1 <= resident <= 2048 // plan.block, (spec.name, selection, resident)
        for forced, bias_dtype in itertools.product((None, 3), bias_dtypes):
            count = resident if forced is None else forced
            cap = plan.cap_blocks_per_sm(count)
            num_rows = (2 * (2048 // plan.block) * sm_count + 1) * rows_per_block + 5
            seed = seed_of("cap", spec.name, selection, forced, bias_dtype)
            scores, bias = random_inputs(config, num_rows, dtype, bias_dtype, seed)
            slow = run_plan(generic_plan(config, dtype), scores, bias, config)
            monkeypatch.setattr(dispatch_module, "LOOP_BLOCK_ROWS", 0)  # the grid at the cap itself
            assert plan.geometry(num_rows, sm_count, selection, count) == (cap * sm_count, plan.block)
            if forced is not None:
                monkeypatch.setattr(route_module, "resident_blocks_per_sm", lambda *args, n=forced: n)
            fast = run_plan(plan, scores, bias, config, selection)
            monkeypatch.undo()
            assert_valid(config, *fast)
            note = f"{spec.name} plan {selection} cap {cap} bias {bias_dtype}"
            assert torch.equal(fast[0], slow[0]), f"{note}: ids differ"
            assert torch.equal(fast[1], slow[1]), f"{note}: weights differ"
            if forced is None and plan.loops_at_resident_blocks and cap == 2048 // plan.block:
                # The grid past its cap (a whole multiple of the cap's blocks, each block one pass or less),
                # the same rows: bitwise the same again. (A cap of one wave of the resident blocks stays.)
                monkeypatch.setattr(dispatch_module, "LOOP_BLOCK_ROWS", rows_per_block)
                grid, _ = plan.geometry(num_rows, sm_count, selection, count)
                assert grid % (cap * sm_count) == 0 and grid > cap * sm_count, (note, grid)
                fast = run_plan(plan, scores, bias, config, selection)
                monkeypatch.undo()
                assert_valid(config, *fast)
                assert torch.equal(fast[0], slow[0]), f"{note} grid {grid}: ids differ"
                assert torch.equal(fast[1], slow[1]), f"{note} grid {grid}: weights differ"


# ---- exhaustive checks of route.cu's device functions -----------------------------------------------------
def route_cu_function(checker: str, name: str):
    """The function `name` of `checker` (extern "C" CUDA source that calls route.cu's device functions),
    compiled after route.cu with the kernels' NVRTC options. CuPy's RawModule appends -ftz=true
    (docs/architecture.md): each caller says why that changes nothing for the values it checks."""
    import cupy

    from moegate.optimized import KERNEL_SOURCE, nvrtc_options

    module = cupy.RawModule(code=KERNEL_SOURCE.read_text() + checker, options=tuple(nvrtc_options(())))
    return module.get_function(name)


def sweep_checker(name: str, params: str, body: str) -> str:
    """CUDA source of `extern "C"` kernel `name(params, count, misses, example)` that runs `body` for every
    index i in [0, count) in a grid-stride loop. `body` (C++ statements, indented 8 spaces) defines `bool
    miss` and `unsigned seen`; each miss adds 1 to `*misses`, and one miss's `seen` (bits or an index, not 0)
    is left in `*example`: what count_misses reads."""
    return f"""
    extern "C" __global__ void {name}({params}, unsigned long long count,
                                       unsigned long long* misses, unsigned* example) {{
      const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
      unsigned long long local = 0;
      for (unsigned long long i = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
           i < count; i += stride) {{
{body}
        if (miss) {{
          ++local;
          atomicCAS(example, 0u, seen);
        }}
      }}
      atomicAdd(misses, local);
    }}
    """


def count_misses(checker: str, name: str, *args: object) -> tuple[int, int]:
    """Launch `name` of `checker` over 8 blocks of 256 threads per SM with `args`, then a uint64 count and a
    uint32 example (the kernel adds its misses to the count and leaves one of them, as bits or an index, in
    the example): (count, example)."""
    import cupy

    kernel = route_cu_function(checker, name)
    misses = cupy.zeros(1, dtype=cupy.uint64)
    example = cupy.zeros(1, dtype=cupy.uint32)
    sm_count = torch.cuda.get_device_properties(0).multi_processor_count
    kernel((sm_count * 8,), (256,), (*args, misses, example))
    return int(misses.get()[0]), int(example.get()[0])


# ---- the branch-free reciprocal is rcp.rn ---------------------------------------------------------------
def test_branch_free_reciprocal_is_rcp_rn_on_every_float_from_1_to_2_pow_126() -> None:
    """route.cu's `reciprocal_in_range` (the sigmoid's fast path) against rcp.rn (`__frcp_rn`) on all
    1,056,964,608 floats in [1, 2^126), on this GPU: a mismatch would change p, hence weights and ties."""
    import cupy

    checker = sweep_checker(
        "reciprocal_mismatches",
        "unsigned first",
        r"""
        const unsigned seen = first + static_cast<unsigned>(i);
        const float y = __uint_as_float(seen);
        const bool miss =
            __float_as_uint(moegate::reciprocal_in_range(y)) != __float_as_uint(__frcp_rn(y));""",
    )
    # -ftz=true is harmless here: every operand, intermediate and result in [1, 2^126) is a normal float.
    first, end = 0x3F800000, 0x7E800000  # the bits of 1.0 and of 2^126
    count, example = count_misses(
        checker, "reciprocal_mismatches", cupy.uint32(first), cupy.uint64(end - first)
    )
    assert count == 0, f"{count} floats differ from rcp.rn, e.g. bits {example:#010x}"


# ---- the branch-free division is div.rn ------------------------------------------------------------------
def test_branch_free_quotient_is_div_rn_on_softmax_operands() -> None:
    """route.cu's `quotient_in_range` (the softmax's fast path) against div.rn (`__fdiv_rn`) where the
    kernels use it: numerators 0 or in [2^-64, 1], denominators (softmax sums) in [1, 1024]. Every one of
    the 2^23 numerator mantissas, each at a pseudo-random exponent, against each of 4096 denominators:
    1, 2, 1024, the largest float below each power of two up to 1024, the table's E, and random floats in
    [1, 1024]; plus numerators 0, 1 and 2^-64 exactly. A mismatch would change p, hence weights and ties."""
    import cupy

    checker = sweep_checker(
        "quotient_mismatches",
        "const float* denominators",
        r"""
        const float b = denominators[i >> 23];
        const unsigned mantissa = static_cast<unsigned>(i) & 0x7fffffu;
        unsigned h = static_cast<unsigned>(i * 0x9E3779B97F4A7C15ull >> 32);
        h ^= h >> 15;
        const unsigned exponent = 126u - h % 64u;          // a in [2^-64, 1): biased exponents 63..126
        float a = __uint_as_float((exponent << 23) | mantissa);
        if (mantissa == 1u) a = 0.0f;
        if (mantissa == 2u) a = 1.0f;
        if (mantissa == 3u) a = 0x1p-64f;
        const bool miss =
            __float_as_uint(moegate::quotient_in_range(a, b)) != __float_as_uint(__fdiv_rn(a, b)) ||
            !moegate::quotient_in_range_ok(a);
        const unsigned seen = static_cast<unsigned>(i);""",
    )
    # -ftz=true changes nothing here: no operand, intermediate or result is subnormal (quotients >= 2^-74,
    # remainders exact multiples of at least 2^-120).
    special = [
        1.0,
        2.0,
        1024.0,
        *(float(np.nextafter(np.float32(2.0**e), np.float32(0))) for e in range(1, 11)),
    ]
    special += [float(s.num_experts) for s in SPECIALIZATIONS]
    g = np.random.default_rng(20261129)
    lo, hi = np.float32(1.0).view(np.uint32), np.float32(1024.0).view(np.uint32)
    random_bits = g.integers(int(lo), int(hi) + 1, size=4096 - len(special), dtype=np.uint32)
    denominators = np.concatenate([np.array(special, np.float32), random_bits.view(np.float32)])
    assert denominators.min() >= 1.0 and denominators.max() <= 1024.0 and len(denominators) == 4096
    count = len(denominators) << 23
    bad, where = count_misses(checker, "quotient_mismatches", cupy.asarray(denominators), cupy.uint64(count))
    assert bad == 0, (
        f"{bad} quotients differ from div.rn, e.g. index {where} (denominator {denominators[where >> 23]})"
    )


def test_fast_range_check_implies_every_numerator_in_range() -> None:
    """route.cu's `numerators_in_fast_range` (the softmax segment kernels' far check from a lane's least
    logit) against its claim: wherever it says yes, each numerator expf(d) of the lane, d = RN(x - row_max)
    >= RN(least - row_max), is in `quotient_in_range_ok`'s range. Every float32 d from -kFastLogitGap to 0
    (about 1.1e9 of them: expf need not be monotonic, so each is checked), and the gap itself: just past it
    the check says no."""
    import cupy

    checker = sweep_checker(
        "fast_range_misses",
        "unsigned first",
        r"""
        const unsigned seen = first + static_cast<unsigned>(i);
        const float d = __uint_as_float(seen);  // -0 down to -kFastLogitGap
        const bool said = moegate::numerators_in_fast_range(d, 0.0f);
        const bool miss =
            said != (d >= -moegate::kFastLogitGap) || (said && !moegate::quotient_in_range_ok(expf(d)));""",
    )
    first = int(np.float32(-0.0).view(np.uint32))
    # one float past the gap, so the check's "no" is tested too
    last = int(np.nextafter(np.float32(-43.0), np.float32(-np.inf)).view(np.uint32))
    bad, example = count_misses(
        checker, "fast_range_misses", cupy.uint32(first), cupy.uint64(last - first + 1)
    )
    d = np.uint32(example).view(np.float32)
    assert bad == 0, f"{bad} logit gaps where the check is wrong, e.g. d = {d!r}"


# ---- the throughput plan's floor (route.cu: lane_named_tau): tau with its low 5 bits cleared -----------
WARP_TOPK_SPECS = [s for s in SPECIALIZATIONS if s.kernel == "warp" and s.topk > 1]


def keys_below_tau_rows(config: RoutingConfig, seed: int, num_rows: int = 256) -> torch.Tensor:
    """float32 logit rows [num_rows, E] whose keys crowd just below the K-th largest: K - 1 experts far above,
    8, 24 or 48 experts (by row) on adjacent float32 logits (a few ulps apart, so their p, or softmax
    numerators, are a few ulps apart or equal), spread over the lanes at random, and the rest far below."""
    g = torch.Generator().manual_seed(seed)
    E, K = config.num_experts, config.topk
    rows = []
    for i in range(num_rows):
        x = -6.0 - torch.rand(E, generator=g)
        picks = torch.randperm(E, generator=g)
        x[picks[: K - 1]] = 3.0 + torch.rand(K - 1, generator=g)
        crowd = (8, 24, 48)[i % 3]
        base = torch.tensor([0.25 * (1 + i % 4)], dtype=torch.float32).view(torch.int32)
        steps = torch.randint(0, 40, (crowd,), generator=g, dtype=torch.int32)
        x[picks[K - 1 : K - 1 + crowd]] = (base + steps).view(torch.float32)
        rows.append(x)
    return torch.stack(rows)


@pytest.mark.parametrize("spec", WARP_TOPK_SPECS, ids=lambda s: s.name)
def test_throughput_floor_below_tau_equals_the_generic_kernel(spec) -> None:
    # The warp kernel's throughput plan stages every key at or above tau with its low 5 bits cleared
    # (lane_named_tau, where route.cu's named_tau_applies: not at E = 384, whose rows here check the exact
    # rounds on the same crowded keys), where the latency plan stages those at or above tau: the extra keys
    # sit within 32 ulps below tau, and where they take the count past 32 the row goes to the rounds over
    # every key. Rows crowded there (counted below on torch's float32 keys, so that the test cannot pass on
    # rows without such keys), without a bias so that a key is its p's (or softmax numerator's) bits; both
    # plans bitwise against the generic kernel.
    config = spec.config(routed_scaling_factor=2.5, num_fused_shared_experts=1)
    rows = keys_below_tau_rows(config, seed_of("keys-below-tau", spec.name))
    if spec.scoring_func == "sigmoid":
        values = torch.sigmoid(rows)
    else:
        values = torch.exp(rows - rows.max(dim=1, keepdim=True).values)
    keys = values.view(torch.int32).to(torch.int64)  # positive floats: the bits order as the values
    lanes = keys.view(rows.shape[0], 32, -1).max(dim=2).values
    tau = lanes.sort(dim=1, descending=True).values[:, config.topk - 1 : config.topk]
    floor = tau & ~31
    extra = ((keys >= floor) & (keys < tau)).sum(dim=1)
    staged = (keys >= floor).sum(dim=1)
    assert int(((extra > 0) & (staged <= 32)).sum()) >= 10, "too few rows that stage extra keys"
    assert int(((extra > 0) & (staged > 32)).sum()) >= 10, "too few rows that extra keys take past 32"
    scores = rows.to(CUDA)
    plan = dispatch_plan(config, torch.float32)
    slow = run_plan(generic_plan(config, torch.float32), scores, None, config)
    for selection in (PLAN_THROUGHPUT, PLAN_LATENCY):
        note = f"{spec.name} plan {selection} keys below tau"
        fast = run_plan(plan, scores, None, config, selection)
        assert_valid(config, *fast)
        assert_bitwise_generic(fast, slow, note)
        assert_matches_reference(config, scores, None, fast, note, near_ties=True)


# ---- the bound plan (route.cu: select_row_bound): approximate keys, exact keys for the winners --------
# The bound kernel (PLAN_BOUND) of a sigmoid row of E <= 256 on the warp kernel routes on approximate keys
# and proves each row (route.cu's comment above select_row_bound); a row it cannot prove takes the exact path.
# These tests force the bound plan (selection) at any T and compare bitwise with the generic kernel.
# The sigmoid rows' bound plans (the warp kernel's and the segment kernel's proof; in every dtype). The
# softmax rows' lazy bound plan (route.cu: lazy_named_plan_applies) is tested with the named keys above.
BOUND_SPECS = [s for s in SPECIALIZATIONS if s.scoring_func == "sigmoid" and s.has_bound_plan(torch.float32)]


def test_bound_plan_serves_deepseek_v3() -> None:
    assert "deepseek-v3" in [s.name for s in BOUND_SPECS]


def test_approximate_sigmoid_is_within_its_bound_on_every_float() -> None:
    """route.cu's `approx_sigmoid` against `sigmoid` on all 2^32 - 2^24 floats that are not NaN: the
    bound plan's proof assumes |approx_sigmoid(x) - sigmoid(x)| <= kApproxSigmoidError for each."""
    import cupy

    checker = r"""
    extern "C" __global__ void approx_sigmoid_excess(unsigned long long* excess, unsigned* example,
                                                     unsigned* worst) {
      const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
      unsigned long long local = 0;
      float local_worst = 0.0f;
      for (unsigned long long i = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
           i < (1ull << 32); i += stride) {
        const float x = __uint_as_float(static_cast<unsigned>(i));
        if (x != x) continue;
        const double error = fabs(static_cast<double>(moegate::approx_sigmoid(x)) -
                                  static_cast<double>(moegate::sigmoid(x)));
        local_worst = fmaxf(local_worst, static_cast<float>(error));
        if (!(error <= static_cast<double>(moegate::kApproxSigmoidError))) {
          ++local;
          atomicCAS(example, 0u, static_cast<unsigned>(i));
        }
      }
      atomicAdd(excess, local);
      atomicMax(worst, __float_as_uint(local_worst));
    }
    """
    # -ftz=true flushes only sigmoids below 2^-126, whose error is below 2^-126 either way.
    kernel = route_cu_function(checker, "approx_sigmoid_excess")
    excess = cupy.zeros(1, dtype=cupy.uint64)
    example = cupy.zeros(1, dtype=cupy.uint32)
    worst = cupy.zeros(1, dtype=cupy.uint32)
    sm_count = torch.cuda.get_device_properties(0).multi_processor_count
    kernel((sm_count * 16,), (256,), (excess, example, worst))
    count = int(excess.get()[0])
    largest = float(worst.get().view("float32")[0])
    assert 0.0 < largest, "the check compared nothing"
    assert count == 0, (
        f"{count} floats exceed the bound, e.g. bits {int(example.get()[0]):#010x}; largest error {largest}"
    )


def _kept_groups(key: torch.Tensor, config: RoutingConfig, has_bias: bool) -> torch.Tensor:
    """Group scores (float64) of one row's keys [E] and the kept groups' indices (SPEC steps 3-4)."""
    G, KG = config.num_expert_group, config.topk_group
    grouped = key.view(G, -1)
    top = grouped.topk(min(2, grouped.shape[1]), dim=1).values
    scores = top.sum(dim=1) if has_bias else top[:, 0]
    return scores, scores.argsort(descending=True, stable=True)[:KG]


def near_tie_rows(config: RoutingConfig, bias: torch.Tensor | None, seed: int, base_rows: int = 20):
    """float32 logits whose K-th and (K+1)-th keys of the kept groups, or whose Kg-th and (Kg+1)-th group
    scores, differ by 0 and by +-2^-8 .. +-2^-30: on both sides of the bound plan's margins (about 2^-14)
    and down to float32's resolution. Built in float64 from random rows by moving one logit."""
    g = torch.Generator().manual_seed(seed)
    E, G, KG, K = config.num_experts, config.num_expert_group, config.topk_group, config.topk
    b = torch.zeros(E, dtype=torch.float64) if bias is None else bias.double().cpu()
    offsets = [0.0] + [s * 2.0**-j for j in range(8, 31, 2) for s in (1.0, -1.0)]
    rows = []

    def logit(p: float) -> float | None:
        return None if not 0.0 < p < 1.0 else float(torch.tensor(p / (1.0 - p), dtype=torch.float64).log())

    for _ in range(base_rows):
        x = torch.randn(E, generator=g, dtype=torch.float64) * 2.0
        key = torch.sigmoid(x) + b
        group_scores, kept = _kept_groups(key, config, bias is not None)
        in_kept = torch.zeros(G, dtype=torch.bool)
        in_kept[kept] = True
        candidates = key.masked_fill(~in_kept.repeat_interleave(E // G), float("-inf"))
        order = candidates.argsort(descending=True, stable=True)
        w, n = int(order[K - 1]), int(order[K])
        for off in offsets:
            moved = logit(float(key[w]) + off - float(b[n]))
            if moved is not None:
                row = x.clone()
                row[n] = moved
                rows.append(row)
        if KG < G:
            ranked = group_scores.argsort(descending=True, stable=True)
            kept_last, dropped_first = int(ranked[KG - 1]), int(ranked[KG])
            members = key.view(G, -1)[dropped_first]
            top2 = members.topk(2)
            first = dropped_first * (E // G) + int(top2.indices[0])
            for off in offsets:
                wanted = float(group_scores[kept_last]) + off
                new_top = wanted - float(top2.values[1]) if bias is not None else wanted
                moved = logit(new_top - float(b[first]))
                if moved is not None and new_top >= float(top2.values[1]):
                    row = x.clone()
                    row[first] = moved
                    rows.append(row)
    return torch.stack(rows).float()


def negative_nan_rows(config: RoutingConfig, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Rows with NaN logits of negative sign and odd payloads (a fraction of each row, and whole groups)."""
    g = torch.Generator().manual_seed(seed)
    E = config.num_experts
    rows = torch.randn(6, E, generator=g)
    if dtype == torch.float32:
        nans = torch.from_numpy(np.array([0xFFC00001, 0xFF800001, 0x7F800003], np.uint32).view(np.float32))
    else:
        nans = torch.from_numpy(np.array([0xFFC1, 0xFF81, 0x7F83], np.uint16).view(np.int16)).view(dtype)
    rows = rows.to(dtype)
    for r in range(6):
        picks = torch.rand(E, generator=g) < (0.1 if r < 3 else 1.0 / 3)
        if r == 5:
            picks = torch.arange(E) < E // max(1, config.num_expert_group)  # the first group, whole
        idx = picks.nonzero().flatten()
        rows[r, idx] = nans[torch.randint(0, 3, (idx.numel(),), generator=g)]
    return rows.to(CUDA)


def _assert_bound_plan_matches_generic(config, scores, bias, note: str) -> None:
    plan = dispatch_plan(config, scores.dtype)
    slow = run_plan(generic_plan(config, scores.dtype), scores, bias, config)
    fast = run_plan(plan, scores, bias, config, PLAN_BOUND)
    assert_valid(config, *fast)
    assert torch.equal(fast[0], slow[0]), f"{note}: ids differ from the generic kernel"
    assert torch.equal(fast[1], slow[1]), f"{note}: weights differ bitwise from the generic kernel"


@pytest.mark.parametrize("has_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("spec", BOUND_SPECS, ids=lambda s: s.name)
def test_bound_plan_near_ties_equal_the_generic_kernel(spec, has_bias) -> None:
    config = spec.config(routed_scaling_factor=2.5, num_fused_shared_experts=1)
    seed = seed_of("bound-near", spec.name, has_bias)
    bias = None
    if has_bias:
        bias = (torch.randn(config.num_experts, generator=torch.Generator().manual_seed(seed)) * 0.3).to(CUDA)
    rows = near_tie_rows(config, bias, seed).to(CUDA)
    assert rows.shape[0] > 300  # of 20 x 25 (fewer where a moved key has no sigmoid preimage)
    for dtype in (torch.float32, torch.bfloat16):
        scores = rows.to(dtype)
        _assert_bound_plan_matches_generic(config, scores, bias, f"{spec.name} near ties {dtype}")
        fast = run_plan(dispatch_plan(config, dtype), scores, bias, config, PLAN_BOUND)
        assert_matches_reference(config, scores, bias, fast, f"{spec.name} near ties {dtype}")


def bound_biases(config: RoutingConfig, seed: int) -> dict[str, torch.Tensor | None]:
    """Biases that stress the bound plan's constants (bmin, B) and its non-finite rules."""
    g = torch.Generator().manual_seed(seed)
    E = config.num_experts
    base = torch.randn(E, generator=g) * 0.3
    every_third = torch.arange(E) % 3 == 0
    biases: dict[str, torch.Tensor | None] = {
        "none": None,
        "bf16": base.to(torch.bfloat16),
        "f16": base.to(torch.float16),
        "wide": torch.randn(E, generator=g) * 1000.0,
        "equal": torch.full((E,), 0.5),
        "one +inf": base.clone().index_fill_(0, torch.tensor([E // 2]), float("inf")),
        "all -inf": torch.full((E,), float("-inf")),
    }
    for fill in (float("nan"), float("inf"), float("-inf")):
        biases[f"every third {fill}"] = base.masked_fill(every_third, fill)
    return {k: None if v is None else v.to(CUDA) for k, v in biases.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("spec", BOUND_SPECS, ids=lambda s: s.name)
def test_bound_plan_equals_the_generic_kernel_on_hard_rows_and_biases(spec, dtype) -> None:
    config = spec.config(routed_scaling_factor=2.5, num_fused_shared_experts=2, renormalize=True)
    seed = seed_of("bound-hard", spec.name, dtype)
    random_rows, _ = random_inputs(config, 300, dtype, None, seed)
    rows = torch.cat(
        [
            random_rows,
            tie_heavy_scores(config, dtype, seed),
            nonfinite_scores(config, dtype, seed),
            negative_nan_rows(config, dtype, seed),
        ]
    )
    E = config.num_experts
    for name, bias in bound_biases(config, seed).items():
        for layout in ("contiguous", "misaligned"):
            scores = rows
            if layout == "misaligned":  # one element in: the scalar-load loop
                buffer = torch.zeros(rows.shape[0], E + 1, dtype=dtype, device=CUDA)
                buffer[:, 1:] = rows
                scores = buffer[:, 1:]
            _assert_bound_plan_matches_generic(config, scores, bias, f"{spec.name} bias {name} {layout}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("mode", ["split", "replica"])
@pytest.mark.parametrize("spec", BOUND_SPECS, ids=lambda s: s.name)
def test_bound_plan_batches_mix_proved_and_unproved_rows(spec, mode, dtype, monkeypatch) -> None:
    """The warp bound kernel selects a batch of its rows (route.cu: select_row_bound), then finishes them
    together (finish_rows_bound), each row's slots in their own lanes, and routes the rows it cannot prove
    again. With one block per SM each warp routes about seven rows here: every warp has a full batch and a
    partial one, and the hard rows (near ties, non-finite and tie-heavy rows, scattered among random ones)
    put rows the proof leaves beside rows it proves in most batches. Bitwise the generic kernel."""
    config = spec.config(
        routed_scaling_factor=2.5, num_fused_shared_experts=3, shared_expert_mode=mode, renormalize=True
    )
    plan = dispatch_plan(config, dtype)
    sm_count = torch.cuda.get_device_properties(0).multi_processor_count
    seed = seed_of("bound-batch", spec.name, mode, dtype)
    bias = (torch.randn(config.num_experts, generator=torch.Generator().manual_seed(seed)) * 0.3).to(CUDA)
    hard = torch.cat(
        [
            near_tie_rows(config, bias, seed).to(CUDA).to(dtype),
            tie_heavy_scores(config, dtype, seed),
            nonfinite_scores(config, dtype, seed),
            negative_nan_rows(config, dtype, seed),
        ]
    )
    num_warps = plan.cap_blocks_per_sm(1) * sm_count * plan.warps_per_block
    num_rows = 7 * num_warps + 3
    scores, _ = random_inputs(config, num_rows, dtype, None, seed)
    places = torch.randperm(num_rows, generator=torch.Generator().manual_seed(seed))[: hard.shape[0]]
    scores[places.to(CUDA)] = hard
    slow = run_plan(generic_plan(config, dtype), scores, bias, config)
    monkeypatch.setattr(dispatch_module, "LOOP_BLOCK_ROWS", 0)  # the grid at its cap: seven rows a warp
    assert plan.geometry(num_rows, sm_count, PLAN_BOUND, 1)[0] * plan.warps_per_block == num_warps
    monkeypatch.setattr(route_module, "resident_blocks_per_sm", lambda *args: 1)
    fast = run_plan(plan, scores, bias, config, PLAN_BOUND)
    monkeypatch.undo()
    assert_valid(config, *fast)
    note = f"{spec.name} {mode} {dtype}"
    assert torch.equal(fast[0], slow[0]), f"{note}: ids differ from the generic kernel"
    assert torch.equal(fast[1], slow[1]), f"{note}: weights differ bitwise from the generic kernel"


# ---- determinism, row independence, graphs ------------------------------------------------------------
@pytest.mark.parametrize("name", ["deepseek-v3", "qwen3-next-80b-a3b"])
def test_bitwise_deterministic(name) -> None:
    config = PRESETS[name]
    scores, bias = random_inputs(config, 4099, torch.bfloat16, preset_bias_dtype(name), seed_of("det", name))
    first = run_route(scores, bias, config)
    for _ in range(20):
        again = run_route(scores, bias, config)
        assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


@pytest.mark.parametrize("name", ["deepseek-v3", "qwen3-next-80b-a3b", "deepseek-v2"])
def test_row_alone_equals_row_in_batch(name) -> None:
    config = PRESETS[name]  # split mode: the shared ids do not depend on the row index
    scores, bias = random_inputs(config, 8192, torch.float32, preset_bias_dtype(name), seed_of("alone", name))
    batch = run_route(scores, bias, config)
    for row in (0, 1, 4095, 8191):
        alone = run_route(scores[row : row + 1], bias, config)
        assert torch.equal(alone[0][0], batch[0][row]) and torch.equal(alone[1][0], batch[1][row]), row


@pytest.mark.parametrize("name", ["deepseek-v3", "deepseek-v2"])
def test_cuda_graph_capture_and_replay(name) -> None:
    config = PRESETS[name]
    scores, bias = random_inputs(
        config, 4096, torch.bfloat16, preset_bias_dtype(name), seed_of("graph", name)
    )
    out = poisoned_out(4096, config.output_width)
    route(scores, bias, config, out=out)  # compile and load before capturing
    torch.cuda.synchronize()
    out = poisoned_out(4096, config.output_width)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        route(scores, bias, config, out=out)
    for trial in range(3):
        fresh, _ = random_inputs(config, 4096, torch.bfloat16, None, seed_of("graph", name, trial))
        scores.copy_(fresh)
        out[0].fill_(POISON_ID)
        out[1].fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        eager = run_route(scores, bias, config)
        assert torch.equal(out[0], eager[0]) and torch.equal(out[1], eager[1])
        assert_matches_reference(config, scores, bias, out, f"graph replay {trial}")


# ---- the planted review bug ----------------------------------------------------------------------------
def test_planted_review_bug_build() -> None:
    config = PRESETS["deepseek-v3"].replace(apply_routed_scaling_factor_on_output=True)
    bugged = build_route(("MOEGATE_PLANT_REVIEW_BUG",))
    scores, bias = random_inputs(config, 256, torch.bfloat16, torch.float32, seed_of("bug"))
    ids, weights = run_route(scores, bias, config, fn=bugged)
    exp_ids, exp_w = reference.route(scores, bias, config)
    assert_valid(config, ids, weights)
    K, r = config.topk, config.routed_scaling_factor
    same = (ids == exp_ids).all(dim=1)
    assert same.float().mean() > 0.98, "the bugged build must select like the reference"
    ids, weights = ids[same], weights[same]
    # Routed weights sum to 1 (not r) and the shared slot is ~1/r (not 1): SPEC's invariant broken.
    n = int(same.sum())
    torch.testing.assert_close(weights[:, :K].sum(1), torch.ones(n, device=CUDA), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights[:, K], torch.full((n,), 1 / r, device=CUDA), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(weights, exp_w[same])
