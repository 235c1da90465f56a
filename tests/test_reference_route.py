"""`moegate.reference.route` against SPEC.md: ties, non-finite inputs, dtypes, strides, the invariant, and an
independent float64 recomputation written here."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from moegate.reference import PRESET_HAS_BIAS, PRESETS, RoutingConfig, make_toy_moe, probabilities, route

INF, NAN = float("inf"), float("nan")
DSV3 = PRESETS["deepseek-v3"]


def random_problem(cfg: RoutingConfig, rows: int, seed: int, with_bias: bool = True, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    scores = (2 * torch.randn(rows, cfg.num_experts, generator=gen)).to(dtype)
    bias = 0.1 * torch.randn(cfg.num_experts, generator=gen) if with_bias else None
    return scores, bias


def assert_ids_valid(ids: torch.Tensor, cfg: RoutingConfig) -> None:
    """SPEC guarantee: routed ids in [0, E), shared ids in [E, E + S), distinct within a row."""
    routed, shared = ids[:, : cfg.topk], ids[:, cfg.topk :]
    assert ((routed >= 0) & (routed < cfg.num_experts)).all()
    assert ((shared >= cfg.num_experts) & (shared < cfg.num_experts + cfg.num_fused_shared_experts)).all()
    for row in ids.tolist():
        assert len(set(row)) == len(row), row


# ---- an independent float64 recomputation ------------------------------------------------------------
def route_float64(scores: torch.Tensor, bias: torch.Tensor | None, cfg: RoutingConfig):
    """SPEC.md steps 1-8 row by row in float64 with Python sorting: shares no code with the reference."""
    E, n = cfg.num_experts, cfg.experts_per_group
    out_ids, out_w, out_b = [], [], []
    for row_index, row in enumerate(scores.double().tolist()):
        x = [-math.inf if math.isnan(v) else v for v in row]
        if cfg.scoring_func == "sigmoid":
            p = [1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0 for v in x]
        else:
            m = max(x)
            e = [math.exp(v - m) for v in x]
            p = [v / sum(e) for v in e]
        bias_list = [0.0] * E if bias is None else bias.double().tolist()
        b = [pi + bi for pi, bi in zip(p, bias_list, strict=True)]
        groups = [sorted(b[g * n : (g + 1) * n], reverse=True) for g in range(cfg.num_expert_group)]
        gscore = [sum(grp[:2]) if bias is not None else grp[0] for grp in groups]
        kept = sorted(range(cfg.num_expert_group), key=lambda g: (-gscore[g], g))[: cfg.topk_group]
        candidates = [e for g in kept for e in range(g * n, (g + 1) * n)]
        chosen = sorted(candidates, key=lambda e: (-b[e], e))[: cfg.topk]
        w = [p[e] for e in chosen]
        if cfg.renormalize:
            total = sum(w) + 1e-20
            w = [v / total for v in w]
        r = cfg.routed_scaling_factor
        if cfg.num_shared_slots:
            S = cfg.num_fused_shared_experts
            shared = list(range(E, E + S)) if cfg.shared_expert_mode == "split" else [E + row_index % S]
            chosen, w = chosen + shared, w + [1.0 / r] * len(shared)
        if cfg.apply_routed_scaling_factor_on_output:
            w = [v * r for v in w]
        out_ids.append(chosen)
        out_w.append(w)
        out_b.append(b)
    return out_ids, out_w, out_b


@pytest.mark.parametrize("name", list(PRESETS))
def test_agrees_with_independent_float64_recomputation(name: str) -> None:
    cfg = PRESETS[name].replace(apply_routed_scaling_factor_on_output=True)
    scores, bias = random_problem(cfg, rows=48, seed=7, with_bias=PRESET_HAS_BIAS[name])
    ids, weights = route(scores, bias, cfg)
    ids64, w64, b64 = route_float64(scores, bias, cfg)
    for row in range(scores.shape[0]):
        for slot in range(cfg.topk):
            got, want = int(ids[row, slot]), ids64[row][slot]
            if got != want:
                # only a near-tie (float32 vs float64 rounding) may order two experts differently
                assert abs(b64[row][got] - b64[row][want]) < 1e-6, (row, slot, got, want)
    torch.testing.assert_close(weights.double(), torch.tensor(w64, dtype=torch.float64), rtol=1e-5, atol=1e-6)


# ---- ties: the lower index wins -----------------------------------------------------------------------
def test_all_equal_row_picks_lowest_indices_in_lowest_groups() -> None:
    # every group ties, every expert ties: groups 0..3 kept, experts 0..7 (the first 8 of group 0 and 1)
    ids, _ = route(torch.zeros(3, 256), torch.zeros(256), DSV3)
    assert ids[:, :8].tolist() == [list(range(8))] * 3


def test_group_tie_lower_group_wins() -> None:
    # 4 groups of 2, Kg = 1; groups 1 and 3 tie for best: group 1 is kept
    cfg = RoutingConfig(num_experts=8, topk=2, num_expert_group=4, topk_group=1)
    scores = torch.tensor([[0.0, 0.0, 3.0, 1.0, 0.0, 0.0, 3.0, 1.0]])
    ids, _ = route(scores, torch.zeros(8), cfg)
    assert ids.tolist() == [[2, 3]]


def test_expert_tie_lower_expert_wins_and_order_is_by_index() -> None:
    cfg = RoutingConfig(num_experts=6, topk=3)
    scores = torch.tensor([[1.0, 2.0, 1.0, 2.0, 2.0, 0.0]])
    ids, _ = route(scores, None, cfg)
    assert ids.tolist() == [[1, 3, 4]]


def test_bf16_rounded_ties_are_deterministic() -> None:
    # bf16 has few distinct values near 0: many exact ties; the lower index wins each of them
    scores = (0.01 * torch.randn(64, 256, generator=torch.Generator().manual_seed(3))).to(torch.bfloat16)
    ids, _ = route(scores, None, DSV3)
    p = probabilities(scores, "sigmoid")
    for row in range(64):
        chosen = ids[row, :8].tolist()
        for a, b in itertools.pairwise(chosen):
            assert p[row, a] > p[row, b] or (p[row, a] == p[row, b] and a < b)


# ---- non-finite inputs --------------------------------------------------------------------------------
@pytest.mark.parametrize("scoring", ["sigmoid", "softmax"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_non_finite_inputs_keep_ids_valid_and_weights_finite(scoring: str, with_bias: bool) -> None:
    cfg = DSV3.replace(scoring_func=scoring)
    gen = torch.Generator().manual_seed(11)
    scores = torch.randn(64, 256, generator=gen)
    mask = torch.rand(64, 256, generator=gen)
    scores[mask < 0.1] = NAN
    scores[(mask >= 0.1) & (mask < 0.15)] = INF
    scores[(mask >= 0.15) & (mask < 0.2)] = -INF
    scores[0] = NAN  # an all-NaN row
    scores[1] = -INF  # an all -inf row
    scores[2] = INF  # an all +inf row
    bias = None
    if with_bias:
        bias = 0.1 * torch.randn(256, generator=gen)
        bias[::7] = NAN
        bias[3::11] = INF
        bias[5::13] = -INF
    ids, weights = route(scores, bias, cfg)
    assert_ids_valid(ids, cfg)
    assert not torch.isnan(weights).any()


def test_all_nan_row_routes_to_lowest_ids_with_zero_weight() -> None:
    ids, weights = route(torch.full((1, 256), NAN), torch.zeros(256), DSV3)
    assert ids.tolist() == [[0, 1, 2, 3, 4, 5, 6, 7, 256]]
    assert weights[0, :8].tolist() == [0.0] * 8


# ---- shapes, strides, dtypes, devices ----------------------------------------------------------------
def test_zero_rows_give_empty_outputs() -> None:
    ids, weights = route(torch.empty(0, 256), torch.zeros(256), DSV3)
    assert ids.shape == (0, 9) and ids.dtype == torch.int32
    assert weights.shape == (0, 9) and weights.dtype == torch.float32


def test_row_strided_scores_equal_contiguous() -> None:
    wide = torch.randn(33, 300, generator=torch.Generator().manual_seed(5))
    strided = wide[:, :256]
    assert strided.stride() == (300, 1)
    bias = 0.1 * torch.randn(256)
    for a, b in zip(route(strided, bias, DSV3), route(strided.contiguous(), bias, DSV3), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_scores_are_read_exactly_as_float32(dtype: torch.dtype) -> None:
    scores, bias = random_problem(DSV3, rows=40, seed=9, dtype=dtype)
    for a, b in zip(route(scores, bias, DSV3), route(scores.float(), bias, DSV3), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bias_dtype", [torch.bfloat16, torch.float16])
def test_low_precision_bias_with_float32_scores_is_read_as_float32(bias_dtype: torch.dtype) -> None:
    scores, bias = random_problem(DSV3, rows=40, seed=13)
    low = bias.to(bias_dtype)
    for a, b in zip(route(scores, low, DSV3), route(scores, low.float(), DSV3), strict=True):
        assert torch.equal(a, b)


def test_inputs_are_never_modified() -> None:
    scores, bias = random_problem(DSV3, rows=16, seed=17)
    scores[0, :5] = NAN
    bias[3] = NAN
    before = scores.clone(), bias.clone()
    route(scores, bias, DSV3)
    assert torch.equal(scores.view(torch.int32), before[0].view(torch.int32))
    assert torch.equal(bias.view(torch.int32), before[1].view(torch.int32))


@pytest.mark.parametrize(
    "cfg",
    [
        DSV3,
        PRESETS["mixtral-8x7b"],
        RoutingConfig(num_experts=72, topk=6, num_expert_group=8, topk_group=3, scoring_func="sigmoid"),
        RoutingConfig(num_experts=72, topk=6, scoring_func="softmax"),
    ],
    ids=["deepseek-v3", "mixtral-8x7b", "e72-sigmoid-grouped", "e72-softmax"],
)
def test_each_row_is_independent_of_the_batch(cfg: RoutingConfig) -> None:
    # bitwise: short tensors take other CPU code paths in some torch ops (torch.sigmoid does), which must
    # not leak into the result
    scores, bias = random_problem(cfg, rows=301, seed=19)
    ids, weights = route(scores, bias, cfg)
    for row in (0, 7, 150, 299, 300):
        one_ids, one_w = route(scores[row : row + 1], bias, cfg)
        assert torch.equal(one_ids, ids[row : row + 1])
        assert torch.equal(one_w.view(torch.int32), weights[row : row + 1].view(torch.int32)), row


def test_same_input_gives_bitwise_same_output() -> None:
    scores, bias = random_problem(DSV3, rows=64, seed=23)
    first = route(scores, bias, DSV3)
    second = route(scores, bias, DSV3)
    assert torch.equal(first[0], second[0]) and torch.equal(
        first[1].view(torch.int32), second[1].view(torch.int32)
    )


def test_replica_ids_come_from_the_row_index() -> None:
    cfg = DSV3.replace(num_fused_shared_experts=4, shared_expert_mode="replica")
    scores, bias = random_problem(cfg, rows=10, seed=29)
    ids, _ = route(scores, bias, cfg)
    assert ids[:, -1].tolist() == [256 + row % 4 for row in range(10)]


@pytest.mark.gpu
def test_cuda_tensors_give_the_same_result_as_cpu() -> None:
    scores, bias = random_problem(DSV3, rows=256, seed=31, dtype=torch.bfloat16)
    cpu = route(scores, bias, DSV3)
    gpu = route(scores.cuda(), bias.cuda(), DSV3)
    assert gpu[0].device.type == "cuda"
    assert torch.equal(cpu[0], gpu[0].cpu())
    torch.testing.assert_close(cpu[1], gpu[1].cpu(), rtol=1e-5, atol=1e-6)


# ---- the invariant, and fused == unfused on the toy layer --------------------------------------------
def invariant_variants():
    for name, cfg in PRESETS.items():
        for apply_on_output, mode in itertools.product((False, True), ("split", "replica")):
            shared = max(cfg.num_fused_shared_experts, 1 if mode == "replica" else 0)
            yield pytest.param(
                name,
                cfg.replace(
                    apply_routed_scaling_factor_on_output=apply_on_output,
                    shared_expert_mode=mode,
                    num_fused_shared_experts=shared,
                ),
                id=f"{name}-{'out' if apply_on_output else 'caller'}-{mode}",
            )


@pytest.mark.parametrize(("name", "cfg"), list(invariant_variants()))
def test_effective_weight_invariant_and_fused_equals_unfused(name: str, cfg: RoutingConfig) -> None:
    scores, bias = random_problem(cfg, rows=24, seed=37, with_bias=PRESET_HAS_BIAS[name])
    ids, weights = route(scores, bias, cfg)
    c, r, K = cfg.effective_scale, cfg.routed_scaling_factor, cfg.topk
    effective = c * weights.double()
    # each shared slot's effective weight is 1
    torch.testing.assert_close(effective[:, K:], torch.ones_like(effective[:, K:]), rtol=1e-6, atol=0)
    # the routed effective weights sum to r (renormalize) or r * sum(p of the routed)
    if cfg.renormalize:
        expected_sum = torch.full((scores.shape[0],), r, dtype=torch.float64)
    else:
        p = (
            torch.sigmoid(scores.double())
            if cfg.scoring_func == "sigmoid"
            else torch.softmax(scores.double(), -1)
        )
        expected_sum = r * torch.gather(p, 1, ids[:, :K].long()).sum(-1)
    torch.testing.assert_close(effective[:, :K].sum(-1), expected_sum, rtol=1e-5, atol=1e-7)
    # end to end: combining the fused output equals r * sum(w_i E_i(x)) + sum(shared_j(x))
    layer = make_toy_moe(cfg, hidden=8, seed=1)
    x = torch.randn(scores.shape[0], 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(
        layer.fused(x, ids, weights), layer.unfused(x, scores, bias), rtol=1e-5, atol=1e-5
    )


def test_toy_layer_catches_the_review_bug() -> None:
    """The invariant test can fail: the review's weights (shared = sum(routed)/r, everything divided by the
    routed sum, and the outer r scaling switched off, so c = 1) weight the shared expert 1/r, not 1."""
    cfg = DSV3
    scores, bias = random_problem(cfg, rows=8, seed=41)
    ids, weights = route(scores, bias, cfg.replace(renormalize=False))
    routed_sum = weights[:, : cfg.topk].sum(-1, keepdim=True)
    buggy = weights.clone()
    buggy[:, cfg.topk :] = routed_sum / cfg.routed_scaling_factor
    buggy = buggy / routed_sum
    # the caller's r scaling switched off: the combination uses c = 1 with weights that were never scaled
    layer_without_outer_scaling = make_toy_moe(
        cfg.replace(apply_routed_scaling_factor_on_output=True), seed=3
    )
    layer = make_toy_moe(cfg, seed=3)
    x = torch.randn(8, 8, dtype=torch.float64)
    fused = layer_without_outer_scaling.fused(x, ids, buggy)
    assert not torch.allclose(fused, layer.unfused(x, scores, bias), rtol=1e-3)
    # the shared slot's effective weight is 1/r instead of 1
    torch.testing.assert_close(
        buggy[:, -1].double(), torch.full((8,), 1 / cfg.routed_scaling_factor, dtype=torch.float64)
    )
