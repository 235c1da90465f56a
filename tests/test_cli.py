"""The `moegate` command: exit codes, one-line errors, --help everywhere, --json, user-written impls.

Most tests call `main(argv)` in-process (fast); a few run the real console script and `python -m`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from moegate.properties import cli
from moegate.properties.cli import build_parser, main

TESTS = Path(__file__).resolve().parent
GOLDEN = TESTS / "fixtures"
USER_IMPL = TESTS / "user_impl_example.py"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- --help on every level -----------------------------------------------------------------------------

HELP_LEVELS = [
    [],
    ["verify"],
    ["mutants"],
    ["fixtures"],
    ["fixtures", "record"],
    ["fixtures", "check"],
    ["presets"],
    ["bench"],
    ["peers"],
    ["peers", "extract"],
]


@pytest.mark.parametrize("level", HELP_LEVELS, ids=lambda lv: " ".join(lv) or "moegate")
def test_help_on_every_level(capsys: pytest.CaptureFixture[str], level: list[str]) -> None:
    code, out, err = run(capsys, *level, "--help")
    assert code == 0 and "usage: moegate" in out and not err


def test_every_subcommand_has_a_help_test() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {lv[0] for lv in HELP_LEVELS if lv} == set(sub.choices)


# ---- bad usage: exit 2, one line -----------------------------------------------------------------------

BAD_USAGE = {
    "no command": ([], "required: COMMAND"),
    "unknown subcommand": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "unknown fixtures action": (["fixtures", "replay"], "invalid choice: 'replay'"),
    "unknown preset (verify)": (["verify", "--impl", "reference", "--preset", "nope"], "preset='nope'"),
    "unknown preset (record)": (["fixtures", "record", "--out", "x", "--preset", "nope"], "preset='nope'"),
    "impl without colon": (["verify", "--impl", "justaname"], "'module:function'"),
    "impl module missing": (["verify", "--impl", "no_such_module_xyz:route"], "cannot be imported"),
    "impl function missing": (["verify", "--impl", "user_impl_example:nope"], "has no attribute 'nope'"),
    "impl not callable": (["verify", "--impl", "user_impl_example:NOT_CALLABLE"], "not a callable"),
    "impl file missing": (["fixtures", "check", str(GOLDEN), "--impl", "./nope.py:f"], "does not exist"),
    "negative rows": (["fixtures", "record", "--out", "x", "--rows", "-1"], "--rows: -1 is negative"),
    "bad dtype": (["fixtures", "record", "--out", "x", "--dtypes", "int8"], "dtype='int8'"),
    "bad profile": (["verify", "--profile", "fast"], "invalid choice: 'fast'"),
    "zero examples": (["mutants", "--examples", "0"], "--examples"),
    "missing fixture dir": (["fixtures", "check", "/no/such/dir", "--impl", "reference"], "not a directory"),
    "dir without manifest": (["fixtures", "check", str(TESTS), "--impl", "reference"], "no manifest.json"),
    "bad device": (["fixtures", "check", str(GOLDEN), "--impl", "reference", "--device", "tpu"], "--device"),
    "optimized on cpu": (["bench", "--impl", "optimized", "--device", "cpu"], "CUDA"),
    "unknown mutant": (["mutants", "--mutant", "no-such-mutant"], "not a known mutant"),
}


@pytest.mark.parametrize("case", list(BAD_USAGE), ids=list(BAD_USAGE))
def test_bad_usage_exits_2_with_one_clear_line(capsys: pytest.CaptureFixture[str], case: str) -> None:
    argv, expected = BAD_USAGE[case]
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moegate") and "error:" in lines[0], err
    assert expected in lines[0], err


# ---- presets, bench, fixtures --------------------------------------------------------------------------


def test_presets_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "presets")
    assert code == 0
    assert "deepseek-v3" in out and "8/4" in out and "deepseek-ai/DeepSeek-V3" in out
    code, out, _ = run(capsys, "presets", "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["presets"]) == 12 and all(p["source"] for p in doc["presets"])


def test_bench_times_the_reference_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--impl", "reference", "--device", "cpu", "--rows", "1", "16", "--replays", "1"]
    code, out, _ = run(capsys, *argv, "--preset", "deepseek-v3", "--json", "-q")
    doc = json.loads(out)
    assert code == 0
    assert [(r["T"], r["method"]) for r in doc["rows"]] == [(1, "perf_counter"), (16, "perf_counter")]


def test_fixtures_record_then_check_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = [
        "fixtures",
        "record",
        "--out",
        str(tmp_path),
        "--preset",
        "mixtral-8x7b",
        "--preset",
        "deepseek-v3",
    ]
    code, out, err = run(capsys, *argv, "--rows", "8", "--dtypes", "bf16,fp32", "--seed", "3")
    assert code == 0, err
    assert "recorded 4 cases" in out
    code, out, _ = run(capsys, "fixtures", "check", str(tmp_path), "--impl", "reference", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and len(doc["cases"]) == 4


def test_fixtures_check_of_a_wrong_impl_exits_1_with_the_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "fixtures", "record", "--out", str(tmp_path), "--preset", "deepseek-v3", "--rows", "8", "-q")
    code, out, _ = run(capsys, "fixtures", "check", str(tmp_path), "--impl", f"{USER_IMPL}:route_wrong_ids")
    assert code == 1
    assert "FAIL deepseek-v3-float32.safetensors" in out and "row 3" in out and "3 cases FAILED" in out


def test_fixtures_check_of_the_golden_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fixtures", "check", str(GOLDEN), "--impl", "reference")
    assert code == 0 and "PASS deepseek-v3-bfloat16.safetensors" in out and out.rstrip().endswith(": ok")


# ---- verify and mutants --------------------------------------------------------------------------------


def test_verify_a_user_written_function(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = [
        "verify",
        "--impl",
        "user_impl_example:route_ok",
        "--examples",
        "5",
        "--failures-dir",
        str(tmp_path),
    ]
    code, out, err = run(capsys, *argv, "--preset", "deepseek-v3", "--json")
    doc = json.loads(out)
    assert code == 0, err
    assert doc["ok"] and doc["impl"] == "user_impl_example:route_ok" and doc["report"]
    assert not list(tmp_path.iterdir())


def test_verify_a_wrong_user_function_exits_1_and_saves_a_replayable_fixture(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    impl = "user_impl_example:route_wrong_weight"
    argv = ["verify", "--impl", impl, "--examples", "10", "--failures-dir", str(tmp_path)]
    code, out, err = run(capsys, *argv)
    assert code == 1, err
    assert "FAIL" in out
    saved = list(tmp_path.iterdir())
    assert len(saved) == 1 and (saved[0] / "manifest.json").is_file()
    assert f"moegate fixtures check {saved[0]} --impl {impl}" in out
    # The saved counterexample replays: the wrong impl fails it, the reference passes it.
    assert run(capsys, "fixtures", "check", str(saved[0]), "--impl", impl)[0] == 1
    assert run(capsys, "fixtures", "check", str(saved[0]), "--impl", "reference")[0] == 0


def test_mutants_json(capsys: pytest.CaptureFixture[str]) -> None:
    from moegate.properties.commands.mutants import mutant_names as _mutant_names

    name = _mutant_names()[0]
    code, out, _ = run(capsys, "mutants", "--mutant", name, "--examples", "20", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and [m["name"] for m in doc["mutants"]] == [name]
    assert doc["mutants"][0]["killed"] and doc["mutants"][0]["killed_by"]


# ---- the real console script and python -m -------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(TESTS)}


def test_python_dash_m_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "moegate.properties", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "usage: moegate" in proc.stdout


@pytest.mark.skipif(shutil.which("moegate") is None, reason="the moegate console script is not installed")
def test_console_script_checks_fixtures_with_a_file_path_impl(tmp_path: Path) -> None:
    cmd = ["moegate", "fixtures", "check", str(GOLDEN), "--impl", f"{USER_IMPL}:route_wrong_weight", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert not doc["ok"] and doc["impl"].endswith(":route_wrong_weight")
    proc = subprocess.run(
        ["moegate", "verify", "--impl", "nowhere:f"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2 and proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1


# ---- the default run (the README's main job) and progress output ---------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the default run verifies the fused kernel")
def test_default_verify_on_cpu_runs_reference_fixtures_and_mutants(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "verify", "--failures-dir", str(tmp_path), "--json")
    doc = json.loads(out)
    assert code == 0, err
    assert err.startswith("no usable GPU (no CUDA GPU visible to torch): verifying the reference")
    assert doc["ok"] and doc["impl"] == "reference" and doc["profile"] == "ci"
    assert doc["fixtures"]["ok"] and len(doc["fixtures"]["cases"]) == len(list(GOLDEN.glob("*.safetensors")))
    assert doc["mutants"] and all(m["killed"] for m in doc["mutants"])


def test_default_verify_skips_missing_golden_fixtures_with_a_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moegate.properties.commands import common, verify

    monkeypatch.setattr(verify, "golden_fixture_dir", lambda: None)
    monkeypatch.setattr(common, "default_impl_name", lambda: "reference")
    _code, out, _ = run(capsys, "verify", "--examples", "2", "-q")
    assert "golden fixtures not found" in out and "mutants: " in out


def test_progress_prints_one_plain_line_per_finished_task_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = cli.Progress(stream=stream)
    for done in range(1, 4):
        progress("oracle", done, 3)
    progress("oracle", 4, 3)  # shrinking continues past the total: no second line
    progress("row_order", 1, None)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("oracle: 3/3")


def test_progress_draws_tqdm_bars_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = cli.Progress(stream=stream)
    for done in range(1, 4):
        progress("oracle", done, 3)
    progress("oracle", 4, 3)
    progress("row_order", 1, None)
    progress.close()
    assert "oracle" in stream.getvalue() and not progress.bars
