"""The oracle on hand-made outputs: valid ones pass, each corruption is reported with its rule, row and slot,
and every valid tie resolution is accepted while exact ties must follow the lower-index rule."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from moegate.properties import oracle
from moegate.properties.oracle import Violation, check_routing, tie_rows
from moegate.properties.problem import RoutingProblem
from moegate.properties.strategies import routing_problems
from moegate.reference import RoutingConfig, get_preset, route


def make(config: RoutingConfig, scores, bias=None, dtype=torch.float32) -> RoutingProblem:
    scores = torch.as_tensor(scores, dtype=torch.float32).to(dtype)
    if bias is not None:
        bias = torch.as_tensor(bias, dtype=torch.float32)
    return RoutingProblem(config, scores, bias)


def where(violations: list[Violation]) -> set[tuple[str, int | None, int | None]]:
    return {(v.rule, v.row, v.slot) for v in violations}


def rules(violations: list[Violation]) -> set[str]:
    return {v.rule for v in violations}


@pytest.fixture
def grouped() -> tuple[RoutingProblem, torch.Tensor, torch.Tensor]:
    """deepseek-v3-like routing: 8 rows, E=64, 8 groups keep 4, K=6, bias, S=2 split, r=2.5."""
    config = RoutingConfig(
        num_experts=64,
        topk=6,
        num_expert_group=8,
        topk_group=4,
        routed_scaling_factor=2.5,
        num_fused_shared_experts=2,
    )
    g = torch.Generator().manual_seed(7)
    problem = make(config, torch.randn(8, 64, generator=g), torch.randn(64, generator=g) * 0.01)
    ids, weights = route(problem.scores, problem.bias, config)
    return problem, ids, weights


@pytest.mark.parametrize(
    "name", ["deepseek-v3", "deepseek-v2", "kimi-k2", "mixtral-8x7b", "llama-4-maverick"]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_reference_output_is_valid(name: str, dtype: torch.dtype) -> None:
    config = get_preset(name)
    g = torch.Generator().manual_seed(1)
    bias = torch.randn(config.num_experts, generator=g) * 0.01
    problem = make(config, torch.randn(16, config.num_experts, generator=g), bias, dtype)
    ids, weights = route(problem.scores, problem.bias, config)
    assert check_routing(problem, ids, weights) == []


def test_valid_fixture_passes(grouped) -> None:
    problem, ids, weights = grouped
    assert check_routing(problem, ids, weights) == []


def test_id_out_of_range(grouped) -> None:
    problem, ids, weights = grouped
    ids = ids.clone()
    ids[3, 2] = 64
    found = check_routing(problem, ids, weights)
    assert ("id_range", 3, 2) in where(found)
    assert all(v.row == 3 for v in found)


def test_negative_shared_id_out_of_range(grouped) -> None:
    problem, ids, weights = grouped
    ids = ids.clone()
    ids[0, 7] = -1
    assert ("id_range", 0, 7) in where(check_routing(problem, ids, weights))


def test_duplicate_id(grouped) -> None:
    problem, ids, weights = grouped
    ids = ids.clone()
    ids[5, 4] = ids[5, 1]
    found = check_routing(problem, ids, weights)
    assert ("distinct_ids", 5, 4) in where(found)


def test_nan_weight(grouped) -> None:
    problem, ids, weights = grouped
    weights = weights.clone()
    weights[2, 3] = float("nan")
    found = check_routing(problem, ids, weights)
    assert ("no_nan", 2, 3) in where(found)
    assert ("routed_weights", 2, 3) in where(found)


def test_wrong_split_shared_id(grouped) -> None:
    problem, ids, weights = grouped
    ids = ids.clone()
    ids[1, 6], ids[1, 7] = ids[1, 7].item(), ids[1, 6].item()  # E+1, E: in range, distinct, wrong order
    found = check_routing(problem, ids, weights)
    assert where(found) == {("shared_slots", 1, 6), ("shared_slots", 1, 7)}


def test_replica_id_without_modulo() -> None:
    config = RoutingConfig(
        num_experts=8,
        topk=2,
        num_fused_shared_experts=2,
        shared_expert_mode="replica",
        scoring_func="softmax",
    )
    problem = make(config, torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
    ids, weights = route(problem.scores, None, config)
    assert ids[:, 2].tolist() == [8, 9, 8, 9]
    assert check_routing(problem, ids, weights) == []
    bad = ids.clone()
    bad[2, 2] = 9  # row 2 must use E + 2 % 2 = 8; 9 is in range but wrong
    found = check_routing(problem, bad, weights)
    assert where(found) == {("shared_slots", 2, 2)}


def test_shared_weight_breaks_invariant(grouped) -> None:
    problem, ids, weights = grouped
    weights = weights.clone()
    weights[4, 6] = 0.5  # must be 1 / r = 0.4
    found = check_routing(problem, ids, weights)
    assert ("shared_slots", 4, 6) in where(found)
    assert ("invariant", 4, 6) in where(found)


def test_routed_weight_wrong(grouped) -> None:
    problem, ids, weights = grouped
    weights = weights.clone()
    weights[6, 2] *= 1.01
    found = check_routing(problem, ids, weights)
    assert ("routed_weights", 6, 2) in where(found)
    assert ("invariant", 6, None) in where(found)
    assert {v.row for v in found} == {6}


def test_output_scaling_detected(grouped) -> None:
    problem, ids, weights = grouped
    scaled = weights * problem.config.routed_scaling_factor  # applied, but the config says the caller does
    found = check_routing(problem, ids, scaled)
    assert "output_scaling" in rules(found)
    assert "routed_weights" not in rules(found)
    assert ("output_scaling", 0, 0) in where(found)


def test_review_bug_output_rejected() -> None:
    # SPEC's review bug on a config that applies r on the output: shared = sum(routed) / r, all / sum.
    config = get_preset("deepseek-v3").replace(apply_routed_scaling_factor_on_output=True)
    g = torch.Generator().manual_seed(3)
    problem = make(config, torch.randn(4, 256, generator=g), torch.randn(256, generator=g) * 0.01)
    ids, _ = route(problem.scores, problem.bias, config)
    p = torch.sigmoid(problem.scores.float()).gather(1, ids[:, :8].long())
    routed_sum = p.sum(-1, keepdim=True)
    buggy = torch.cat([p, routed_sum / 2.5], dim=1) / routed_sum
    found = check_routing(problem, ids, buggy)
    # The shared weight 1 / r where 1 is due reads as a scaling error: r missing on the output.
    assert {"invariant", "output_scaling"} <= rules(found)
    assert ("output_scaling", 0, 8) in where(found)
    assert ("invariant", 0, 8) in where(found)


def test_skipped_better_expert(grouped) -> None:
    problem, ids, weights = grouped
    sc = oracle.read_scores(problem)
    row = 0
    routed = ids[row, :6].long()
    # Replace the last routed expert with the weakest expert of the same group.
    group = int(routed[5]) // 8
    members = torch.arange(group * 8, group * 8 + 8)
    members = members[~torch.isin(members, routed)]
    worst = int(members[sc.b[row, members].argmin()])
    bad = ids.clone()
    bad[row, 5] = worst
    found = check_routing(problem, bad, weights)
    assert ("expert_selection", row, 5) in where(found)


def test_slots_out_of_order(grouped) -> None:
    problem, ids, weights = grouped
    bad_ids, bad_w = ids.clone(), weights.clone()
    bad_ids[3, [0, 1]] = ids[3, [1, 0]]
    bad_w[3, [0, 1]] = weights[3, [1, 0]]
    found = check_routing(problem, bad_ids, bad_w)
    assert where(found) == {("expert_order", 3, 1)}


def test_expert_from_dropped_group() -> None:
    # 4 groups of 2, keep 1. Group 2 is clearly best; the output takes one expert from group 0.
    config = RoutingConfig(num_experts=8, topk=2, num_expert_group=4, topk_group=1, renormalize=False)
    problem = make(config, [[0.0, -1.0, 0.5, 0.4, 3.0, 2.0, -2.0, -3.0]], [0.0] * 8)
    ids, _ = route(problem.scores, problem.bias, config)
    assert ids[0].tolist() == [4, 5]
    bad = torch.tensor([[4, 2]], dtype=torch.int32)
    p = torch.sigmoid(problem.scores)[0, [4, 2]][None]
    found = check_routing(problem, bad, p)
    assert ("group_selection", 0, None) in where(found)


def test_used_group_beaten_by_unused_group() -> None:
    # 4 groups of 2, keep 2, K = 2: routing both experts of group 3 (weakest) while groups 1, 2 beat it.
    config = RoutingConfig(num_experts=8, topk=2, num_expert_group=4, topk_group=2, renormalize=False)
    problem = make(config, [[0.0, 0.1, 1.0, 1.1, 2.0, 2.1, -1.0, -1.1]], [0.0] * 8)
    bad = torch.tensor([[6, 7]], dtype=torch.int32)
    p = torch.sigmoid(problem.scores)[0, [6, 7]][None]
    found = check_routing(problem, bad, p)
    assert "group_selection" in rules(found)
    assert found[0].row == 0


def test_wrong_shape_and_dtype(grouped) -> None:
    problem, ids, weights = grouped
    found = check_routing(problem, ids[:, :7], weights[:, :7])
    assert rules(found) == {"output_format"} and all(v.row is None for v in found)
    found = check_routing(problem, ids.long(), weights.double())
    assert [v.rule for v in found] == ["output_format", "output_format"]
    found = check_routing(problem, ids.tolist(), weights)
    assert "output_format" in rules(found)


def test_empty_problem() -> None:
    config = get_preset("deepseek-v3")
    problem = make(config, torch.empty(0, 256), torch.zeros(256))
    ids, weights = route(problem.scores, problem.bias, config)
    assert ids.shape == (0, 9)
    assert check_routing(problem, ids, weights) == []
    assert tie_rows(problem).shape == (0,)
    assert rules(check_routing(problem, ids[:, :3], weights)) == {"output_format"}


# ---- ties --------------------------------------------------------------------------------------------


def near_tie_problem() -> RoutingProblem:
    # Experts 1 and 3 differ by one float32 ulp in the logit: a genuine near-tie at the K boundary.
    x = 0.75
    y = float(torch.nextafter(torch.tensor(x), torch.tensor(math.inf)))
    config = RoutingConfig(num_experts=6, topk=2, scoring_func="sigmoid", renormalize=True)
    return make(config, [[0.0, x, -1.0, y, 2.0, -3.0]])


def test_near_tie_alternative_accepted() -> None:
    problem = near_tie_problem()
    ids, weights = route(problem.scores, None, problem.config)
    first = int(ids[0, 1])
    assert ids[0, 0] == 4 and first in (1, 3)
    assert check_routing(problem, ids, weights) == []
    other = 4 - first  # the other expert of the near-tie (1 <-> 3)
    p = torch.sigmoid(problem.scores[0].double())
    alternative_w = (p[[4, other]] / p[[4, other]].sum()).float()[None]
    alternative = torch.tensor([[4, other]], dtype=torch.int32)
    assert check_routing(problem, alternative, alternative_w) == []
    assert tie_rows(problem).tolist() == [True]
    # A third expert is not a tie: rejected.
    third_w = (p[[4, 0]] / p[[4, 0]].sum()).float()[None]
    assert ("expert_selection", 0, 1) in where(
        check_routing(problem, torch.tensor([[4, 0]], dtype=torch.int32), third_w)
    )


def test_exact_tie_must_take_lower_index() -> None:
    # Experts 2 and 5 have identical logits (and no bias): every implementation computes the same b.
    config = RoutingConfig(num_experts=6, topk=1, renormalize=False)
    problem = make(config, [[0.0, -1.0, 1.5, 0.5, -2.0, 1.5]])
    ids, weights = route(problem.scores, None, config)
    assert ids[0].tolist() == [2]
    assert check_routing(problem, ids, weights) == []
    found = check_routing(problem, torch.tensor([[5]], dtype=torch.int32), weights)
    assert where(found) == {("expert_selection", 0, 0)}
    assert "same inputs" in found[0].message
    assert tie_rows(problem).tolist() == [False]
    assert tie_rows(problem, exact=True).tolist() == [True]


def test_exact_tie_order() -> None:
    config = RoutingConfig(num_experts=6, topk=2, renormalize=True)
    problem = make(config, [[0.0, -1.0, 1.5, 0.5, -2.0, 1.5]], [0.1, 0.0, 0.2, 0.0, 0.0, 0.2])
    ids, weights = route(problem.scores, problem.bias, config)
    assert ids[0].tolist() == [2, 5]
    found = check_routing(problem, ids[:, [1, 0]], weights[:, [1, 0]])
    assert where(found) == {("expert_order", 0, 1)}


def test_equal_logits_different_bias_are_not_exact_ties() -> None:
    # Same logit, bias entries differing by far less than the tie tolerance: a near-tie, either order.
    config = RoutingConfig(num_experts=4, topk=1, renormalize=False)
    problem = make(config, [[1.0, 0.0, 1.0, -1.0]], [0.0, 0.0, 1e-8, 0.0])
    p = torch.sigmoid(torch.tensor(1.0))
    for choice in (0, 2):
        assert check_routing(problem, torch.tensor([[choice]], dtype=torch.int32), p.view(1, 1)) == []


def test_exact_group_tie_lower_group_wins() -> None:
    # Groups 0 and 1 hold the same multiset of (logit, bias) pairs in another order: equal group scores
    # in any implementation, so group 0 must be kept (Kg = 1).
    config = RoutingConfig(num_experts=6, topk=1, num_expert_group=3, topk_group=1, renormalize=False)
    bias = [0.01, 0.02, 0.02, 0.01, 0.0, 0.0]
    problem = make(config, [[0.5, 0.7, 0.7, 0.5, -3.0, -3.0]], bias)
    ids, weights = route(problem.scores, problem.bias, config)
    assert ids[0].tolist() == [1]
    assert check_routing(problem, ids, weights) == []
    found = check_routing(problem, torch.tensor([[2]], dtype=torch.int32), weights)
    assert rules(found) & {"group_selection", "expert_selection"}
    assert all(v.row == 0 for v in found)


def test_near_tie_groups_either_kept() -> None:
    # Group scores differ by ~1e-8 (not identical inputs): keeping either group is valid.
    config = RoutingConfig(num_experts=4, topk=1, num_expert_group=2, topk_group=1, renormalize=False)
    problem = make(config, [[0.5, -2.0, 0.5, -2.0]], [0.0, 0.0, 1e-8, 0.0])
    p = torch.sigmoid(torch.tensor(0.5)).view(1, 1)
    assert check_routing(problem, torch.tensor([[0]], dtype=torch.int32), p) == []
    assert check_routing(problem, torch.tensor([[2]], dtype=torch.int32), p) == []
    assert tie_rows(problem).tolist() == [True]


def test_all_nan_row_follows_lower_index_rule() -> None:
    config = RoutingConfig(num_experts=8, topk=3, num_expert_group=4, topk_group=2, renormalize=True)
    problem = make(config, [[float("nan")] * 8, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]])
    ids, weights = route(problem.scores, None, config)
    assert ids[0].tolist() == [0, 1, 2]
    assert weights[0].tolist() == [0.0, 0.0, 0.0]
    assert check_routing(problem, ids, weights) == []
    bad = ids.clone()
    bad[0] = torch.tensor([1, 0, 2], dtype=torch.int32)
    assert ("expert_order", 0, 1) in where(check_routing(problem, bad, weights))


def test_clear_rows_are_not_tie_rows(grouped) -> None:
    problem, _, _ = grouped
    assert not tie_rows(problem).any()


def test_violation_str() -> None:
    assert str(Violation("id_range", 3, 1, "bad")) == "[id_range] row 3, slot 1: bad"
    assert str(Violation("output_format", None, None, "shape")) == "[output_format] shape"
    assert str(Violation("invariant", 2, None, "sum")) == "[invariant] row 2: sum"


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="problem"):
        check_routing("not a problem", torch.zeros(1), torch.zeros(1))
    with pytest.raises(TypeError, match="problem"):
        tie_rows(None)
    problem = near_tie_problem()
    with pytest.raises(ValueError, match="max_per_rule=0"):
        check_routing(problem, torch.zeros(1, 2, dtype=torch.int32), torch.zeros(1, 2), max_per_rule=0)


def test_max_per_rule_caps_listing_not_rows() -> None:
    config = RoutingConfig(num_experts=8, topk=2, scoring_func="softmax")
    problem = make(config, torch.randn(50, 8, generator=torch.Generator().manual_seed(0)))
    ids, weights = route(problem.scores, None, config)
    nan_w = torch.full_like(weights, float("nan"))
    found, bad_rows = oracle.judge(problem, ids, nan_w, max_per_rule=5)
    assert sum(v.rule == "no_nan" for v in found) == 5
    assert bool(bad_rows.all())


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@given(problem=routing_problems(max_rows=8))
def test_float64_canonical_answer_is_accepted(problem: RoutingProblem) -> None:
    # Another valid implementation: SPEC computed in float64 with its own tie resolution. Where it and the
    # float32 reference differ, they differ on near-ties only, and the oracle must accept both.
    config = problem.config
    sc = oracle.read_scores(problem)
    _, routed = oracle.canonical_selection(problem, sc)
    w = torch.gather(sc.p, 1, routed)
    if config.renormalize:
        w = w / (w.sum(-1, keepdim=True) + 1e-20)
    T, E, S, r = (
        problem.num_rows,
        config.num_experts,
        config.num_fused_shared_experts,
        config.routed_scaling_factor,
    )
    if config.num_shared_slots == 0:
        shared = torch.empty(T, 0, dtype=torch.int64)
    elif config.shared_expert_mode == "split":
        shared = (E + torch.arange(S)).expand(T, S)
    else:
        shared = (E + torch.arange(T) % S)[:, None]
    weights = torch.cat([w, torch.full(shared.shape, 1.0 / r, dtype=torch.float64)], dim=1)
    if config.apply_routed_scaling_factor_on_output:
        weights = weights * r
    ids = torch.cat([routed, shared], dim=1).to(torch.int32)
    found = check_routing(problem, ids, weights.to(torch.float32))
    assert found == [], [str(v) for v in found[:5]]
