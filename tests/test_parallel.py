"""`moegate verify --workers N` (properties/parallel.py): the same verdicts and example counts as one
worker, the same failures for a wrong implementation, the work split by property (and by dtype when there
are fewer properties than workers), one device and a share of the CPU threads per worker, and a worker that
crashes surfacing as an error rather than a hang.

Each test that starts workers spawns one or two fresh interpreters (about two seconds each on two cores);
the whole file takes about 10 s.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest
import torch

from moegate.properties import parallel
from moegate.properties.cli import main
from moegate.properties.suite import PROPERTIES

TESTS = Path(__file__).resolve().parent
WRONG_WEIGHT = f"{TESTS / 'user_impl_example.py'}:route_wrong_weight"


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _verdicts(doc: dict) -> list[tuple]:
    return [(r["name"], r["ok"], r["examples"], r["passed"], r["failed"]) for r in doc["report"]["results"]]


def _verify_json(tmp_path: Path, *args: str) -> tuple[int, dict]:
    code, out, err = _cli("verify", "--json", "-q", "--failures-dir", str(tmp_path / "failures"), *args)
    assert code in (0, 1), err
    return code, json.loads(out)


def test_two_workers_give_the_verdicts_and_example_counts_of_one(tmp_path: Path) -> None:
    args = ("--impl", "reference", "--examples", "4", "--profile", "ci")
    code_1, one = _verify_json(tmp_path, *args)
    code_2, two = _verify_json(tmp_path, *args, "--workers", "2")
    assert code_1 == code_2 == 0
    assert _verdicts(two) == _verdicts(one)
    assert [r["name"] for r in two["report"]["results"]] == list(PROPERTIES)
    assert all(r["examples"] == 4 for r in two["report"]["results"])
    assert two["workers"]["count"] == 2 and two["workers"]["devices"] == ["cpu"]
    assert one["workers"]["count"] == 1


def test_a_wrong_implementation_fails_the_same_properties_with_one_and_two_workers(tmp_path: Path) -> None:
    args = ("--impl", WRONG_WEIGHT, "--examples", "4", "--dtype", "float32")
    code_1, one = _verify_json(tmp_path / "one", *args)
    code_2, two = _verify_json(tmp_path / "two", *args, "--workers", "2")
    assert code_1 == code_2 == 1
    assert _verdicts(two) == _verdicts(one)
    failed = [name for name, ok, *_ in _verdicts(two) if not ok]
    assert "oracle" in failed and "differential" in failed, failed
    # The shrunk counterexamples came back from the workers intact: the same fixture set is saved.
    saved = [sorted(p.name for p in Path(doc["failure_fixture_dir"]).iterdir()) for doc in (one, two)]
    assert saved[0] == saved[1] and "oracle.safetensors" in saved[0]
    for doc in (one, two):
        results = {r["name"]: r for r in doc["report"]["results"]}
        assert results["oracle"]["counterexample"] == results["oracle"]["counterexample"] is not None
    assert [r["counterexample"] for r in one["report"]["results"]] == [
        r["counterexample"] for r in two["report"]["results"]
    ]


def test_tasks_split_by_property_then_by_dtype_deterministically() -> None:
    f32, f16, bf16 = torch.float32, torch.float16, torch.bfloat16
    by_property = parallel.plan_tasks(["oracle", "differential", "determinism"], [f32, f16], 2, 100)
    assert [(t.properties, t.dtypes, t.max_examples) for t in by_property] == [
        (("oracle",), (f32, f16), 100),
        (("differential",), (f32, f16), 100),
        (("determinism",), (f32, f16), 100),
    ]
    by_dtype = parallel.plan_tasks(["oracle", "differential"], [f32, f16, bf16], 4, 100)
    assert [(t.properties[0], t.dtypes) for t in by_dtype] == [
        ("oracle", (f32,)), ("oracle", (f16,)), ("oracle", (bf16,)),
        ("differential", (f32,)), ("differential", (f16,)), ("differential", (bf16,)),
    ]  # fmt: skip
    assert {t.max_examples for t in by_dtype} == {math.ceil(100 / 3)}
    assert parallel.plan_tasks(["oracle"], [f32], 8, 10) == [parallel.Task(("oracle",), (f32,), 10)]


def test_worker_devices() -> None:
    assert [parallel.worker_device("cuda", i, 4) for i in range(6)] == [
        "cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"
    ]  # fmt: skip
    assert parallel.worker_device("cuda", 3, 1) == "cuda"
    assert parallel.worker_device("cuda:1", 0, 4) == "cuda:1"
    assert parallel.worker_device("cpu", 5, 4) == "cpu"


def test_a_property_split_by_dtype_runs_on_the_worker_device_with_its_share_of_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    impl = tmp_path / "checked_route.py"
    impl.write_text(
        "import os\nimport torch\nfrom moegate.reference import route\n"
        "def checked(scores, bias, config):\n"
        "    assert torch.get_num_threads() == int(os.environ['EXPECTED_THREADS']), torch.get_num_threads()\n"
        "    assert str(scores.device) == 'cpu'\n"
        "    return route(scores, bias, config)\n"
    )
    monkeypatch.setenv("EXPECTED_THREADS", str(max(1, parallel.available_cores() // 2)))
    seen: list[tuple] = []
    report = parallel.verify_parallel(
        f"{impl}:checked", workers=3, device="cpu", properties=["oracle"], dtypes=["float32", "bfloat16"],
        max_examples=5, profile="ci", progress=lambda *a: seen.append(a),
    )  # fmt: skip
    assert report.ok, report.format()
    assert report.extra["workers"]["tasks"] == 2 and report.extra["workers"]["count"] == 2
    assert [(r.name, r.examples) for r in report.results] == [("oracle", 6)]  # two parts of ceil(5 / 2)
    assert seen == [("oracle", 6, 6)] and report.dtypes == ["float32", "bfloat16"]


def test_a_worker_that_raises_outside_a_property_is_an_error_not_a_hang(tmp_path: Path) -> None:
    impl = tmp_path / "fails_in_workers.py"
    impl.write_text(
        "import multiprocessing\n"
        "if multiprocessing.parent_process() is not None:\n"
        "    raise RuntimeError('cannot import in a worker')\n"
        "from moegate.reference import route\n"
    )
    code, out, err = _cli("verify", "--impl", f"{impl}:route", "--workers", "2", "--examples", "2", "-q")
    assert code == 1 and err.count("\n") == 1, (out, err)
    assert "raised outside a property" in err and "cannot import in a worker" in err, err


def test_a_worker_process_that_dies_is_an_error_not_a_hang(tmp_path: Path) -> None:
    impl = tmp_path / "dies.py"
    impl.write_text("import os\ndef route(scores, bias, config):\n    os._exit(3)\n")
    with pytest.raises(parallel.WorkerError, match=r"process died while running properties \['oracle'\]"):
        parallel.verify_parallel(f"{impl}:route", workers=2, properties=["oracle"], max_examples=2)


def test_bad_worker_counts_are_refused() -> None:
    code, _, err = _cli("verify", "--impl", "reference", "--workers", "0")
    assert code == 2 and err.count("\n") == 1 and "--workers: 0, but it must be >= 1" in err, err
    with pytest.raises(ValueError, match="workers=0, but workers must be an int >= 1"):
        parallel.verify_parallel("reference", workers=0)
    with pytest.raises(ValueError, match="impl='nope'"):
        parallel.verify_parallel("nope", workers=2)


@pytest.mark.gpu
def test_two_workers_on_cuda_give_the_verdicts_of_one(tmp_path: Path) -> None:
    args = ("--impl", "optimized", "--device", "cuda", "--examples", "20", "--profile", "ci")
    code_1, one = _verify_json(tmp_path, *args)
    code_2, two = _verify_json(tmp_path, *args, "--workers", "2")
    assert code_1 == code_2 == 0 and _verdicts(two) == _verdicts(one)
    count = torch.cuda.device_count()
    assert two["workers"]["devices"] == (["cuda:0", "cuda:1"] if count > 1 else ["cuda"])
