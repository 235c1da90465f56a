"""The pytest plugin, run through pytest's own `pytester`: nothing is collected without its options; with
--moegate-impl one item per property and dtype, passing for a correct implementation and failing, with the
property, dtype and shrunk example named, for a wrong one; one item per fixture case; GPU items skipped with
a reason; a conftest.py can set it all; Hypothesis' profile and example database apply."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis.database import DirectoryBasedExampleDatabase

from moegate.properties import fixtures as fx
from moegate.properties.impls import load_impl
from moegate.properties.suite import PROPERTIES

pytest_plugins = ("pytester",)

TESTS = Path(__file__).resolve().parent
FAST = ["--moegate-preset", "deepseek-v3", "--moegate-examples", "10", "-p", "no:randomly"]


@pytest.fixture
def user_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project: their adapter module (tests/user_impl_example.py) and one ordinary test."""
    shutil.copy(TESTS / "user_impl_example.py", pytester.path / "my_adapter.py")
    pytester.makepyfile(test_theirs="def test_their_own():\n    assert True\n")
    return pytester


def test_importing_the_plugin_loads_neither_torch_nor_hypothesis() -> None:
    code = (
        "import sys, moegate.properties.pytest_plugin\n"
        "print('torch' in sys.modules, 'hypothesis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_without_options_the_plugin_collects_nothing(user_dir: pytest.Pytester) -> None:
    result = user_dir.runpytest("-v")
    result.assert_outcomes(passed=1)
    assert "moegate::" not in result.stdout.str()


def test_a_correct_implementation_passes_one_item_per_property_and_dtype(
    user_dir: pytest.Pytester,
) -> None:
    dtypes = ["--moegate-dtype", "float32", "--moegate-dtype", "bf16"]
    result = user_dir.runpytest("-v", "--moegate-impl", "my_adapter:route_ok", *dtypes, *FAST)
    result.assert_outcomes(passed=1 + 2 * len(PROPERTIES))
    out = result.stdout.str()
    for prop in PROPERTIES:
        for dtype in ("float32", "bfloat16"):
            assert f"moegate::{prop}[{dtype}] PASSED" in out
    assert "moegate: impl my_adapter:route_ok on cpu, profile ci, dtypes float32, bfloat16" in out


def test_a_wrong_implementation_fails_with_property_dtype_and_shrunk_example(
    user_dir: pytest.Pytester,
) -> None:
    result = user_dir.runpytest(
        "-v", "--moegate-impl", "my_adapter:route_many_bugs", "--moegate-dtype", "float32", *FAST
    )
    out = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] >= 3 and outcomes["passed"] >= 2
    for prop in ("oracle", "differential", "batch_invariance"):
        assert f"moegate::{prop}[float32] FAILED" in out
    assert "moegate::determinism[float32] PASSED" in out and "moegate::bias_shift[float32] PASSED" in out
    # The failure section: pytest's header per item, the property and dtype, the shrunk example, what broke,
    # where the example was saved and a replay that reproduces it.
    assert "_ moegate::oracle[float32] _" in out
    assert "moegate property 'oracle' failed for float32 scores" in out
    assert "example: RoutingConfig(num_experts=256, topk=8" in out and "scores float32[1, 256]" in out
    assert "[id_range] row 0, slot 8: shared id 257 is outside [256, 257)" in out
    assert "FAIL differential (float32 example, 1 row): same root cause as moegate::oracle[float32]" in out
    assert "scores = torch.tensor(" not in out  # whole tensors only with -vv
    replay = next(line.split("replay: ")[1] for line in out.splitlines() if "replay: python " in line)
    script = Path(replay.split()[1])
    assert script.is_file() and script.parent.parent.parent.name == "moegate-failures"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "shared id 257" in proc.stdout, proc.stdout + proc.stderr


def test_very_verbose_brings_the_whole_example(user_dir: pytest.Pytester) -> None:
    result = user_dir.runpytest(
        "-vv", "--moegate-impl", "my_adapter:route_many_bugs", "--moegate-dtype", "float32", "-k", "oracle",
        *FAST,
    )  # fmt: skip
    result.assert_outcomes(failed=1, deselected=len(PROPERTIES))
    assert "scores = torch.tensor(" in result.stdout.str()


