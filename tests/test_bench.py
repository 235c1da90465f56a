"""`moegate bench` and `moegate.properties.benchmark`: bytes, floors, ratios, the table, the JSON, the
figure and the command's behaviour, on the CPU with the reference at tiny sizes (no speed is asserted);
the GPU paths (graph timing, events fallback, the measured floors) under the `gpu` marker."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch

from moegate.properties import benchmark as bm
from moegate.properties import benchmark_report as report
from moegate.properties.benchmark_timers import (
    Floors,
    pinnable_cpus,
    plan_calls,
    rotation_set_count,
    time_host_per_cpu,
)
from moegate.properties.cli import main
from moegate.properties.impls import gpu_unavailable_reason, load_impl
from moegate.reference import get_preset

TESTS = Path(__file__).resolve().parent
FAKES = TESTS / "bench_fake_impls.py"
PEER = f"{FAKES}:fake_peer"
FLOORS = Floors(copy_tbps=4.0, copy_method="test", copy_bytes=1 << 30, launch_us=1.0, launch_method="test")
MiB = 1 << 20


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- bytes and floors -----------------------------------------------------------------------------------


def test_call_bytes_match_the_hand_count_in_docs_perf() -> None:
    # docs/perf.md counts DeepSeek-V3 (E = 256, W = 9), bf16 scores, float32 bias, float32 weights by hand.
    config = get_preset("deepseek-v3")
    for rows, expected in ((1, 1_608), (4_096, 2_393_088), (65_536, 38_274_048)):
        assert bm.call_bytes(config, rows, torch.bfloat16, torch.float32) == expected


def test_call_bytes_of_a_peer_count_its_own_width_and_weight_dtype() -> None:
    config = get_preset("deepseek-v3").replace(num_fused_shared_experts=0)  # W = K = 8
    t = 1000
    expected = t * 256 * 2 + 256 * 4 + t * 8 * 4 + t * 8 * 2  # logits, bias, ids, bf16 weights
    assert bm.call_bytes(config, t, torch.bfloat16, torch.float32, torch.bfloat16) == expected
    no_bias = bm.call_bytes(config, t, torch.float32, None)
    assert no_bias == t * 256 * 4 + t * 8 * 8
    with pytest.raises(ValueError, match="num_rows"):
        bm.call_bytes(config, -1, torch.float32, None)


def test_the_floor_is_the_larger_of_bandwidth_and_launch() -> None:
    assert FLOORS.floor_us(100) == 1.0  # 100 B at 4 TB/s is 25 ps: the launch floor wins
    assert FLOORS.floor_us(8_000_000) == pytest.approx(2.0)  # 8 MB / 4e12 B/s = 2 µs
    assert FLOORS.floor_us(4_000_000) == pytest.approx(1.0)


@pytest.mark.parametrize("set_bytes", [1, 512, MiB, 7 * MiB, 50 * MiB, 60 * MiB, 61 * MiB, 200 * MiB])
def test_rotation_sets_are_the_fewest_that_exceed_twice_the_l2(set_bytes: int) -> None:
    l2 = 60 * MiB
    n = rotation_set_count(set_bytes, l2, max_sets=10**9, max_bytes=1 << 60)
    assert n * set_bytes > 2 * l2 and (n == 1 or (n - 1) * set_bytes <= 2 * l2)
    capped = rotation_set_count(set_bytes, l2, max_sets=64, max_bytes=256 * MiB)
    assert 1 <= capped <= 64 and (capped == 1 or capped * set_bytes <= 256 * MiB)
    assert capped == min(n, 64, max(1, 256 * MiB // set_bytes))


def test_plan_calls_bounds_a_batch_by_time_and_count() -> None:
    assert plan_calls(1e-4, target_s=0.02, max_calls=256) == 200
    assert plan_calls(1e-7, target_s=0.02, max_calls=256) == 256
    assert plan_calls(0.5, target_s=0.02, max_calls=256) == 1  # eager at T = 262144: one call
    with pytest.raises(ValueError, match="max_calls"):
        plan_calls(1e-3, target_s=0.02, max_calls=0)


# ---- ratios, table, JSON, figure from injected timings -------------------------------------------------

PEERS = ("flashinfer-default", "flashinfer-cake", "vllm")


def _row(impl: str, t: int, us: float | None, status: str = "ok", preset: str = "deepseek-v3") -> bm.BenchRow:
    nbytes = t * 1000
    return bm.BenchRow(impl, preset, "bfloat16", t, status, us, nbytes, FLOORS.floor_us(nbytes), "graph")


def _injected_rows() -> list[bm.BenchRow]:
    # The DeepSeek-V3 numbers at T = 1 and 262144, with cake rejecting at T = 262144 for the test.
    return [
        _row("optimized", 1, 3.84),
        _row("flashinfer-default", 1, 3.21),
        _row("flashinfer-cake", 1, 2.35),
        _row("vllm", 1, 2.71),
        _row("optimized", 262144, 266.0),
        _row("flashinfer-default", 262144, 656.4),
        _row("flashinfer-cake", 262144, None, status="rejects"),
        _row("vllm", 262144, 658.9),
        _row("optimized", 16, 4.0, preset="kimi-k2"),  # no peer timed at this row
        _row("eager", 1, None, status="error"),
    ]


def test_ratios_compare_with_the_fastest_timed_peer_and_the_floor() -> None:
    rows = {(r.impl, r.preset, r.T): r for r in bm.with_ratios(_injected_rows(), PEERS)}
    opt1 = rows["optimized", "deepseek-v3", 1]
    assert opt1.fastest_peer == "flashinfer-cake" and opt1.vs_peer == pytest.approx(3.84 / 2.35)
    assert rows["flashinfer-cake", "deepseek-v3", 1].vs_peer == pytest.approx(1.0)
    opt_big = rows["optimized", "deepseek-v3", 262144]
    assert opt_big.fastest_peer == "flashinfer-default" and opt_big.vs_peer == pytest.approx(266.0 / 656.4)
    assert opt_big.vs_floor == pytest.approx(266.0 / max(262144 * 1000 / 4e6, 1.0))
    assert opt1.vs_floor == pytest.approx(3.84 / 1.0)  # 1000 B: the launch floor
    assert rows["optimized", "kimi-k2", 16].vs_peer is None
    assert rows["flashinfer-cake", "deepseek-v3", 262144].vs_peer is None
    assert rows["eager", "deepseek-v3", 1].vs_floor is None


def _result(rows: list[bm.BenchRow]) -> bm.BenchResult:
    names = list(dict.fromkeys(r.impl for r in rows))
    infos = [bm.ImplInfo(n, True, "", n in PEERS, None) for n in names]
    infos.append(bm.ImplInfo("vllm-missing", False, "no sources found", False, None))
    spec_floors = [
        {"preset": p, "dtype": "bfloat16", "T": t, "bytes": t * 1000, "floor_us": FLOORS.floor_us(t * 1000)}
        for p in ("deepseek-v3", "kimi-k2")
        for t in (1, 16, 262144)
    ]
    return bm.BenchResult(
        card="NVIDIA H200",
        driver="580.159.04",
        versions={"torch": "2.11.0", "cupy": None},
        device="cuda:0",
        floors=FLOORS,
        impls=infos,
        presets=["deepseek-v3", "kimi-k2"],
        dtypes=["bfloat16"],
        row_counts=[1, 16, 262144],
        rows=bm.with_ratios(rows, PEERS),
        spec_floors=spec_floors,
    )


def test_table_prints_rejects_and_errors_in_the_time_column_and_the_ratios() -> None:
    result = _result(_injected_rows())
    cells = {(c[0], c[1], c[3]): c for c in report.table_rows(result)}
    assert len(cells) == len(_injected_rows())
    opt = cells["optimized", "deepseek-v3", "262144"]
    assert dict(zip(report.TABLE_HEADERS, opt, strict=True)) == {
        "impl": "optimized",
        "preset": "deepseek-v3",
        "dtype": "bfloat16",
        "T": "262144",
        "µs/call": "266.0",
        "vs peer": f"{266.0 / 656.4:.2f}",
        "vs floor": f"{266.0 / 65.536:.2f}",
        "floor µs": "65.54",
        "method": "graph",
    }
    assert cells["flashinfer-cake", "deepseek-v3", "262144"][4:7] == ("rejects", "-", "-")
    assert cells["eager", "deepseek-v3", "1"][4] == "error"
    lines = report.notes(result)
    assert "not available: vllm-missing: no sources found" in lines
    assert any(line.startswith("rejects: flashinfer-cake on deepseek-v3 bfloat16") for line in lines)
    assert any(line.startswith("error: eager at deepseek-v3 bfloat16 T=1") for line in lines)
    header = "\n".join(report.header_lines(result))
    assert "NVIDIA H200" in header and "580.159.04" in header and "4 TB/s" in header


def test_fmt_keeps_three_significant_digits() -> None:
    assert [report.fmt_us(x) for x in (3.841, 266.04, 1068.4, None)] == ["3.84", "266.0", "1068", "-"]
    assert [report.fmt_ratio(x) for x in (0.734, 7.53, 43.42, 519.9, None)] == [
        "0.73",
        "7.53",
        "43.4",
        "520",
        "-",
    ]


def test_json_document_has_the_schema_notebooks_read() -> None:
    doc = json.loads(json.dumps(_result(_injected_rows()).to_json()))
    schema = {
        "card": str,
        "driver": str,
        "versions": dict,
        "copy_floor_tbps": float,
        "launch_floor_us": float,
        "rows": list,
    }
    for key, kind in schema.items():
        assert isinstance(doc[key], kind), key
    for row in doc["rows"]:
        assert (
            isinstance(row["impl"], str) and isinstance(row["preset"], str) and isinstance(row["dtype"], str)
        )
        assert (
            isinstance(row["T"], int) and isinstance(row["bytes"], int) and isinstance(row["floor_us"], float)
        )
        assert row["status"] in bm.STATUSES and isinstance(row["method"], str)
        assert (row["us"] is not None) == (row["status"] == "ok")


def test_floor_curve_draws_the_kink_where_bandwidth_overtakes_launch() -> None:
    from moegate.properties.benchmark_plot import floor_curve

    def nbytes(t: float) -> float:
        return 600 * t + 512

    points = [(t, int(nbytes(t))) for t in (1, 16, 4096, 262144)]
    ts, us = floor_curve(points, copy_tbps=4.0, launch_us=1.0)
    assert ts[0] == 1 and ts[-1] == 262144 and ts == sorted(ts) and len(ts) > 100
    for t, u in zip(ts, us, strict=True):
        assert u == pytest.approx(max(nbytes(t) / 4e12 * 1e6, 1.0))
    assert min(us) == 1.0 and us[-1] == pytest.approx(nbytes(262144) / 4e6)


def test_plot_draws_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'moegate[bench]')")
    from moegate.properties.benchmark_plot import plot_bench, write_plot

    doc = _result(_injected_rows()).to_json()
    fig = plot_bench(doc)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["deepseek-v3, bfloat16", "kimi-k2, bfloat16"]
    assert axes[0].get_xscale() == "log" and axes[0].get_yscale() == "log"
    assert "µs" in axes[0].get_ylabel() and "T" in axes[0].get_xlabel()
    labels = [line.get_label() for line in axes[0].get_lines()]
    # one line per implementation with timed rows (eager only errored), and the floor
    assert labels == ["optimized", "flashinfer-default", "flashinfer-cake", "vllm", "floor"]
    assert "NVIDIA H200" in fig._suptitle.get_text()
    path = write_plot(doc, tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_saved_document_reads_back_as_the_same_result() -> None:
    result = _result(_injected_rows())
    host = bm.HostRow(
        "optimized", "deepseek-v3", "bfloat16", 1, "ok", 5.1, 4.2, 7.4, 1000, "", {"0": 5.0}, 5.0, 5.0
    )
    result = bm.BenchResult(**{**result.__dict__, "host": [host]})
    assert bm.BenchResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    # and a run the H200 wrote (docs/bench): its document again, key for key
    saved = json.loads((TESTS.parent / "docs" / "bench" / "bench_h200.json").read_text())
    again = bm.BenchResult.from_json(saved).to_json()
    assert again == {k: v for k, v in saved.items() if k in again} and len(again["rows"]) > 100


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"format": "moegate-fixtures"}, "format='moegate-fixtures'"),
        ({"format_version": 2}, "format_version=2"),
        ({"copy_floor_tbps": None}, "copy_floor_tbps"),
        ({"rows": [{"impl": "x", "colour": "red"}]}, "a row does not match"),
    ],
)
def test_a_document_of_another_kind_is_refused_naming_the_key(edit: dict, expected: str) -> None:
    doc = {**_result(_injected_rows()).to_json(), **edit}
    if edit.get("copy_floor_tbps", 0) is None:
        del doc["copy_floor_tbps"]
    with pytest.raises(ValueError, match=re.escape(expected)):
        bm.BenchResult.from_json(doc)


def _targets_rows() -> list[bm.BenchRow]:
    # Floors (FLOORS, bytes = 1000 T): 1 µs (launch) up to T = 256, 16.384 µs at 65536, 65.536 at 262144.
    return [
        _row("optimized", 1, 1.9),
        _row("vllm", 1, 2.5),  # 0.76
        _row("optimized", 256, 2.2),
        _row("vllm", 256, 2.0),  # 1.10: decode missed here
        _row("optimized", 65536, 16.384 * 2.0),
        _row("optimized", 262144, 65.536 * 2.0),
        _row("optimized", 1, 2.5, preset="qwen3-moe"),  # in time 2.5 / 1.9
        _row("optimized", 256, 2.2, preset="qwen3-moe"),
        _row("optimized", 65536, 16.384 * 2.6, preset="qwen3-moe"),  # per byte 1.3
        _row("optimized", 262144, 65.536 * 2.4, preset="qwen3-moe"),  # 1.2
        _row("optimized", 1, 2.0, preset="kimi-k2"),
        _row("vllm", 1, 3.0, preset="kimi-k2"),
        _row("optimized", 65536, 16.384 * 2.2, preset="kimi-k2"),  # 1.1
    ]


def test_targets_are_judged_on_the_runs_rows() -> None:
    from moegate.properties.benchmark_targets import evaluate_targets, preset_ratios

    host = bm.HostRow(
        "optimized", "deepseek-v3", "bfloat16", 1, "ok", 7.5, 6.0, 9.0, 1000, "", {"0": 7.0, "1": 8.5}
    )
    result = bm.BenchResult(**{**_result(_targets_rows()).__dict__, "host": [host]})
    rows = {(r.preset, r.dtype, r.T): r for r in result.rows if r.impl == "optimized"}
    ratios = preset_ratios(rows)
    assert ratios.keys() == {("qwen3-moe", "bfloat16"), ("kimi-k2", "bfloat16")}
    assert ratios["qwen3-moe", "bfloat16"] == pytest.approx((1.3, 2.5 / 1.9))
    assert ratios["kimi-k2", "bfloat16"] == pytest.approx((1.1, 2.0 / 1.9))
    checks = {c.target.split(".")[0]: c for c in evaluate_targets(result)}
    assert [c.met for c in checks.values()] == [False, True, False, False, True]
    assert checks["1"].over == ("deepseek-v3 bfloat16 T=256: 1.10",) and "worst 1.10" in checks["1"].measured
    assert checks["1b"].measured == "1.90 µs"
    assert len(checks["2"].over) == 5 and checks["2"].over[0] == "qwen3-moe bfloat16 T=65536: 2.60"
    assert checks["3"].over == ("qwen3-moe bfloat16 in time 1.316", "qwen3-moe bfloat16 per byte 1.300")
    assert "1 of 2 CPUs over 8" in checks["4"].measured
    lines = report.target_lines(list(checks.values()), "optimized")
    assert sum("MISSED" in line for line in lines) == 3 and sum(": met:" in line for line in lines) == 2
    # without DeepSeek-V3, peers or the host path, those targets are not judged; without the impl, none is
    bare = _result([r for r in _targets_rows() if r.preset == "kimi-k2" and r.impl == "optimized"])
    judged = {c.target.split(".")[0]: c.met for c in evaluate_targets(bare)}
    assert judged == {"1": None, "1b": None, "2": False, "3": None, "4": None}
    assert evaluate_targets(bare, impl="eager") == []


# ---- the sweep on the CPU ------------------------------------------------------------------------------


def test_run_benchmark_on_the_reference_with_a_rejecting_peer_and_a_missing_impl() -> None:
    result = bm.run_benchmark(
        ["reference", PEER, "no_such_module_xyz:route"],
        ["deepseek-v3", "kimi-k2"],
        [torch.bfloat16],
        [1, 4],
        device="cpu",
        peers=[PEER],
        timer=bm.default_timer(torch.device("cpu"), replays=1),
        floors=FLOORS,
    )
    rows = {(r.impl, r.preset, r.T): r for r in result.rows}
    assert len(rows) == 3 * 2 * 2
    for t in (1, 4):
        ref = rows["reference", "deepseek-v3", t]
        peer = rows[PEER, "deepseek-v3", t]
        assert ref.status == peer.status == "ok" and ref.method == "perf_counter" and ref.us > 0
        # the reference moves SPEC's W = 9 slots in float32 with a bf16 bias; the peer its projection
        assert ref.bytes == t * 256 * 2 + 256 * 2 + t * 9 * 8 and ref.width == 9
        assert peer.bytes == t * 256 * 2 + 256 * 4 + t * 8 * (4 + 2) and peer.width == 8
        assert (peer.bias_dtype, peer.weight_dtype) == ("float32", "bfloat16")
        assert ref.vs_peer == pytest.approx(ref.us / peer.us) and ref.fastest_peer == PEER
        assert ref.floor_us == FLOORS.floor_us(ref.bytes) and ref.vs_floor == pytest.approx(
            ref.us / ref.floor_us
        )
        kimi = rows[PEER, "kimi-k2", t]
        assert kimi.status == "rejects" and "G > 1" in kimi.reason and kimi.us is None
        assert rows["reference", "kimi-k2", t].vs_peer is None
        missing = rows["no_such_module_xyz:route", "deepseek-v3", t]
        assert missing.status == "unavailable" and "cannot be imported" in missing.reason
    infos = {i.name: i for i in result.impls}
    assert infos[PEER].peer and infos[PEER].contract and not infos["no_such_module_xyz:route"].available


def test_run_benchmark_refuses_when_nothing_can_run_and_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="none can run here"):
        bm.run_benchmark(["optimized"], device="cpu", floors=FLOORS)
    with pytest.raises(ValueError, match="preset='nope'"):
        bm.run_benchmark(["reference"], ["nope"], device="cpu", floors=FLOORS)
    with pytest.raises(ValueError, match="T=0"):
        bm.run_benchmark(["reference"], rows=[0], device="cpu", floors=FLOORS)
    with pytest.raises(TypeError, match="dtype"):
        bm.run_benchmark(["reference"], dtypes=[torch.int32], device="cpu", floors=FLOORS)


# ---- the host path on each CPU -------------------------------------------------------------------------


@pytest.mark.skipif(not pinnable_cpus(), reason="this platform cannot pin a thread to one of several CPUs")
def test_host_path_per_cpu_runs_each_cpus_calls_there_and_restores_the_affinity() -> None:
    import os

    allowed = os.sched_getaffinity(0)
    seen: list[frozenset[int]] = []

    def call(x: torch.Tensor) -> None:
        seen.append(frozenset(os.sched_getaffinity(0)))

    samples = time_host_per_cpu(call, (torch.zeros(1),), torch.device("cpu"), calls=40, rounds=2)
    cpus = pinnable_cpus()
    assert sorted(samples) == cpus
    assert all(len(v) == 40 and all(t >= 0 for t in v) for v in samples.values())
    # every call ran pinned to one CPU: 2 rounds x (5 warm-up + 20 timed) calls per CPU, in CPU order
    assert seen == [frozenset({c}) for _ in range(2) for c in cpus for _ in range(25)]
    assert os.sched_getaffinity(0) == allowed

    def fails(x: torch.Tensor) -> None:
        if len(os.sched_getaffinity(0)) == 1:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        time_host_per_cpu(fails, (torch.zeros(1),), torch.device("cpu"), calls=4)
    assert os.sched_getaffinity(0) == allowed
    with pytest.raises(ValueError, match="calls=0"):
        time_host_per_cpu(call, (torch.zeros(1),), torch.device("cpu"), calls=0)


# ---- the command ---------------------------------------------------------------------------------------

FAST = ("bench", "--device", "cpu", "--rows", "1", "4", "--replays", "1")


def test_bench_command_table_json_and_host_path(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*FAST, "--impl", "reference", "--impl", PEER, "--impl", "nope_xyz:f", "--peer", PEER]
    code, out, err = run(
        capsys, *argv, "--preset", "deepseek-v3", "--preset", "moonlight-16b-a3b", "--host", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)  # stdout holds the JSON alone
    assert doc["command"] == "bench" and doc["ok"] and doc["device"] == "cpu"
    assert doc["copy_floor_tbps"] > 0 and doc["launch_floor_us"] > 0
    statuses = {(r["impl"], r["preset"]): r["status"] for r in doc["rows"]}
    assert (
        statuses[PEER, "moonlight-16b-a3b"] == "rejects"
        and statuses["nope_xyz:f", "deepseek-v3"] == "unavailable"
    )
    host = {h["impl"]: h for h in doc["host"]}
    assert host["reference"]["status"] == "ok" and host["reference"]["calls"] == bm.HOST_CALLS
    assert host["reference"]["T"] == 1 and host["reference"]["preset"] == "deepseek-v3"
    # ... and on each CPU the thread may use: their median and the slowest
    per_cpu = host["reference"]["cpu_us"]
    assert sorted(int(c) for c in per_cpu) == pinnable_cpus()
    if per_cpu:
        assert host["reference"]["cpu_worst_us"] == max(per_cpu.values())
        assert min(per_cpu.values()) <= host["reference"]["cpu_median_us"] <= max(per_cpu.values())
    else:
        assert host["reference"]["cpu_median_us"] is None and host["reference"]["cpu_worst_us"] is None
    # the human report went to stderr: card, floors, the table with its ratio columns, the notes
    assert "copy floor:" in err and "launch floor:" in err
    timed = [line.split() for line in err.splitlines() if line.endswith("perf_counter")]
    assert sorted((cells[0], cells[1], cells[3]) for cells in timed if cells[0] == "reference") == [
        ("reference", p, t) for p in ("deepseek-v3", "moonlight-16b-a3b") for t in ("1", "4")
    ]
    assert "vs peer" in err and "vs floor" in err and "host path:" in err
    rejected = [line.split() for line in err.splitlines() if line.startswith(PEER)]
    assert [c[3] for c in rejected if c[1] == "moonlight-16b-a3b" and c[4] == "rejects"] == ["1", "4"]
    assert "not available: nope_xyz:f" in err


def test_bench_command_exits_1_when_a_call_raises(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        *FAST,
        "--impl",
        "reference",
        "--impl",
        f"{FAKES}:route_raises",
        "--impl",
        f"{FAKES}:route_wrong_shape",
    ]
    code, out, err = run(capsys, *argv, "--preset", "deepseek-v3", "--json")
    assert code == 1
    doc = json.loads(out)
    errors = [r for r in doc["rows"] if r["status"] == "error"]
    assert not doc["ok"] and len(errors) == 4
    assert all("boom" in r["reason"] for r in errors if r["impl"].endswith("route_raises"))
    assert all("[T, W]" in r["reason"] for r in errors if r["impl"].endswith("route_wrong_shape"))
    assert "4 row(s) raised" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--impl", "optimized"], "CUDA"),
        (["--preset", "nope"], "preset='nope'"),
        (["--dtype", "int8"], "dtype='int8'"),
        (["--rows", "0"], "--rows"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_bench_bad_usage_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, out, err = run(capsys, "bench", "--device", "cpu", *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and expected in lines[0], err


def test_bench_out_writes_json_and_png_and_refuses_to_overwrite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'moegate[bench]')")
    out_dir = tmp_path / "bench"
    argv = [*FAST, "--impl", "reference", "--preset", "deepseek-v3", "--out", str(out_dir), "-q"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    doc = json.loads((out_dir / "bench.json").read_text())
    assert [r["T"] for r in doc["rows"]] == [1, 4]
    assert (out_dir / "bench.png").read_bytes()[:4] == b"\x89PNG"
    before = (out_dir / "bench.json").read_text()
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "--force" in err
    assert (out_dir / "bench.json").read_text() == before
    code, _, err = run(capsys, *argv, "--force")
    assert code == 0, err


def test_bench_out_without_matplotlib_writes_the_json_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    out_dir = tmp_path / "bench"
    code, out, err = run(
        capsys, *FAST, "--impl", "reference", "--preset", "deepseek-v3", "--out", str(out_dir)
    )
    assert code == 0, err
    assert (out_dir / "bench.json").is_file() and not (out_dir / "bench.png").exists()
    assert len([line for line in out.splitlines() if "matplotlib is not installed" in line]) == 1


def test_bench_from_reports_a_saved_run_again_and_against_compares_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "bench"
    argv = [*FAST, "--impl", "reference", "--preset", "deepseek-v3", "--out", str(out_dir), "-q"]
    code, live, err = run(capsys, *argv)
    assert code == 0, err
    saved = str(out_dir / "bench.json")
    code, again, err = run(capsys, "bench", "--from", saved, "--against", saved)
    assert code == 0, err
    live_rows = [line.split() for line in live.splitlines() if line.startswith("reference ")]
    again_rows = [line.split() for line in again.splitlines() if line.startswith("reference ")]
    assert len(live_rows) == 2 and again_rows == [[*cells, "1.000"] for cells in live_rows]
    assert "vs before" in again and "targets of" not in again  # no optimized rows to judge
    # the saved run's targets, where it has the kernel's rows
    injected = tmp_path / "injected.json"
    injected.write_text(json.dumps(_result(_targets_rows()).to_json()))
    code, out, err = run(capsys, "bench", "--from", str(injected), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [t["met"] for t in doc["targets"]] == [False, True, False, False, None]
    assert "3. every preset: MISSED" in err and "4. host path: not judged" in err
    # --from times nothing: the options of a run are refused, and --out does not overwrite
    for extra in (["--impl", "reference"], ["--rows", "4"], ["--host"], ["--device", "cpu"]):
        code, out, err = run(capsys, "bench", "--from", saved, *extra)
        assert code == 2 and out == "" and extra[0] in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "bench", "--from", saved, "--out", str(out_dir))
    assert code == 2 and "--force" in err
    for flag, path, expected in (
        ("--from", tmp_path / "missing.json", "no such file"),
        ("--against", TESTS / "test_bench.py", "not a JSON document"),
        ("--from", FAKES.parent / "conftest.py", "not a JSON document"),
    ):
        code, out, err = run(capsys, "bench", "--from", saved, flag, str(path))
        assert code == 2 and out == "" and flag in err and expected in err, err


def test_bench_out_refuses_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    code, _, err = run(capsys, *FAST, "--impl", "reference", "--out", str(tmp_path / "f"))
    assert code == 2 and "not a directory" in err


def test_eager_is_the_reference_on_cuda() -> None:
    from moegate.reference import route

    impl = load_impl("eager")
    assert impl.fn is route and impl.default_device == "cuda"


# ---- GPU ----------------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_gpu_sweep_times_with_graphs_and_measures_the_floors() -> None:
    result = bm.run_benchmark(
        # route_syncs first: the graphs of the others must still work after its capture failed
        [f"{FAKES}:route_syncs", "optimized", "eager"],
        ["deepseek-v3"],
        [torch.bfloat16],
        [1, 4096],
        device="cuda",
        host=True,
    )
    assert result.floors.copy_tbps > 0 and math.isfinite(result.floors.copy_tbps)
    assert 0 < result.floors.launch_us < 1000
    assert ("CuPy" in result.floors.copy_method) == (gpu_unavailable_reason() is None)
    rows = {(r.impl, r.T): r for r in result.rows}
    for t in (1, 4096):
        for name in ("optimized", "eager"):
            row = rows[name, t]
            assert row.status == "ok" and row.method == "graph", (name, t, row.status, row.method, row.reason)
        syncs = rows[f"{FAKES}:route_syncs", t]
        assert syncs.status == "ok" and syncs.method == "events" and "capture failed" in syncs.reason
        assert rows["optimized", t].sets >= 1 and rows["optimized", t].vs_floor is not None
    host = {h.impl: h for h in result.host}
    assert host["optimized"].status == "ok" and host["optimized"].calls == bm.HOST_CALLS
