"""Metamorphic relations hold on the reference, and each one catches an implementation that breaks it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moegate import reference as R
from moegate.properties import metamorphic
from moegate.properties.problem import RoutingProblem
from moegate.properties.strategies import routing_problems
from moegate.reference import RoutingConfig, get_preset, route

# Example counts come from the loaded Hypothesis profile (moegate-ci in CI; --hypothesis-profile to change).
PROFILED = settings(deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("name", list(metamorphic.RELATIONS))
def test_relation_holds_on_reference(name: str) -> None:
    relation = metamorphic.RELATIONS[name]

    @PROFILED
    @given(problem=routing_problems(max_rows=12), seed=st.integers(0, 2**31 - 1))
    def check(problem: RoutingProblem, seed: int) -> None:
        message = relation(route, problem, seed)
        assert message is None, message

    check()


def gaussian_problem(name: str = "deepseek-v3", rows: int = 40, seed: int = 0) -> RoutingProblem:
    config = get_preset(name).replace(num_fused_shared_experts=2, shared_expert_mode="replica")
    g = torch.Generator().manual_seed(seed)
    bias = torch.randn(config.num_experts, generator=g) * 0.01
    return RoutingProblem(config, torch.randn(rows, config.num_experts, generator=g), bias)


def positional(scores, bias, config):
    """Prefers low expert ids: breaks the permutation relation."""
    boost = 0.2 * (torch.arange(config.num_experts) < config.num_experts // 2).float()
    return route((scores.float() + boost).to(scores.dtype), bias, config)


def relu_biased(scores, bias, config):
    """Clamps b at 0 before selection: a shift of the bias changes the choice."""
    p = R.probabilities(scores, config.scoring_func)
    b = R.biased_scores(p, bias).clamp(min=0.0)
    groups = R.group_selection(
        R.group_scores(b, config.num_expert_group, bias is not None), config.topk_group
    )
    ids = R.expert_selection(b, groups, config.num_expert_group, config.topk)
    w = R.routed_weights(p, ids, config.renormalize)
    shared_ids, shared_w = R.shared_slots(config, scores.shape[0], scores.device)
    return torch.cat([ids, shared_ids], 1).int(), R.output_scaling(torch.cat([w, shared_w], 1), config)


def batch_dependent(scores, bias, config):
    """Rows after the first 32 are routed from the previous row's logits (a row-indexing bug)."""
    if scores.shape[0] > 32:
        scores = scores.clone()
        scores[32:] = scores[31:-1].clone()
    return route(scores, bias, config)


def order_dependent(scores, bias, config):
    """Each row is shifted by the first row's mean: the output depends on the other rows."""
    shift = scores.float()[:1].mean() if scores.shape[0] else 0.0
    return route(
        (scores.float() - shift * torch.arange(scores.shape[1]) / 100).to(scores.dtype), bias, config
    )


calls = {"n": 0}


def nondeterministic(scores, bias, config):
    """A different weight rounding on every other call."""
    ids, w = route(scores, bias, config)
    calls["n"] += 1
    return ids, w * (1 + 1e-7 * (calls["n"] % 2))


@pytest.mark.parametrize(
    ("relation", "impl"),
    [
        ("expert_permutation", positional),
        ("bias_shift", relu_biased),
        ("batch_invariance", batch_dependent),
        ("row_order", order_dependent),
        ("determinism", nondeterministic),
    ],
)
def test_relation_catches_breaking_impl(relation: str, impl) -> None:
    problem = gaussian_problem(rows=40 if relation == "batch_invariance" else 8)
    if relation == "bias_shift":
        # Strongly negative logits: b near the bias, so clamping at 0 matters after a shift.
        problem = RoutingProblem(problem.config, problem.scores - 6.0, problem.bias * 10)
    fn = metamorphic.RELATIONS[relation]
    first = next((m for m in (fn(impl, problem, seed) for seed in range(40)) if m is not None), None)
    assert first is not None, f"{relation} never caught {impl.__name__}"
    assert first.startswith(relation)
    # The same relation passes on the reference for the same inputs.
    assert all(fn(route, problem, seed) is None for seed in range(3))


def test_permutation_accepts_exact_group_tie() -> None:
    # Two groups tie exactly (both scores -inf): the lower index picks differently after a permutation.
    config = RoutingConfig(num_experts=4, topk=2, num_expert_group=2, topk_group=1, renormalize=False)
    problem = RoutingProblem(
        config,
        torch.tensor([[-0.2905, -1.0704, 1.2645, -0.6874]]),
        torch.tensor([0.0016, float("-inf"), float("-inf"), 0.0106]),
    )
    for seed in range(20):
        assert metamorphic.expert_permutation(route, problem, seed) is None


def test_bias_shift_without_bias_is_trivial() -> None:
    problem = RoutingProblem(get_preset("mixtral-8x7b"), torch.randn(3, 8), None)
    assert metamorphic.bias_shift(positional, problem, 0) is None


def test_replica_ids_follow_row_index() -> None:
    # A kernel that keeps the replica id of the row's original position is wrong after reordering.
    def sticky_replica(scores, bias, config):
        ids, w = route(scores, bias, config)
        ids = ids.clone()
        ids[:, -1] = config.num_experts  # always the first copy
        return ids, w

    problem = gaussian_problem(rows=6)
    message = metamorphic.row_order(sticky_replica, problem, 3)
    assert message is not None and "shared ids" in message
