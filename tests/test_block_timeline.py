"""CPU tests of tools/block_timeline.py: the stamped route.cu (text, and compiled by nvcc where present) and
the timeline's arithmetic on records made by hand."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from moegate.optimized import build, dispatch_plan
from moegate.reference import PRESETS

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import block_timeline as bt  # noqa: E402
import sass_report  # noqa: E402

NVCC = shutil.which("nvcc")


def test_the_stamp_opens_the_warp_and_segment_kernels_and_nothing_else() -> None:
    text = build.kernel_source()
    stamped = bt.stamped_source(text)
    assert stamped.count(bt.STAMP_LINE) == 2
    for kernel in bt.STAMPED_KERNELS:
        start = stamped.index(kernel)
        body = stamped.index("{", start) + 2  # the stamp is the body's first line
        assert stamped[body : body + len(bt.STAMP_LINE)] == bt.STAMP_LINE, kernel
    # the globals sit outside namespace moegate (plain names for get_global_var), before it
    assert stamped.index("moegate_timeline[") < stamped.index("namespace moegate {")
    # removing what was added gives route.cu back: nothing else changed
    assert stamped.replace(bt.STAMP_LINE, "").replace(bt.STAMP_HEADER + "\n", "") == text
    # the launch bounds as route.cu has them, unless a resident count is asked for
    assert [m["blocks"] for m in bt.LAUNCH_BOUNDS.finditer(stamped)] == [
        m["blocks"] for m in bt.LAUNCH_BOUNDS.finditer(text)
    ]
    held = bt.stamped_source(text, 3)
    assert [m["blocks"] for m in bt.LAUNCH_BOUNDS.finditer(held)] == ["3", "3"]
    assert held.count("__launch_bounds__(") == text.count("__launch_bounds__(")


def test_a_text_without_the_anchors_or_a_bad_count_is_refused() -> None:
    text = build.kernel_source()
    with pytest.raises(ValueError, match="route_warp_kernel"):
        bt.stamped_source(text.replace("route_warp_kernel(", "route_warp_kernel_old("))
    with pytest.raises(ValueError, match="signature"):
        bt.stamped_source(text.replace(bt.KERNEL_ANCHOR, "    float* __restrict__ out_weights)\n{\n"))
    with pytest.raises(ValueError, match="min_blocks=0"):
        bt.stamped_source(text, 0)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH (the CUDA toolkit is not installed)")
def test_the_stamped_kernels_compile_and_keep_four_resident_blocks(tmp_path: Path) -> None:
    # Qwen3-MoE's segment kernel and DeepSeek-V3's throughput warp kernel, stamped and held to 4 resident
    # blocks of 256 threads (as their unstamped kernels reside on an H200): nvcc with the kernels' options,
    # warnings as errors, and ptxas within 64 registers a thread (unasked it took 79 for the segment kernel).
    names = [dispatch_plan(PRESETS[p], torch.bfloat16).name_expression for p in ("qwen3-moe", "deepseek-v3")]
    source = tmp_path / "stamped_route.cu"
    source.write_text(bt.stamped_source(build.kernel_source(), 4))
    unit = tmp_path / "unit.cu"
    unit.write_text(build.instantiation_unit(names, source))
    cmd = [NVCC, "-c", *build.nvcc_options(), "-Werror", "all-warnings"]
    cmd += ["-gencode=arch=compute_90,code=sm_90"]
    cmd += ["-Xptxas", "-v", str(unit), "-o", str(tmp_path / "unit.o")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"nvcc failed:\n{result.stdout}\n{result.stderr}"
    counts = sass_report.parse_ptxas(result.stderr + result.stdout)
    registers = {name: r for name, (r, _, _) in counts.items()}
    assert len(registers) == 2 and max(registers.values()) <= 64, registers


def record(slot: int, entry: int, leave: int, sm: int, block: int, warp: int = 0, grid=None) -> tuple:
    grid = slot if grid is None else grid  # as the stamps write it: slot = %gridid % SLOTS
    where = (grid << 48) | (sm << 40) | (warp << 32) | block
    return (slot, entry, leave, where - (1 << 64) if where >> 63 else where)  # read back as int64


def test_records_read_back_as_written() -> None:
    (r,) = bt.parse_records([record(5, 100, 250, sm=131, block=70000, warp=7, grid=0xFFFD)])
    assert r == bt.WarpRecord(entry=100, exit=250, grid=0xFFFD, sm=131, block=70000, warp=7)
    with pytest.raises(ValueError, match="without an exit"):
        bt.parse_records([record(0, 100, 0, sm=1, block=2)])
    # two launches whose ids fell in one slot: refused, not mixed
    with pytest.raises(ValueError, match="slot 3: records of launches 3 and 11"):
        bt.parse_records([record(3, 1, 2, sm=0, block=0), record(3, 1, 2, sm=0, block=1, grid=11)])


def test_a_launchs_span_gap_ramp_drain_and_fill() -> None:
    # Two SMs, one warp slot each. Launch A (slot 1) runs first: SM 0 from 1000 to 5000 ns in two warps
    # back to back, SM 1 from 2000 (its first warp starts late: the ramp) to 4000 (it runs out first: the
    # drain). Launch B (slot 0, listed first) starts 500 ns after A's last exit, on SM 0 only.
    rows = [
        record(0, 5500, 6500, sm=0, block=0),
        record(1, 1000, 3000, sm=0, block=0),
        record(1, 3000, 5000, sm=0, block=2),
        record(1, 2000, 4000, sm=1, block=1),
    ]
    a, b = bt.summarize(bt.parse_records(rows), resident_warps_per_sm=1)
    assert (a.grid, a.blocks, a.sms) == (1, 3, 2)
    assert a.span_us == pytest.approx(4.0) and a.gap_us is None
    assert a.ramp_us == pytest.approx(1.0)  # SM 1's first entry, 1000 ns after the first
    assert a.drain_us == pytest.approx(1.0)  # from SM 1's last exit (4000) to the last (5000)
    assert a.fill == pytest.approx((2000 + 2000 + 2000) / (2 * 1 * 4000))
    assert a.last_exit_spread_us == pytest.approx(1.0) and a.last_exit_sd_us == pytest.approx(0.5)
    assert (b.grid, b.sms) == (0, 1)
    assert b.gap_us == pytest.approx(0.5) and b.span_us == pytest.approx(1.0)
    assert b.ramp_us == 0 and b.drain_us == 0 and b.fill == pytest.approx(1.0)
    with pytest.raises(ValueError, match="resident_warps_per_sm=0"):
        bt.summarize(bt.parse_records(rows), 0)
    with pytest.raises(ValueError, match="exit before entry"):
        bt.summarize([bt.WarpRecord(10, 5, 0, 0, 0, 0)], 1)


def test_dumped_records_read_back_field_by_field(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    records = [bt.WarpRecord(1000, 5000 + i, 7, i % 3, i // 8, i % 8) for i in range(20)]
    path = tmp_path / "records.npz"
    bt.dump_records(records, path)
    with np.load(path) as data:
        back = [bt.WarpRecord(*(int(data[f][i]) for f in ("entry", "exit", "grid", "sm", "block", "warp")))
                for i in range(len(records))]  # fmt: skip
    assert back == records


def test_block_shares_ends_by_rank_held_slots_and_block_fill() -> None:
    # Two SMs, two resident blocks each, one launch. Blocks 0 and 1 (rank 0: blockIdx // 2 = 0) end at 4000
    # and 6000 ns, blocks 2 and 3 (rank 1) at 8000 and 10000. Block 0 has two warps, one done at 2000: it
    # holds its slot 2000 ns after that warp's exit.
    w = bt.WarpRecord
    records = [
        w(0, 2000, 9, 0, 0, 0),
        w(0, 4000, 9, 0, 0, 1),
        w(0, 6000, 9, 1, 1, 0),
        w(0, 8000, 9, 0, 2, 0),
        w(0, 10000, 9, 1, 3, 0),
    ]
    (x,) = bt.block_shares(records, sm_count=2, resident_blocks_per_sm=2)
    assert x.grid == 9
    assert x.wave_ends_us == pytest.approx((5.0, 9.0))
    assert x.held == pytest.approx(2000 / (4000 + 4000 + 6000 + 8000 + 10000))
    assert x.block_fill == pytest.approx((4000 + 6000 + 8000 + 10000) / (2 * 2 * 10000))
    with pytest.raises(ValueError, match="sm_count=0"):
        bt.block_shares(records, 0, 2)


def test_the_records_a_dump_holds_give_the_same_shares(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    records = [
        bt.WarpRecord(100 * i, 100 * i + 900 + 37 * (i % 5), 3, i % 4, i // 2, i % 2) for i in range(40)
    ]
    path = tmp_path / "r.npz"
    bt.dump_records(records, path)
    assert bt.load_records(path) == records
    assert bt.block_shares(bt.load_records(path), 4, 2) == bt.block_shares(records, 4, 2)
