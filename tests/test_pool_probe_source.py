"""CPU tests of tools/pool_probe_source.py: the row pool probe's route.cu (one pool for the grid, a pool per
group of blocks, a claim broadcast where it is read) is made from this route.cu (so a change that moves its
anchors shows here, not on the GPU) and compiles, warnings as errors, under nvcc."""

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
import pool_probe_source as pp  # noqa: E402

NVCC = shutil.which("nvcc")


def test_the_pool_replaces_the_grid_stride_of_the_looping_kernels_only() -> None:
    text = build.kernel_source()
    pooled = pp.pool_source(text)
    warp = pooled[pooled.index("route_warp_kernel(") : pooled.index("route_segment_kernel(")]
    segment = pooled[pooled.index("route_segment_kernel(") : pooled.index("route_thread_kernel(")]
    # every looping kernel claims chunks and counts itself out once; the latency kernel keeps its stride
    assert "pool_claim(lane) * kChunk" in warp and "pool_claim(lane) * kPoolRows" in warp
    assert warp.count("pool_leave(lane)") == 1 and "if constexpr (PLAN != kPlanLatency) pool_leave" in warp
    assert "return r + num_warps;" in warp
    assert segment.count("pool_leave(lane)") == 1 and "first = advance(first)" in segment
    assert "first += num_segments" not in segment
    # the other kernels are route.cu's own
    for kernel in ("route_thread_kernel(", "route_generic_kernel("):
        start = text.index(kernel)
        body = text[start : text.index("\n}\n", start)]
        assert body in pooled
    # --scale: every chunk that many times larger, by the one macro
    assert "#define MOEGATE_POOL_SCALE 1 " in pooled
    assert "#define MOEGATE_POOL_SCALE 3 " in pp.pool_source(text, 3)
    with pytest.raises(ValueError, match="scale=0"):
        pp.pool_source(text, 0)
    # --groups: a counter per group of blocks in every claim, the grid's one counter nowhere
    grouped = pp.pool_source(text, groups=132)
    assert "pool_claim(lane)" not in grouped and "g_probe_pool" not in grouped
    assert grouped.count("pool_claim_group(lane, num_rows, kChunk) * kChunk") == 3
    assert "#define MOEGATE_POOL_GROUPS 132" in grouped
    assert "#define MOEGATE_POOL_GROUPS 7" in pp.pool_source(text, groups=7)
    with pytest.raises(ValueError, match="groups=-1"):
        pp.pool_source(text, groups=-1)
    # --defer: every next chunk claimed as lane 0's ticket, broadcast only where a row loop reads it
    for groups in (0, 132):
        deferred = pp.pool_source(text, groups=groups, defer=True)
        assert "next_chunk = " in deferred and not pp._NEXT_CLAIM.search(deferred)
        ticket = "pool_ticket_group(lane, num_rows, " if groups else "pool_ticket(lane, num_rows, "
        assert deferred.count(ticket) == 6
        assert deferred.count("pool_take(next_chunk)") == 5
    # a route.cu without one of the anchors is refused, not half made
    with pytest.raises(ValueError, match="copies of"):
        pp.pool_source(text.replace("first += num_segments", "first += 2 * num_segments"))


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH (the CUDA toolkit is not installed)")
@pytest.mark.parametrize(("groups", "defer"), [(0, False), (132, False), (132, True)])
def test_the_pool_source_compiles(tmp_path: Path, groups: int, defer: bool) -> None:
    # DeepSeek-V3's bound warp kernel (bf16: its dispatch at T >= 16896), Kimi-K2's throughput warp kernel,
    # Qwen3-MoE's segment kernel: nvcc with the kernels' options, warnings as errors.
    names = [dispatch_plan(PRESETS[p], torch.bfloat16) for p in ("deepseek-v3", "kimi-k2", "qwen3-moe")]
    expressions = [names[0].bound_name_expression, names[1].name_expression, names[2].name_expression]
    source = tmp_path / "pool_route.cu"
    source.write_text(pp.pool_source(build.kernel_source(), groups=groups, defer=defer))
    unit = tmp_path / "unit.cu"
    unit.write_text(build.instantiation_unit(expressions, source))
    cmd = [NVCC, "-c", *build.nvcc_options(), "-Werror", "all-warnings"]
    cmd += ["-gencode=arch=compute_90,code=sm_90", str(unit), "-o", str(tmp_path / "unit.o")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"nvcc failed:\n{result.stdout}\n{result.stderr}"
