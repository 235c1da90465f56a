"""The differential comparison: exact where no tie is involved, tie-aware otherwise, and its report format."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from moegate.properties.differential import DiffReport, assert_routing_close, compare
from moegate.properties.problem import RoutingProblem
from moegate.reference import RoutingConfig, get_preset, route


@pytest.fixture
def case() -> tuple[RoutingProblem, tuple[torch.Tensor, torch.Tensor]]:
    config = get_preset("deepseek-v3")
    g = torch.Generator().manual_seed(11)
    problem = RoutingProblem(
        config,
        torch.randn(64, 256, generator=g).to(torch.bfloat16),
        torch.randn(256, generator=g) * 0.01,
        seed=1234,
    )
    return problem, route(problem.scores, problem.bias, config)


def test_identical_outputs_match(case) -> None:
    problem, expected = case
    report = compare(problem, expected, (expected[0].clone(), expected[1].clone()))
    assert report.ok
    assert report.mismatched_rows == [] and report.mismatched_slots == 0
    assert report.format().startswith("Routing matches: 64 rows")


def test_weights_within_tolerance_match(case) -> None:
    problem, (ids, weights) = case
    assert compare(problem, (ids, weights), (ids, weights * (1 + 2e-6))).ok


def test_wrong_id_report_format(case) -> None:
    problem, (ids, weights) = case
    bad = ids.clone()
    routed = set(ids[17, :8].tolist())
    replacement = next(e for e in range(256) if e not in routed)
    bad[17, 3] = replacement
    bad_w = weights.clone()
    bad_w[40, 2] += 1e-3
    report = compare(problem, (ids, weights), (bad, bad_w))
    assert not report.ok
    assert report.mismatched_rows == [17, 40]
    assert report.mismatched_slots == 2
    text = report.format()
    lines = text.splitlines()
    assert lines[0] == "Mismatched routing: 2 / 64 rows (3.12%), 2 slots"
    assert lines[1] == "Worst mismatch: row 17, slot 3 (id)"
    assert lines[2] == f"  id:     expected {int(ids[17, 3])}, actual {replacement}"
    assert re.match(
        rf"  b:      b\[{int(ids[17, 3])}\] = \S+, b\[{replacement}\] = \S+ \(difference \S+ > tie", lines[3]
    )
    assert "weight: expected" in lines[4] and "tolerance" in lines[4]
    assert (
        "Config: RoutingConfig(num_experts=256, topk=8, num_expert_group=8, topk_group=4, "
        "routed_scaling_factor=2.5, num_fused_shared_experts=1)" in text
    )
    assert "Inputs: scores bfloat16[64, 256], bias float32, device cpu, seed 1234" in text
    assert "Further mismatching rows (1 more):" in text
    assert "row 40, slot 2:" in text
    # The config line is valid Python that rebuilds the config.
    config_src = next(line for line in lines if line.startswith("Config: "))[len("Config: ") :]
    assert eval(config_src, {"RoutingConfig": RoutingConfig}) == problem.config


def test_further_rows_limited(case) -> None:
    problem, (ids, weights) = case
    bad_w = weights.clone()
    bad_w[:10, 0] += 0.01
    report = compare(problem, (ids, weights), (ids, bad_w))
    text = report.format(max_rows=2)
    assert "Further mismatching rows (9 more):" in text
    assert "... and 7 more" in text
    assert report.mismatched_rows == list(range(10))


def test_weight_mismatch_reports_difference_and_tolerance(case) -> None:
    problem, (ids, weights) = case
    bad_w = weights.clone()
    bad_w[5, 1] *= 1.5
    report = compare(problem, (ids, weights), (ids, bad_w))
    worst = report.mismatches[0]
    assert (worst.row, worst.slot, worst.kind) == (5, 1, "weight")
    assert worst.tolerance == pytest.approx(1e-6 + 1e-5 * abs(float(weights[5, 1])))
    assert "weight: expected" in report.format()


def test_nan_weight_is_a_mismatch(case) -> None:
    problem, (ids, weights) = case
    bad_w = weights.clone()
    bad_w[0, 0] = float("nan")
    assert compare(problem, (ids, weights), (ids, bad_w)).mismatched_rows == [0]


def test_near_tie_swap_accepted() -> None:
    x = 0.75
    y = float(torch.nextafter(torch.tensor(x), torch.tensor(math.inf)))
    config = RoutingConfig(num_experts=6, topk=2)
    problem = RoutingProblem(config, torch.tensor([[0.0, x, -1.0, y, 2.0, -3.0]]), None)
    expected = route(problem.scores, None, config)
    other = 4 - int(expected[0][0, 1])
    p = torch.sigmoid(problem.scores[0].double())
    actual = (
        torch.tensor([[4, other]], dtype=torch.int32),
        (p[[4, other]] / p[[4, other]].sum()).float()[None],
    )
    report = compare(problem, expected, actual)
    assert report.ok, report.format()
    assert report.accepted_tie_rows == [0]


def test_tie_swap_with_wrong_weights_rejected() -> None:
    x = 0.75
    y = float(torch.nextafter(torch.tensor(x), torch.tensor(math.inf)))
    config = RoutingConfig(num_experts=6, topk=2)
    problem = RoutingProblem(config, torch.tensor([[0.0, x, -1.0, y, 2.0, -3.0]]), None)
    expected = route(problem.scores, None, config)
    other = 4 - int(expected[0][0, 1])
    actual = (torch.tensor([[4, other]], dtype=torch.int32), torch.tensor([[0.9, 0.1]]))
    report = compare(problem, expected, actual)
    assert not report.ok
    assert report.mismatches[0].kind == "oracle"
    assert "oracle" in report.format()


def test_shape_error(case) -> None:
    problem, (ids, weights) = case
    report = compare(problem, (ids, weights), (ids[:, :8], weights[:, :8]))
    assert not report.ok
    assert report.shape_error is not None and "actual ids shape" in report.shape_error
    assert report.format().startswith("Mismatched routing output: actual ids shape (64, 8) != (64, 9)")
    assert len(report.mismatched_rows) == 64


def test_to_dict_is_json(case) -> None:
    problem, (ids, weights) = case
    bad = ids.clone()
    bad[3, 0] = 300  # out of range: no biased score for it
    report = compare(problem, (ids, weights), (bad, weights))
    d = json.loads(json.dumps(report.to_dict()))
    assert d["ok"] is False and d["mismatched_rows"] == [3]
    assert d["config"]["num_experts"] == 256 and d["dtype"] == "bfloat16" and d["seed"] == 1234
    assert d["mismatches"][0]["actual_id"] == 300 and d["mismatches"][0]["b_actual"] is None


def test_assert_routing_close(case) -> None:
    problem, (ids, weights) = case
    assert_routing_close(problem, (ids, weights), (ids, weights))
    bad_w = weights.clone()
    bad_w[2, 8] = 1.0
    with pytest.raises(AssertionError, match=r"Mismatched routing: 1 / 64 rows \(1.56%\), 1 slots"):
        assert_routing_close(problem, (ids, weights), (ids, bad_w))


def test_explicit_seed_and_tie_rows(case) -> None:
    problem, (ids, weights) = case
    bad = ids.clone()
    bad[0, [0, 1]] = ids[0, [1, 0]]
    report = compare(
        problem, (ids, weights), (bad, weights), seed=99, tie_rows=torch.zeros(64, dtype=torch.bool)
    )
    assert "seed 99" in report.format()
    assert report.mismatched_rows == [0]


def test_bad_arguments(case) -> None:
    problem, expected = case
    with pytest.raises(TypeError, match="problem"):
        compare(None, expected, expected)
    with pytest.raises(TypeError, match="actual"):
        compare(problem, expected, expected[0])
    with pytest.raises(ValueError, match="tie_rows"):
        compare(problem, expected, expected, tie_rows=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="max_rows"):
        DiffReport(0, [], 0, [], problem.config, torch.float32, None, "cpu", None).format(max_rows=-1)
