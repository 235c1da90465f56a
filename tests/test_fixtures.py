"""Fixture sets: record/check round trip, what a check must catch and must forgive, and the golden set.

The golden fixtures in tests/fixtures/ are the reference's outputs; a change in the reference's output
fails `test_golden_case_replays_against_the_reference` until they are re-recorded on purpose
(tools/make_golden_fixtures.py). Each stored output must also satisfy the oracle, so the fixtures are
independently sound and not just "what the code produced".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from moegate.properties import fixtures as fx
from moegate.properties import oracle
from moegate.properties.impls import Impl, load_impl
from moegate.properties.problem import RoutingProblem
from moegate.reference import RoutingConfig, preset_names, route

GOLDEN = Path(__file__).resolve().parent / "fixtures"
GOLDEN_MANIFEST = json.loads((GOLDEN / fx.MANIFEST_NAME).read_text())
GOLDEN_NAMES = [c["name"] for c in GOLDEN_MANIFEST["cases"]]
REFERENCE = load_impl("reference")


def _impl(name: str, fn) -> Impl:
    return Impl(name=name, fn=fn, default_device="cpu")


def _record(tmp_path: Path, presets=("deepseek-v3", "qwen3-moe"), rows: int = 16) -> Path:
    problems = fx.preset_cases_problems(list(presets), [torch.float32, torch.bfloat16], rows, seed=1)
    fx.write_fixture_set(tmp_path, fx.record_problems(problems, REFERENCE))
    return tmp_path


# ---- round trip ----------------------------------------------------------------------------------------


def test_record_then_check_round_trip(tmp_path: Path) -> None:
    d = _record(tmp_path)
    report = fx.check_fixture_set(d, REFERENCE)
    assert report.ok, report.format()
    assert [r.name for r in report.results] == [
        "deepseek-v3-float32",
        "deepseek-v3-bfloat16",
        "qwen3-moe-float32",
        "qwen3-moe-bfloat16",
    ]
    case = fx.load_fixture_set(d)[1]
    assert case.problem.scores.dtype == torch.bfloat16 and case.problem.bias.dtype == torch.bfloat16
    assert case.ids.dtype == torch.int32 and case.weights.dtype == torch.float32
    assert case.tie_rows.dtype == torch.bool and case.tie_rows.shape == (16,)
    assert case.meta["impl"] == "reference" and case.meta["moegate_version"]
    assert json.loads((d / fx.MANIFEST_NAME).read_text())["cases"][1]["dtype"] == "bfloat16"


def test_recording_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    a, b = _record(tmp_path / "a", rows=4), _record(tmp_path / "b", rows=4)
    for f in sorted(a.iterdir()):
        assert f.read_bytes() == (b / f.name).read_bytes(), f.name


def test_a_perturbed_id_fails_naming_row_and_slot(tmp_path: Path) -> None:
    from user_impl_example import route_wrong_ids

    d = _record(tmp_path)
    report = fx.check_fixture_set(d, _impl("wrong-ids", route_wrong_ids))
    assert not report.ok and report.num_failed == 4
    for result in report.results:
        assert result.diff is not None and 3 in [int(r) for r in result.diff.mismatched_rows]
        assert result.diff.mismatched_slots >= 1
    text = report.format()
    assert "FAIL deepseek-v3-float32.safetensors" in text
    assert "row 3" in text and "slot 0" in text, text


def test_a_perturbed_weight_fails(tmp_path: Path) -> None:
    from user_impl_example import route_wrong_weight

    report = fx.check_fixture_set(_record(tmp_path), _impl("wrong-weight", route_wrong_weight))
    assert not report.ok and report.num_failed == len(report.results)
    assert len(report.results[0].diff.mismatched_rows) == 16


def test_wrong_shape_dtype_or_exception_is_a_failed_case_not_a_crash(tmp_path: Path) -> None:
    d = _record(tmp_path, presets=("mixtral-8x7b",), rows=4)

    def int64_ids(scores, bias, config):
        ids, w = route(scores, bias, config)
        return ids.long(), w

    def raises(scores, bias, config):
        raise RuntimeError("kernel launch failed")

    for fn, expected in (
        (int64_ids, "ids.dtype=torch.int64"),
        (raises, "RuntimeError: kernel launch failed"),
    ):
        report = fx.check_fixture_set(d, _impl(fn.__name__, fn))
        assert not report.ok and expected in report.results[0].error, report.format()


def _tie_problem() -> RoutingProblem:
    # Row 0: expert 0 first, then experts 1 and 2 are a near-tie for the second slot (logits 1.0 and the
    # next float32 up: not identical inputs, so either order is valid and the oracle flags the row).
    # Row 1: no tie.
    config = RoutingConfig(num_experts=8, topk=2, scoring_func="softmax", renormalize=True)
    up = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)).item()
    scores = torch.tensor([[2.0, 1.0, up, 0.0, 0.0, -1.0, -1.0, -2.0], [3.0, 2.0, 1.0, 0.0, -1, -2, -3, -4]])
    return RoutingProblem(config, scores, None, seed=7, note="near-tie in row 0")


def _flip_second_choice(row: int):
    """The reference, with slot 1 of `row` moved to the other of experts 1 and 2 (weights unchanged)."""

    def impl(scores, bias, config):
        ids, w = route(scores, bias, config)
        ids = ids.clone()
        ids[row, 1] = 3 - ids[row, 1] if int(ids[row, 1]) in (1, 2) else ids[row, 1] + 1
        return ids, w

    return impl


def test_a_flipped_tie_in_a_flagged_row_passes_and_elsewhere_fails(tmp_path: Path) -> None:
    case = fx.record_case("ties", _tie_problem(), REFERENCE)
    assert case.tie_rows.tolist() == [True, False]
    assert case.ids[0, 0] == 0 and int(case.ids[0, 1]) in (1, 2)
    fx.write_fixture_set(tmp_path, [case])
    flipped = fx.check_fixture_set(tmp_path, _impl("flip-row-0", _flip_second_choice(0)))
    assert flipped.ok, flipped.format()
    wrong = fx.check_fixture_set(tmp_path, _impl("flip-row-1", _flip_second_choice(1)))
    assert not wrong.ok and [int(r) for r in wrong.results[0].diff.mismatched_rows] == [1]


def test_row_strided_inputs_are_stored_contiguous(tmp_path: Path) -> None:
    config = RoutingConfig(num_experts=16, topk=3, num_expert_group=4, topk_group=2)
    wide = torch.randn(5, 24, generator=torch.Generator().manual_seed(0))
    problem = RoutingProblem(config, wide[:, :16], torch.zeros(16), seed=0)
    fx.write_fixture_set(tmp_path, [fx.record_case("strided", problem, REFERENCE)])
    case = fx.load_fixture_set(tmp_path)[0]
    assert case.problem.scores.is_contiguous() and case.meta["row_stride"] == "24"
    assert torch.equal(case.problem.scores, wide[:, :16])
    # The replay lays the rows out at the recorded stride again (NaN padding between rows) ...
    seen = []

    def spy(scores, bias, config):
        seen.append(scores.stride())
        return route(scores, bias, config)

    assert fx.check_fixture_set(tmp_path, _impl("spy", spy)).ok and seen == [(24, 1)]

    # ... so a kernel that assumes contiguous rows (row i at offset i * E) reads the padding and fails.
    def ignores_row_stride(scores, bias, config):
        return route(scores.as_strided(scores.shape, (scores.shape[1], 1)).contiguous(), bias, config)

    report = fx.check_fixture_set(tmp_path, _impl("ignores-stride", ignores_row_stride))
    assert not report.ok and 0 not in report.results[0].diff.mismatched_rows


def test_damaged_or_missing_fixture_sets_raise_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        fx.check_fixture_set(tmp_path / "missing", REFERENCE)
    with pytest.raises(ValueError, match=r"holds no manifest\.json"):
        fx.check_fixture_set(tmp_path, REFERENCE)
    d = _record(tmp_path / "set", presets=("mixtral-8x7b",), rows=2)
    f = d / "mixtral-8x7b-float32.safetensors"
    f.write_bytes(f.read_bytes()[:-4] + b"\x00\x00\x80\x3f")
    with pytest.raises(ValueError, match="sha256"):
        fx.check_fixture_set(d, REFERENCE)


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="dtype='int8'"):
        fx.parse_dtype("int8")
    with pytest.raises(ValueError, match="num_rows=-1"):
        fx.preset_problem("deepseek-v3", torch.float32, -1, seed=0)
    with pytest.raises(ValueError, match="preset='nope'"):
        fx.resolve_presets(["nope"])
    with pytest.raises(ValueError, match="duplicate names"):
        case = fx.record_case("a", _tie_problem(), REFERENCE)
        fx.write_fixture_set("/nonexistent-never-written", [case, case])
    assert fx.resolve_presets(["all"]) == preset_names()


# ---- the golden set ------------------------------------------------------------------------------------


def test_golden_set_covers_every_preset_dtype_and_edge_set_under_5_mb() -> None:
    names = set(GOLDEN_NAMES)
    for preset in preset_names():
        for dtype in ("float32", "bfloat16", "float16"):
            assert f"{preset}-{dtype}" in names
    for edge in ("ties", "nonfinite", "empty", "replica", "scaling-on-output", "strided", "bias-dtype"):
        assert any(n.startswith(f"edge-{edge}-") for n in names), edge
    assert GOLDEN_MANIFEST["impl"] == "reference"
    size = sum(p.stat().st_size for p in GOLDEN.iterdir() if p.is_file())
    assert size < 5_000_000, size


def test_golden_preset_inputs_are_reproducible_from_their_seeds() -> None:
    for entry in GOLDEN_MANIFEST["cases"]:
        if entry["name"].startswith("edge-"):
            continue
        case = fx.load_case(GOLDEN / entry["file"])
        again = fx.preset_problem(case.preset, case.problem.dtype, case.problem.num_rows, case.problem.seed)
        assert torch.equal(again.scores, case.problem.scores), entry["name"]


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_case_passes_the_oracle_and_replays_against_the_reference(name: str) -> None:
    case = fx.load_case(GOLDEN / f"{name}.safetensors")
    violations = oracle.check_routing(case.problem, case.ids, case.weights)
    assert not violations, f"{name}: {violations[:3]}"
    result = fx.check_case(case, REFERENCE, "cpu")
    assert result.ok, result.format()


def test_golden_set_catches_a_perturbed_reference() -> None:
    from user_impl_example import route_wrong_ids, route_wrong_weight

    for fn in (route_wrong_weight, route_wrong_ids):
        report = fx.check_fixture_set(GOLDEN, _impl(fn.__name__, fn))
        expected_failures = {c.name for c in fx.load_fixture_set(GOLDEN) if c.problem.num_rows > 3}
        assert {r.name for r in report.results if not r.ok} >= expected_failures, fn.__name__


@pytest.mark.gpu
def test_golden_set_replays_against_the_fused_kernel_on_cuda() -> None:
    report = fx.check_fixture_set(GOLDEN, load_impl("optimized"), device="cuda")
    assert report.ok, report.format(verbose=False)


# ---- a fixture set recorded by the fused kernel on a GPU --------------------------------------------------
KERNEL_SET = Path(__file__).resolve().parent / "kernel_fixtures" / "h200"


def test_kernel_recorded_set_replays_on_cpu_against_the_reference() -> None:
    """Recorded on an NVIDIA H200 by `moegate fixtures record --preset all --edge-cases --impl optimized`
    (tools/gpu_final.sh): what the kernel computed there is what the reference computes here, and every
    stored kernel output satisfies the oracle."""
    manifest = json.loads((KERNEL_SET / fx.MANIFEST_NAME).read_text())
    assert manifest["impl"] == "optimized" and manifest["device"] == "cuda"
    cases = fx.load_fixture_set(KERNEL_SET)
    assert len(cases) == len(GOLDEN_NAMES)
    for case in cases:
        violations = oracle.check_routing(case.problem, case.ids, case.weights)
        assert not violations, f"{case.name}: {violations[:3]}"
    report = fx.check_fixture_set(KERNEL_SET, REFERENCE, device="cpu")
    assert report.ok, report.format(verbose=False)
