"""Hand-worked examples for every step of SPEC.md, the arithmetic visible in each test."""

from __future__ import annotations

import math

import pytest
import torch

from moegate.reference import (
    RoutingConfig,
    biased_scores,
    expert_selection,
    group_scores,
    group_selection,
    output_scaling,
    probabilities,
    route,
    routed_weights,
    shared_slots,
)

INF, NAN = float("inf"), float("nan")


def logit(p: float) -> float:
    """The logit whose sigmoid is p."""
    return math.log(p / (1 - p))


def t(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# ---- step 1: probabilities --------------------------------------------------------------------------
def test_probabilities_sigmoid_hand_worked() -> None:
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 1 / (1 + 1/3) = 3/4, sigmoid(-ln 3) = 1/4
    p = probabilities(t([0.0, math.log(3), -math.log(3)]), "sigmoid")
    torch.testing.assert_close(p, t([0.5, 0.75, 0.25]))
    assert p.dtype == torch.float32


def test_probabilities_softmax_hand_worked() -> None:
    # exp of [0, ln 2, ln 5] is [1, 2, 5], sum 8: shares 1/8, 2/8, 5/8
    p = probabilities(t([0.0, math.log(2), math.log(5)]), "softmax")
    torch.testing.assert_close(p, t([0.125, 0.25, 0.625]))


def test_probabilities_softmax_is_shift_invariant_even_for_huge_logits() -> None:
    # 1000 + [0, ln 2, ln 5]: a naive exp overflows; max subtraction gives the same 1/8, 2/8, 5/8
    p = probabilities(t([1000.0, 1000.0 + math.log(2), 1000.0 + math.log(5)]), "softmax")
    torch.testing.assert_close(p, t([0.125, 0.25, 0.625]), rtol=1e-4, atol=1e-6)


def test_probabilities_non_finite_sigmoid() -> None:
    # NaN is read as -inf: sigmoid(NaN) = sigmoid(-inf) = 0; sigmoid(+inf) = 1
    p = probabilities(t([NAN, INF, -INF, 0.0]), "sigmoid")
    assert p.tolist() == [[0.0, 1.0, 0.0, 0.5]]


def test_probabilities_non_finite_softmax() -> None:
    # two +inf entries share 1 equally; the rest (finite, -inf, NaN) get 0
    p = probabilities(t([INF, 0.0, INF, NAN, -INF]), "softmax")
    assert p.tolist() == [[0.5, 0.0, 0.5, 0.0, 0.0]]
    # a row of all -inf (NaN counts as -inf) gives p = 0 everywhere, not NaN
    p = probabilities(t([-INF, NAN, -INF], [NAN, NAN, NAN]), "softmax")
    assert p.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_probabilities_reads_half_precision_as_float32() -> None:
    x = t([0.1, -2.0, 3.5])
    for dtype in (torch.float16, torch.bfloat16):
        low = x.to(dtype)
        assert torch.equal(probabilities(low, "sigmoid"), 1.0 / (1.0 + torch.exp(-low.float())))


# ---- step 2: biased scores ---------------------------------------------------------------------------
def test_biased_scores_hand_worked() -> None:
    # b = p + bias: 0.5 + 0.25 = 0.75, 0.25 - 0.5 = -0.25
    b = biased_scores(t([0.5, 0.25]), torch.tensor([0.25, -0.5]))
    assert b.tolist() == [[0.75, -0.25]]


def test_biased_scores_without_bias_is_p() -> None:
    p = t([0.5, 0.25])
    assert torch.equal(biased_scores(p, None), p)


def test_biased_scores_nan_bias_is_minus_inf() -> None:
    b = biased_scores(t([0.5, 0.25, 0.75]), torch.tensor([NAN, INF, -INF]))
    assert b.tolist() == [[-INF, INF, -INF]]


def test_biased_scores_reads_bf16_bias_as_float32() -> None:
    # bf16(0.1) = 0.10009765625 exactly; read as float32 it keeps that value (no reinterpretation)
    bias = torch.tensor([0.1], dtype=torch.bfloat16)
    b = biased_scores(t([0.5]), bias)
    assert b.item() == pytest.approx(0.5 + 0.10009765625, abs=0)


# ---- step 3: group scores ----------------------------------------------------------------------------
def test_group_scores_top2_sum_with_bias_and_max_without() -> None:
    # groups [0.9, 0.1, 0.5, 0.4] and [0.3, 0.8, 0.2, 0.7]
    b = t([0.9, 0.1, 0.5, 0.4, 0.3, 0.8, 0.2, 0.7])
    # with a bias: top-2 sums 0.9 + 0.5 = 1.4 and 0.8 + 0.7 = 1.5
    torch.testing.assert_close(group_scores(b, 2, has_bias=True), t([1.4, 1.5]))
    # without: the largest, 0.9 and 0.8
    torch.testing.assert_close(group_scores(b, 2, has_bias=False), t([0.9, 0.8]))


def test_group_scores_duplicate_maximum_counts_twice() -> None:
    # top-2 of [0.5, 0.5, 0.1] is 0.5 + 0.5 = 1.0 (values, not distinct values)
    assert group_scores(t([0.5, 0.5, 0.1]), 1, has_bias=True).tolist() == [[1.0]]


def test_group_scores_one_expert_per_group_is_b_itself() -> None:
    b = t([0.25, 0.75, -0.5])
    assert torch.equal(group_scores(b, 3, has_bias=True), b)


def test_group_scores_inf_minus_inf_is_minus_inf() -> None:
    # +inf + -inf is NaN in IEEE arithmetic; SPEC reads it as -inf
    assert group_scores(t([INF, -INF, 0.0, 0.0]), 2, has_bias=True).tolist() == [[-INF, 0.0]]


# ---- step 4: group selection -------------------------------------------------------------------------
def test_group_selection_hand_worked() -> None:
    assert group_selection(t([1.0, 3.0, 2.0, 0.5]), 2).tolist() == [[1, 2]]


def test_group_selection_ties_lower_group_index_wins() -> None:
    # groups 1 and 2 tie at 3.0: with Kg = 1 group 1 is kept, with Kg = 2 both, in index order
    assert group_selection(t([1.0, 3.0, 3.0, 2.0]), 1).tolist() == [[1]]
    assert group_selection(t([1.0, 3.0, 3.0, 2.0]), 2).tolist() == [[1, 2]]
    # all equal (also all -inf): the first Kg groups
    assert group_selection(t([-INF, -INF, -INF, -INF]), 3).tolist() == [[0, 1, 2]]


# ---- step 5: expert selection ------------------------------------------------------------------------
def test_expert_selection_descending_with_lower_index_on_ties() -> None:
    # group 0 kept: b = 0.1, 0.9, 0.5, 0.5 -> 1 (0.9), then 2 and 3 tie at 0.5: 2 first
    b = t([0.1, 0.9, 0.5, 0.5, 0.95, 0.2, 0.3, 0.4])
    assert expert_selection(b, torch.tensor([[0]]), 2, 3).tolist() == [[1, 2, 3]]


def test_expert_selection_only_from_kept_groups_even_at_minus_inf() -> None:
    # the kept group 0 holds only -inf; the dropped group 1 holds 5.0: still only experts 0 and 1
    # (a kernel that masks dropped groups with -inf as a sentinel would tie and could pick 4 or 5)
    b = t([-INF, -INF, -INF, -INF, 5.0, 5.0, 5.0, 5.0])
    assert expert_selection(b, torch.tensor([[0]]), 2, 2).tolist() == [[0, 1]]


def test_expert_selection_across_kept_groups_in_score_order() -> None:
    # kept groups 2 then 0 (selection order does not matter); experts by b: 4 (0.9), 1 (0.8), 5 (0.7)
    b = t([0.1, 0.8, 0.95, 0.99, 0.9, 0.7])
    assert expert_selection(b, torch.tensor([[2, 0]]), 3, 3).tolist() == [[4, 1, 5]]


# ---- step 6: routed weights --------------------------------------------------------------------------
def test_routed_weights_hand_worked() -> None:
    p = t([0.2, 0.6, 0.1, 0.1])
    ids = torch.tensor([[1, 0]])
    torch.testing.assert_close(routed_weights(p, ids, renormalize=False), t([0.6, 0.2]))
    # renormalized: 0.6 / 0.8 = 0.75 and 0.2 / 0.8 = 0.25
    torch.testing.assert_close(routed_weights(p, ids, renormalize=True), t([0.75, 0.25]))


def test_routed_weights_all_zero_row_gives_zero_not_nan() -> None:
    # 0 / (0 + 1e-20) = 0: the epsilon keeps an all-zero row finite
    w = routed_weights(t([0.0, 0.0, 0.0]), torch.tensor([[0, 1]]), renormalize=True)
    assert w.tolist() == [[0.0, 0.0]]


# ---- step 7: shared slots ----------------------------------------------------------------------------
def test_shared_slots_split() -> None:
    cfg = RoutingConfig(num_experts=8, topk=2, routed_scaling_factor=2.5, num_fused_shared_experts=2)
    ids, weights = shared_slots(cfg, 3, torch.device("cpu"))
    assert ids.tolist() == [[8, 9]] * 3
    torch.testing.assert_close(weights, torch.full((3, 2), 0.4))  # 1 / 2.5


def test_shared_slots_replica_uses_row_index_mod_s() -> None:
    cfg = RoutingConfig(
        num_experts=8,
        topk=2,
        num_fused_shared_experts=3,
        shared_expert_mode="replica",
        routed_scaling_factor=4.0,
    )
    ids, weights = shared_slots(cfg, 5, torch.device("cpu"))
    assert ids.tolist() == [[8], [9], [10], [8], [9]]  # 8 + row % 3
    assert weights.tolist() == [[0.25]] * 5


def test_shared_slots_none() -> None:
    ids, weights = shared_slots(RoutingConfig(num_experts=8, topk=2), 4, torch.device("cpu"))
    assert ids.shape == (4, 0) and weights.shape == (4, 0)


# ---- step 8: output scaling --------------------------------------------------------------------------
def test_output_scaling() -> None:
    w = t([0.75, 0.25, 0.4])
    on = RoutingConfig(
        num_experts=4, topk=2, routed_scaling_factor=2.5, apply_routed_scaling_factor_on_output=True
    )
    torch.testing.assert_close(output_scaling(w, on), t([1.875, 0.625, 1.0]))
    assert torch.equal(output_scaling(w, on.replace(apply_routed_scaling_factor_on_output=False)), w)


# ---- all steps together ------------------------------------------------------------------------------
def test_route_hand_worked_grouped_biased_example() -> None:
    """E = 8 in G = 4 groups of 2, Kg = 2, K = 3, r = 2.5, one shared expert.

    p     = [.125 .875 | .75 .5 | .25 .375 | .0625 .625]
    bias  = [0    0    | 0   0  | 0   0    | .5     0   ]
    b     = [.125 .875 | .75 .5 | .25 .375 | .5625 .625]
    group scores (top-2 sums): 1.0, 1.25, .625, 1.1875 -> keep groups 1 and 3
    candidates 2 (.75), 3 (.5), 6 (.5625), 7 (.625) -> top-3: 2, 7, 6
    weights from the unbiased p: .75, .625, .0625, sum 1.4375 -> .75/1.4375, .625/1.4375, .0625/1.4375
    shared slot: id 8, weight 1 / 2.5 = 0.4
    """
    p = [0.125, 0.875, 0.75, 0.5, 0.25, 0.375, 0.0625, 0.625]
    scores = torch.tensor([[logit(x) for x in p]])
    bias = torch.tensor([0, 0, 0, 0, 0, 0, 0.5, 0])
    cfg = RoutingConfig(
        num_experts=8,
        topk=3,
        num_expert_group=4,
        topk_group=2,
        routed_scaling_factor=2.5,
        num_fused_shared_experts=1,
    )
    ids, weights = route(scores, bias, cfg)
    assert ids.tolist() == [[2, 7, 6, 8]]
    expected = [0.75 / 1.4375, 0.625 / 1.4375, 0.0625 / 1.4375, 0.4]
    torch.testing.assert_close(weights, torch.tensor([expected]), rtol=1e-5, atol=1e-6)
    # the same, scaled on the output: routed weights times 2.5, the shared slot exactly 1
    ids2, weights2 = route(scores, bias, cfg.replace(apply_routed_scaling_factor_on_output=True))
    assert torch.equal(ids2, ids)
    torch.testing.assert_close(weights2, torch.tensor([[2.5 * w for w in expected[:3]] + [1.0]]))


def test_route_hand_worked_softmax_without_bias() -> None:
    """deepseek-v2 style: softmax, no bias, max as group score, no renormalization.

    exp(x) = [1, 2, 4, 8, 16, 32]: p = x / 63. Groups of 2: max p = 2/63, 8/63, 32/63; Kg = 2 keeps
    groups 2 and 1; K = 3: experts 5 (32/63), 4 (16/63), 3 (8/63); weights stay p (no renormalize).
    """
    scores = torch.tensor([[math.log(v) for v in (1, 2, 4, 8, 16, 32)]])
    cfg = RoutingConfig(
        num_experts=6, topk=3, num_expert_group=3, topk_group=2, scoring_func="softmax", renormalize=False
    )
    ids, weights = route(scores, None, cfg)
    assert ids.tolist() == [[5, 4, 3]]
    torch.testing.assert_close(weights, torch.tensor([[32 / 63, 16 / 63, 8 / 63]]))
