"""Failures a person can read: a wrong implementation's verify output is short, names what broke, says each
root cause once, saves the whole example with a replay script, and --verbose brings the tensors back."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from moegate.properties.cli import main
from moegate.properties.failures import root_causes
from moegate.properties.mutants import MUTANTS
from moegate.properties.suite import verify

TESTS = Path(__file__).resolve().parent
MANY_BUGS = f"{TESTS / 'user_impl_example.py'}:route_many_bugs"
ARGV = ["verify", "--preset", "deepseek-v3", "--dtype", "float32", "--impl", MANY_BUGS, "-q"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_default_output_is_short_and_names_what_broke(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, text = run(capsys, *ARGV, "--failures-dir", str(tmp_path))
    assert code == 1
    assert len(text.encode()) < 10_000, f"{len(text.encode())} bytes:\n{text}"
    assert "scores = torch.tensor(" not in text
    assert "Falsifying example" not in text and "Failing test case" not in text
    # What broke: the oracle's rules with row and slot, the row slot by slot beside the reference.
    assert "[id_range] row 0, slot 8: shared id 257 is outside [256, 257)" in text
    assert "[output_scaling]" in text and "impl id" in text and "ref id" in text and "257*" in text
    # One root cause, said once: every other failing property points to the oracle's report.
    assert "1 root cause (oracle)" in text
    others = [line for line in text.splitlines() if "same root cause as oracle" in line]
    assert {line.split()[1] for line in others} == {"differential", "batch_invariance", "row_order",
                                                    "expert_permutation", "scale"}  # fmt: skip
    # Where the full example went, and one replay per property that reproduces it.
    (saved,) = tmp_path.iterdir()
    assert f"full example saved: {saved / 'oracle.safetensors'}" in text
    assert f"replay: python {saved / 'row_order.py'}" in text
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(saved / "row_order.py"), run_name="__main__")
    assert stop.value.code == 1
    assert "shared id 257" in capsys.readouterr().out


def test_verbose_brings_the_tensors_back(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, text = run(capsys, *ARGV, "--failures-dir", str(tmp_path), "--verbose")
    assert code == 1
    # Hypothesis' own report of the shrunk example ("Falsifying example" before 6.16x, "Failing test case"
    # after), and the example as Python lines.
    assert "scores = torch.tensor(" in text
    assert "Failing test case" in text or "Falsifying example" in text
    assert len(text.encode()) > 30_000


def test_one_exception_is_one_root_cause() -> None:
    def crashing(scores, bias, config):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    report = verify(crashing, properties=["oracle", "differential", "determinism"], max_examples=5)
    assert root_causes(report.results) == {n: "oracle" for n in ("oracle", "differential", "determinism")}
    text = report.format()
    assert text.count("RuntimeError: CUDA error") == 3  # the traceback once, then "same root cause (...)"
    assert text.count("File ") <= 4
    assert "same root cause as oracle (RuntimeError: CUDA error" in text


def test_separate_bugs_are_separate_root_causes() -> None:
    # Weights from b instead of p: only weights are wrong. Nondeterminism is a separate, relational bug.
    report = verify(
        MUTANTS["weights_from_biased"].impl,
        properties=["oracle", "differential"],
        configs=["deepseek-v3"],
        max_examples=20,
    )
    assert root_causes(report.results) == {"oracle": "oracle", "differential": "oracle"}
    calls = {"n": 0}

    def flaky(scores, bias, config):
        ids, weights = MUTANTS["weights_from_biased"].impl(scores, bias, config)
        calls["n"] += 1
        return ids, weights + calls["n"] * 1e-3

    report = verify(flaky, properties=["oracle", "determinism"], configs=["deepseek-v3"], max_examples=20)
    causes = root_causes(report.results)
    assert causes["oracle"] == "oracle" and causes["determinism"] == "determinism"
    assert "same root cause" not in report.format()
