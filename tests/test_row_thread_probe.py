"""CPU tests of tools/row_thread_probe.py and tools/row_thread_probe.cu: the variants' names and shared memory
agree with the kernels' layouts, the two set arguments the kernels rest on hold on random rows (numpy), and
the probe source (route.cu with the probe appended) compiles under nvcc, warnings as errors. Its output is
checked bitwise against the dispatch's kernel on the GPU by the probe itself (docs/perf.md, session 28)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from moegate.optimized import build

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import row_thread_probe as rp  # noqa: E402

NVCC = shutil.which("nvcc")


def test_variants_name_the_kernels_and_their_shared_memory() -> None:
    assert rp.parse_variant("tile2") == (0, 2)
    assert rp.parse_variant("stream3x1") == (3, 1)
    assert rp.parse_variant("pair4") == (-1, 4)
    assert rp.parse_variant("flat2") == (rp.FLAT, 2) and rp.parse_variant("keep1") == (rp.KEEP, 1)
    for bad in ("tile0", "tile9", "stream1x2", "stream6x1", "pair", "row2", "tile2 "):
        with pytest.raises(ValueError, match="variant="):
            rp.parse_variant(bad)
    rp.check_variants("deepseek-v3", ["tile2", "pair4", "stream2x1"])
    rp.check_variants("glm-4.5-air", ["flat2", "keep4"])
    for preset, variant in (("deepseek-v3", "flat2"), ("moonlight-16b-a3b", "pair2"), ("qwen3-moe", "flat2")):
        with pytest.raises(ValueError, match="preset="):
            rp.check_variants(preset, [variant])
    assert rp.probe_name("stream2x1") == "moegate::route_row_thread_probe<256, 8, 4, 8, 1, 2>"
    assert rp.probe_name("pair2") == "moegate::route_row_pair_probe<256, 8, 4, 8, 2, 16>"
    assert rp.probe_name("keep2", "moonlight-16b-a3b") == "moegate::route_row_flat_probe<64, 6, 2, true>"
    assert rp.probe_name("flat1", "glm-4.5") == "moegate::route_row_flat_probe<160, 8, 1, false>"
    assert rp.rows_per_warp("pair1") == 16 and rp.rows_per_warp("tile1") == rp.rows_per_warp("flat1") == 32
    # the byte counts the kernels' layouts give (RowThreadLayout, route_row_pair_probe's constants)
    text = rp.PROBE_SOURCE.read_text()
    assert f"constexpr int kRowThreadCandidates = {rp.THREAD_CANDIDATES};" in text
    row, lists, shift = 4 * 132, 4 * 32 * (rp.THREAD_CANDIDATES + 8), 4 * 8 * 36
    assert rp.shared_bytes("tile1") == 32 * row + lists + shift == 22144
    assert rp.shared_bytes("stream2x1") == 2 * 32 * 4 * 20 + lists + shift == 10368
    assert rp.shared_bytes("pair2") == shift + 4 * 256 + 2 * (16 * row + 4 * 32 * (rp.PAIR_CANDIDATES + 8))
    # the flat kernel: the block's shifted bias and bias (2 E words), then each warp's rows and lists
    assert rp.shared_bytes("flat2", "moonlight-16b-a3b") == 4 * 2 * 64 + 2 * (32 * 4 * 36 + lists) == 17920
    assert rp.shared_bytes("keep2", "moonlight-16b-a3b") == rp.shared_bytes("flat2", "moonlight-16b-a3b")
    # 10 warps of the tile, 20 of two slots and 16 of the pairs fit an SM's 228 KB, with 1 KB a block
    for variant, blocks in (("tile1", 10), ("stream2x1", 20), ("pair2", 8), ("pair4", 4)):
        assert blocks * (rp.shared_bytes(variant) + 1024) <= 228 * 1024


def _named(keys: np.ndarray) -> np.ndarray:
    """Keys (positive float32) with the low byte of their bits replaced by 255 - e, as int32."""
    bits = keys.view(np.int32)
    return (bits & ~0xFF) | (255 - np.arange(keys.shape[-1], dtype=np.int32))


def test_the_candidate_floor_keeps_the_k_plus_one_largest_named_keys() -> None:
    # Step 4's argument on random rows: with tau the least second key of the kept groups and the floor tau
    # less 4 M with its low byte cleared, either the K + 1 largest named keys of the kept groups all reach the
    # floor, or only K keys do and every other named key is below the floor (which then bounds a(K + 1)).
    rng = np.random.default_rng(0)
    rows, g, n, kg, k = 4000, 8, 32, 4, 8
    margin = np.float32(5e-5)
    logits = rng.standard_normal((rows, g * n)).astype(np.float32)
    logits[:200] = np.round(logits[:200] * 2) / 2  # ties
    shift = (0.1 * rng.standard_normal(g * n)).astype(np.float32)
    keys = (1 / (1 + np.exp(-logits)) + (shift - shift.min())).astype(np.float32)
    bits = keys.view(np.int32).reshape(rows, g, n)
    top2 = -np.sort(-bits, axis=2)[:, :, :2]
    scores = top2.view(np.float32).sum(axis=2)
    kept = np.argsort(-scores, axis=1, kind="stable")[:, :kg]
    named = _named(keys).reshape(rows, g, n)
    for r in range(rows):
        tau = top2[r, kept[r], 1].min()
        floor = np.float32(np.float32(tau.view(np.float32)) - 4 * margin)
        cut = int(floor.view(np.int32)) & ~0xFF
        kept_bits = bits[r, kept[r]].ravel()
        kept_named = np.sort(named[r, kept[r]].ravel())[::-1]
        passing = kept_bits >= cut
        assert passing.sum() >= k  # the kept groups' top two
        candidates = np.sort(named[r, kept[r]].ravel()[passing])[::-1]
        if passing.sum() > k:
            assert np.array_equal(candidates[: k + 1], kept_named[: k + 1])
        else:
            assert np.array_equal(candidates, kept_named[:k]) and kept_named[k] < cut


def test_the_halves_merge_into_the_k_plus_one_largest() -> None:
    # route_row_pair_probe's merge: two descending lists of K + 1 distinct keys, the second reversed, give at
    # each place the larger of the two: the K + 1 largest of both (a bitonic sequence, then sorted).
    rng = np.random.default_rng(1)
    for _ in range(2000):
        both = rng.choice(1 << 20, size=int(rng.integers(2, 40)), replace=False) - (1 << 19)
        split = int(rng.integers(0, both.size + 1))
        lists = []
        for part in (both[:split], both[split:]):
            top = np.full(9, -(1 << 31), dtype=np.int64)
            ordered = np.sort(part)[::-1][:9]
            top[: ordered.size] = ordered
            lists.append(top)
        merged = np.sort(np.maximum(lists[0], lists[1][::-1]))[::-1]
        want = np.full(9, -(1 << 31), dtype=np.int64)
        ordered = np.sort(both)[::-1][:9]
        want[: ordered.size] = ordered
        assert np.array_equal(merged, want)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH (the CUDA toolkit is not installed)")
def test_the_probe_source_compiles(tmp_path: Path) -> None:
    # each kind of probe kernel (tile, slots, pairs, flat with and without kept keys), warnings as errors
    source = tmp_path / "probe_route.cu"
    source.write_text(rp.probe_source(build.kernel_source()))
    names = [rp.probe_name(v) for v in ("tile2", "stream2x1", "stream3x1", "pair2")]
    names += [rp.probe_name("keep2", "moonlight-16b-a3b"), rp.probe_name("flat2", "glm-4.5")]
    unit = tmp_path / "unit.cu"
    unit.write_text(build.instantiation_unit(names, source))
    cmd = [NVCC, "-c", *build.nvcc_options(), "-Werror", "all-warnings"]
    cmd += ["-gencode=arch=compute_90,code=sm_90", str(unit), "-o", str(tmp_path / "unit.o")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"nvcc failed:\n{result.stdout}\n{result.stderr}"
    assert not re.search(r"\bwarning\b", result.stderr)
