"""Strategies: arguments validated when built, and the drawn configs and problems cover what matters."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moegate.properties.problem import RoutingProblem
from moegate.properties.strategies import (
    move_problem,
    parse_dtypes,
    routing_configs,
    routing_problems,
)
from moegate.reference import RoutingConfig, get_preset

QUICK = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def draws(strategy: st.SearchStrategy, n: int = 300) -> list:
    seen = []

    @settings(QUICK, max_examples=n)
    @given(strategy)
    def collect(x) -> None:
        seen.append(x)

    collect()
    return seen


# ---- validation at build time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"max_experts": 0}, ValueError, r"max_experts=0, but max_experts must be >= 1"),
        ({"max_experts": 2.5}, TypeError, r"max_experts=2.5 \(float\)"),
        ({"presets": "yes"}, TypeError, r"presets='yes'"),
        ({"max_shared": -1}, ValueError, r"max_shared=-1"),
    ],
)
def test_routing_configs_validates_when_built(kwargs, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        routing_configs(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"max_rows": -1}, ValueError, r"max_rows=-1"),
        ({"min_rows": 5, "max_rows": 2}, ValueError, r"max_rows=2, but max_rows must be >= min_rows=5"),
        ({"dtypes": [torch.float64]}, ValueError, r"dtypes contains torch.float64"),
        ({"dtypes": ["int8"]}, ValueError, r"dtypes contains 'int8'"),
        ({"dtypes": []}, ValueError, r"dtypes=\[\]"),
        ({"bias_dtypes": [torch.int32]}, ValueError, r"bias_dtypes contains torch.int32"),
        ({"device": "nonsense"}, ValueError, r"device='nonsense'"),
        ({"configs": [42]}, TypeError, r"configs contains 42"),
        ({"configs": "deepseek-v3"}, TypeError, r"configs='deepseek-v3'"),
        ({"configs": ["no-such-model"]}, ValueError, r"no-such-model"),
        ({"row_kinds": ["gaussian", "wild"]}, ValueError, r"row_kinds contains 'wild'"),
        ({"bias_kinds": ["huge"]}, ValueError, r"bias_kinds contains 'huge'"),
    ],
)
def test_routing_problems_validates_when_built(kwargs, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        routing_problems(**kwargs)


def test_parse_dtypes_names() -> None:
    assert parse_dtypes("dtypes", "bf16", (torch.bfloat16, torch.float32)) == (torch.bfloat16,)
    assert parse_dtypes("dtypes", ["fp32", torch.float32, "float16"], (torch.float32, torch.float16)) == (
        torch.float32,
        torch.float16,
    )


# ---- coverage of the draws ---------------------------------------------------------------------------


def test_configs_cover_the_space() -> None:
    configs = draws(routing_configs())
    assert all(isinstance(c, RoutingConfig) for c in configs)
    assert any(c.num_expert_group == 1 for c in configs)
    assert any(c.num_expert_group == c.num_experts > 1 for c in configs)
    assert any(1 < c.num_expert_group < c.num_experts and c.has_groups for c in configs)
    assert any(c.topk == c.max_topk and c.topk > 1 for c in configs)
    assert {c.num_fused_shared_experts for c in configs} >= {0, 1, 2, 3, 4}
    assert {c.shared_expert_mode for c in configs} == {"split", "replica"}
    assert {c.scoring_func for c in configs} == {"sigmoid", "softmax"}
    assert {c.renormalize for c in configs} == {True, False}
    assert {c.apply_routed_scaling_factor_on_output for c in configs} == {True, False}
    assert any(c.num_experts >= 512 for c in configs)
    assert any(c.routed_scaling_factor not in (1.0, 2.5) for c in configs)
    assert any(
        c
        == get_preset("deepseek-v3").replace(
            shared_expert_mode=c.shared_expert_mode,
            apply_routed_scaling_factor_on_output=c.apply_routed_scaling_factor_on_output,
        )
        for c in configs
    )


def test_configs_respect_limits() -> None:
    configs = draws(routing_configs(presets=False, max_experts=16, max_shared=1), n=100)
    assert all(c.num_experts <= 16 and c.num_fused_shared_experts <= 1 for c in configs)


def test_problems_cover_inputs() -> None:
    problems = draws(routing_problems(max_rows=16), n=300)
    assert all(isinstance(p, RoutingProblem) for p in problems)
    assert {p.dtype for p in problems} == {torch.float32, torch.float16, torch.bfloat16}
    biases = [p.bias for p in problems if p.bias is not None]
    assert {b.dtype for b in biases} == {torch.float32, torch.float16, torch.bfloat16}
    assert any(p.bias is None for p in problems)
    # Bias dtype drawn independently of the scores' dtype.
    assert any(p.bias is not None and p.bias.dtype != p.dtype for p in problems)
    assert any(p.num_rows == 0 for p in problems)
    assert any(p.num_rows > 1 and p.scores.stride(0) > p.config.num_experts for p in problems)
    assert all(p.num_rows <= 16 for p in problems)

    def rows_with(pred) -> int:
        return sum(int(pred(p.scores.float()).sum()) for p in problems)

    assert rows_with(lambda s: torch.isnan(s).all(-1) if s.numel() else torch.zeros(0)) > 0
    assert rows_with(
        lambda s: (torch.isnan(s).any(-1) & ~torch.isnan(s).all(-1)) if s.numel() else torch.zeros(0)
    )
    assert rows_with(lambda s: torch.isinf(s).any(-1) if s.numel() else torch.zeros(0)) > 0

    def exact_tie_rows(s: torch.Tensor) -> torch.Tensor:
        if s.numel() == 0 or s.shape[1] < 2:
            return torch.zeros(0)
        v = torch.sort(s, dim=-1).values
        return ((v[:, 1:] == v[:, :-1]) & torch.isfinite(v[:, 1:])).any(-1)

    assert rows_with(exact_tie_rows) > 10
    assert any(p.bias is not None and not torch.isfinite(p.bias.float()).all() for p in problems)
    notes = " ".join(p.note for p in problems)
    for kind in ("gaussian", "ties", "near_ties", "bf16_small", "huge", "tie_block", "deepseek"):
        assert kind in notes


def test_problems_restricted() -> None:
    problems = draws(
        routing_problems(
            configs=["deepseek-v3", get_preset("mixtral-8x7b")],
            dtypes=["bf16"],
            bias_dtypes=[torch.float32],
            min_rows=2,
            max_rows=4,
            row_kinds=["gaussian"],
            bias_kinds=["none", "deepseek"],
        ),
        n=40,
    )
    assert {p.config.num_experts for p in problems} == {256, 8}
    assert all(p.dtype == torch.bfloat16 and 2 <= p.num_rows <= 4 for p in problems)
    assert all(p.bias is None or p.bias.dtype == torch.float32 for p in problems)
    assert all(torch.isfinite(p.scores.float()).all() for p in problems)


def test_large_problems_are_capped() -> None:
    problems = draws(
        routing_problems(
            configs=[RoutingConfig(num_experts=1024, topk=4, num_expert_group=1024, topk_group=8)],
            max_rows=64,
        ),
        n=30,
    )
    assert all(p.num_rows * 1024 * 1024 <= 1 << 22 for p in problems)


def test_generation_is_reproducible() -> None:
    a = draws(routing_problems(max_rows=8), n=20)
    b = draws(routing_problems(max_rows=8), n=20)
    for p, q in zip(a, b, strict=True):
        assert p.config == q.config and p.seed == q.seed
        assert torch.equal(p.scores.float().nan_to_num(7.0), q.scores.float().nan_to_num(7.0))


def test_move_problem_keeps_row_stride() -> None:
    wide = torch.randn(4, 10)
    problem = RoutingProblem(RoutingConfig(num_experts=8, topk=2), wide[:, 1:9], None)
    moved = move_problem(problem, "meta")
    assert moved.scores.device.type == "meta"
    assert moved.scores.stride() == (10, 1)
    assert move_problem(problem, "cpu") is problem
    assert math.isclose(float(problem.scores[0, 0]), float(wide[0, 1]))