def test_one_item_per_fixture_case(user_dir: pytest.Pytester) -> None:
    reference = load_impl("reference")
    cases = [
        fx.record_case(name, problem, reference, preset=preset)
        for name, preset, problem in fx.preset_cases_problems(
            ["deepseek-v3", "mixtral-8x7b"], [torch.float32], 8, 0
        )
    ]
    fx.write_fixture_set(user_dir.path / "golden", cases)
    args = ["-v", "--moegate-fixtures", "golden"]
    ok = user_dir.runpytest(*args, "--moegate-impl", "my_adapter:route_ok", "-k", "fixtures")
    ok.assert_outcomes(passed=2, deselected=len(PROPERTIES) * 3 + 1)
    assert "moegate::fixtures[golden]::deepseek-v3-float32 PASSED" in ok.stdout.str()
    wrong = user_dir.runpytest(*args, "--moegate-impl", "my_adapter:route_wrong_ids", "-k", "fixtures")
    wrong.assert_outcomes(failed=2, deselected=len(PROPERTIES) * 3 + 1)
    out = wrong.stdout.str()
    assert "moegate fixture case 'deepseek-v3-float32' of" in out and "Worst mismatch: row 3, slot 0" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="the items run on this machine's GPU")
def test_gpu_items_skip_with_a_reason_without_a_gpu(user_dir: pytest.Pytester) -> None:
    result = user_dir.runpytest(
        "-rs",
        "--moegate-impl",
        "my_adapter:route_ok",
        "--moegate-device",
        "cuda",
        "--moegate-dtype",
        "float16",
    )
    result.assert_outcomes(passed=1, skipped=len(PROPERTIES))
    assert "--moegate-device cuda, but no CUDA GPU is visible to torch" in result.stdout.str()


def test_a_conftest_sets_the_options_and_the_command_line_wins(user_dir: pytest.Pytester) -> None:
    user_dir.makeconftest(
        """
from my_adapter import route_ok
from moegate.properties.pytest_plugin import configure

def pytest_configure(config):
    configure(config, impl=route_ok, dtypes=["float16"], presets=["mixtral-8x7b"], examples=5)
"""
    )
    result = user_dir.runpytest("-v")
    result.assert_outcomes(passed=1 + len(PROPERTIES))
    assert "moegate::oracle[float16] PASSED" in result.stdout.str()
    result = user_dir.runpytest("-v", "--moegate-dtype", "bfloat16", "-k", "oracle")
    result.assert_outcomes(passed=1, deselected=len(PROPERTIES))
    assert "moegate::oracle[bfloat16] PASSED" in result.stdout.str()


def test_hypothesis_profile_and_example_database_apply(user_dir: pytest.Pytester) -> None:
    args = ["--moegate-impl", "my_adapter:route_wrong_weight", "--moegate-dtype", "float32", "-k", "oracle"]
    # In a fresh process, as a user's run: Hypothesis resolves its database folder from the working directory.
    result = user_dir.runpytest_subprocess("--hypothesis-profile=moegate-dev", *args, *FAST)
    result.assert_outcomes(failed=1, deselected=len(PROPERTIES))
    assert "profile dev" in result.stdout.str()
    # The dev profile keeps Hypothesis' example database: the failure is stored under moegate's key for this
    # property and implementation, and tried first on the next run.
    database = DirectoryBasedExampleDatabase(user_dir.path / ".hypothesis" / "examples")
    assert list(database.fetch(b"moegate:oracle:my_adapter:route_wrong_weight"))


def test_bad_options_are_usage_errors(user_dir: pytest.Pytester) -> None:
    result = user_dir.runpytest("--moegate-impl", "my_adapter:nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "has no attribute 'nope'" in result.stderr.str()
    result = user_dir.runpytest("--moegate-fixtures", "golden")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--moegate-fixtures needs --moegate-impl" in result.stderr.str()
