"""verify(): the suite passes on the reference, reports failures with the shrunk example and a replay,
counts examples, calls progress, and resolves profiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from moegate.properties import suite as verify_module
from moegate.properties.mutants import MUTANTS
from moegate.properties.suite import PROFILES, PROPERTIES, Report, resolve_profile, verify
from moegate.reference import RoutingConfig, route


def test_reference_passes_ci_profile() -> None:
    seen: list[tuple[str, int, int | None]] = []
    report = verify(route, profile="ci", progress=lambda name, done, total: seen.append((name, done, total)))
    assert report.ok, report.format()
    assert [r.name for r in report.results] == list(PROPERTIES)
    for r in report.results:
        # The scale property routes one large batch per example: its own, smaller budget.
        budget = PROFILES["ci"].scale_examples if r.name == "scale" else PROFILES["ci"].examples
        assert (r.examples, r.passed, r.failed) == (budget, budget, 0)
        assert r.failure is None and r.counterexample is None
    assert len(seen) == report.examples
    assert seen[0] == ("oracle", 1, PROFILES["ci"].examples)
    text = report.format()
    assert "PASS" in text and "property" in text and "examples" in text and "failed" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["ok"] is True and d["profile"] == "ci" and len(d["results"]) == len(PROPERTIES)


def test_failure_reports_shrunk_example_and_replay() -> None:
    report = verify(MUTANTS["shared_weight_one"].impl, properties=["oracle"], profile="ci")
    assert not report.ok
    (result,) = report.results
    assert result.failed >= 1 and result.passed + result.failed == result.examples
    assert result.counterexample is not None
    # Shrunk: a small problem with a shared slot.
    assert result.counterexample.num_rows <= 2
    assert result.counterexample.config.num_shared_slots >= 1
    assert "shared weight 1, expected" in result.failure
    assert "config: RoutingConfig(" in result.failure
    assert "scores = torch.tensor(" in result.failure
    assert "FAIL" in report.format() and "replay:" in report.format()
    # The replay snippet rebuilds the example and fails the same way.
    snippet = result.replay.split("# or rerun")[0]
    namespace = {"impl": MUTANTS["shared_weight_one"].impl}
    with pytest.raises(AssertionError, match="shared weight 1, expected"):
        exec(snippet, namespace)


def test_crash_is_a_reported_failure() -> None:
    def crashing(scores, bias, config):
        if scores.shape[0] > 1:
            raise RuntimeError("kernel launch failed: too many rows")
        return route(scores, bias, config)

    report = verify(crashing, properties=["differential", "determinism"], profile="ci", max_examples=20)
    assert [r.ok for r in report.results] == [False, False]
    assert "RuntimeError: kernel launch failed" in report.results[0].failure
    assert report.results[0].counterexample.num_rows == 2  # shrunk to the smallest crashing batch


def test_wrong_return_type_is_a_failure() -> None:
    report = verify(lambda s, b, c: None, properties=["oracle"], max_examples=3)
    assert not report.ok and "must return" in report.results[0].failure


def test_stop_on_failure_and_no_shrink() -> None:
    report = verify(MUTANTS["review_bug"].impl, stop_on_failure=True, shrink=False)
    assert len(report.results) == 1 and not report.results[0].ok


def test_restricted_run() -> None:
    report = verify(
        route,
        configs=["mixtral-8x7b", RoutingConfig(num_experts=6, topk=2, num_expert_group=3, topk_group=2)],
        dtypes=["bf16"],
        properties=["oracle", "row_order"],
        max_examples=7,
        seed=5,
    )
    assert report.ok and report.dtypes == ["bfloat16"] and report.seed == 5
    assert [r.examples for r in report.results] == [7, 7]


def test_profiles_registered_and_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    ci = settings.get_profile("moegate-ci")
    assert ci.derandomize and ci.database is None and ci.deadline is None
    assert settings.get_profile("moegate-deep").max_examples >= 1000
    assert PROFILES["deep"].examples * len(PROPERTIES) >= 10_000
    monkeypatch.delenv("MOEGATE_PROFILE", raising=False)
    assert resolve_profile().name == "ci"
    monkeypatch.setenv("MOEGATE_PROFILE", "dev")
    assert resolve_profile().name == "dev"
    assert resolve_profile("moegate-deep").name == "deep"
    monkeypatch.setenv("MOEGATE_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"\$MOEGATE_PROFILE='fast'"):
        resolve_profile()
    with pytest.raises(ValueError, match=r"profile='huge'"):
        resolve_profile("huge")


@pytest.mark.parametrize("ci", ["", "true"])
def test_profiles_do_not_depend_on_a_ci_environment(ci: str, tmp_path: Path) -> None:
    # Hypothesis loads its own "ci" profile (no database, derandomized) when it sees $CI; moegate's profiles
    # must mean the same on a CI runner as on a laptop.
    code = (
        "from hypothesis import settings\n"
        "import moegate.properties.suite\n"
        "dev, deep, ci = (settings.get_profile(f'moegate-{n}') for n in ('dev', 'deep', 'ci'))\n"
        "print(dev.database is not None, dev.derandomize, deep.derandomize,\n"
        "      ci.derandomize, ci.database is None)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = ci
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False", "True", "True"]


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="impl"):
        verify("route")
    with pytest.raises(ValueError, match="max_examples=0"):
        verify(route, max_examples=0)
    with pytest.raises(ValueError, match="properties contains 'speed'"):
        verify(route, properties=["speed"])
    with pytest.raises(ValueError, match="dtypes contains"):
        verify(route, dtypes=[torch.int8])
    with pytest.raises(ValueError, match="device='gpu0'"):
        verify(route, device="gpu0")
    with pytest.raises(TypeError, match="seed"):
        verify(route, seed="1")


def test_report_table_counts() -> None:
    report = Report(
        results=[verify_module.PropertyResult("oracle", 10, 9, 1, 0.5, failure="x")],
        impl_name="k",
        device="cpu",
        profile="ci",
        dtypes=["float32"],
    )
    assert not report.ok
    header, row = report.table().splitlines()
    assert header.split() == ["property", "examples", "passed", "failed", "seconds", "status"]
    assert row.split() == ["oracle", "10", "9", "1", "0.50", "FAIL"]


def test_a_failure_that_does_not_reproduce_is_reported_as_nondeterminism() -> None:
    import itertools

    calls = itertools.count()

    def sometimes_wrong(scores, bias, config):  # right on every call but the eighth
        ids, weights = route(scores, bias, config)
        return ids, weights * (2 if next(calls) == 7 else 1)

    report = verify(sometimes_wrong, properties=["oracle"], max_examples=30)
    assert not report.ok
    failure = report.results[0].failure or ""
    assert failure.startswith("the failure did not reproduce when the same example ran again")
    assert "SPEC violations" in failure  # the first failure's evidence is kept
