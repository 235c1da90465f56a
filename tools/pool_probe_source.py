"""A probe variant of route.cu whose looping warp and segment kernels take their rows from one pool shared by
the whole grid, instead of a fixed grid stride (docs/perf.md, session 26). A PROBE, NOT A DESIGN TO SHIP:
the pool is one module global, so two launches of the module's kernels running at once (two streams, a
graph's parallel branches) would share it and skip rows. Timed one launch after another on one stream, as
tools/source_probe.py times them, it measures how much of a launch the fixed stride loses to blocks that end
apart (block_timeline: one SM's blocks end at 95.6, 109.8 and 129.5 us in DeepSeek-V3's bound kernel at T =
262144), and source_probe checks its outputs bitwise against route.cu's.

    python tools/pool_probe_source.py [--source optimized/kernels/route.cu] [--scale 1] OUT.cu

The pool: lane 0 of a warp takes the next chunk of rows with one atomicAdd on a global counter (the bound
warp kernel's chunk is its batch of kBatch rows, finished together; the warp throughput kernel takes 4
rows; the segment kernels at least 8, whole segments' worth; --scale multiplies them all), one chunk
ahead so that a row's load can be issued a row ahead as before. Each warp counts itself out after its last
claim, and the last warp of the grid resets both counters, so the next launch (which waits for this one at
griddepcontrol.wait before its first claim) starts from zero. The latency kernel keeps its stride (one row
per warp).

--groups N (session 27): a counter per group of blocks instead of one for the grid. Block b is in group b % n,
n = min(N, gridDim.x), and group g's rows are a fixed contiguous share of the chunks, taken from its own
counter (each on a 256-byte line of its own). With N the SM count and a grid of one wave (3 or 4 blocks an
SM, blocks 0..N-1 placed one on each SM first, then N..2N-1: session 26's timeline), a group holds one block
of each rank on the SM (the blocks of one SM, where every wave is placed in the same order), so this measures
pools of a few blocks' warps without one address taking every claim of the grid (one counter took 65536
claims a launch for DeepSeek-V3). Every group has a block, whatever the placement, so every row is routed; a
group's last warp resets its counters.

--defer (session 27): the next chunk's claim is lane 0's atomic alone, broadcast where a row loop reads it
(the chunk's last row), not right after the atomic, so that its round trip overlaps the chunk's rows.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

POOL_HELPERS = """
// tools/pool_probe_source.py (a probe, not safe for concurrent launches): the grid's row pool.
#ifndef MOEGATE_POOL_SCALE
#define MOEGATE_POOL_SCALE 1  // chunks of this many times the rows named below (the bound kernel: kBatch)
#endif
__device__ unsigned long long g_probe_pool[2];  // the next chunk, the warps done with the pool
__device__ __forceinline__ i64 pool_claim(int lane) {
  unsigned long long c = 0;
  if (lane == 0) c = atomicAdd(&g_probe_pool[0], 1ull);
  return static_cast<i64>(__shfl_sync(0xffffffffu, c, 0));
}
__device__ __forceinline__ i64 pool_ticket(int lane, i64, i64) {
  unsigned long long c = 0;
  if (lane == 0) c = atomicAdd(&g_probe_pool[0], 1ull);
  return static_cast<i64>(c);
}
__device__ __forceinline__ i64 pool_take(i64 ticket) { return __shfl_sync(0xffffffffu, ticket, 0); }
__device__ __forceinline__ void pool_leave(int lane) {
  __syncwarp();
  if (lane == 0) {
    const unsigned long long warps = static_cast<unsigned long long>(gridDim.x) * (blockDim.x / 32u);
    if (atomicAdd(&g_probe_pool[1], 1ull) == warps - 1ull) {
      atomicExch(&g_probe_pool[0], 0ull);
      atomicExch(&g_probe_pool[1], 0ull);
    }
  }
}
"""

GROUP_HELPERS = """
// tools/pool_probe_source.py --groups (a probe, not safe for concurrent launches): a row pool per group of
// blocks, block b in group b % min(MOEGATE_POOL_GROUPS, gridDim.x), each group a contiguous share of chunks.
#ifndef MOEGATE_POOL_SCALE
#define MOEGATE_POOL_SCALE 1  // chunks of this many times the rows named below (the bound kernel: kBatch)
#endif
#define MOEGATE_POOL_GROUPS 132
// one counter a 256-byte line: the groups' atomics then go to different lines (and L2 slices)
#define MOEGATE_POOL_PAD 64
__device__ unsigned int g_probe_group_next[MOEGATE_POOL_GROUPS * MOEGATE_POOL_PAD];  // a group's next chunk
__device__ unsigned int g_probe_group_done[MOEGATE_POOL_GROUPS * MOEGATE_POOL_PAD];  // its warps done
__device__ __forceinline__ u32 pool_groups() {
  return gridDim.x < MOEGATE_POOL_GROUPS ? gridDim.x : MOEGATE_POOL_GROUPS;
}
// The next chunk (of chunk_rows rows) of the block's group, or the chunk count where its share is done.
__device__ __forceinline__ i64 pool_claim_group(int lane, i64 num_rows, i64 chunk_rows) {
  const u32 groups = pool_groups();
  const u32 group = blockIdx.x % groups;
  const u32 chunks = static_cast<u32>((num_rows + chunk_rows - 1) / chunk_rows);
  const u32 share = (chunks + groups - 1) / groups;
  unsigned c = 0;
  if (lane == 0) c = atomicAdd(&g_probe_group_next[group * MOEGATE_POOL_PAD], 1u);
  c = __shfl_sync(0xffffffffu, c, 0);
  const u32 chunk = group * share + c;
  return static_cast<i64>(c < share && chunk < chunks ? chunk : chunks);
}
// --defer: lane 0's next chunk (the others' is unused), broadcast by pool_take only where it is read, so the
// atomic's round trip overlaps the rows of the chunk before
__device__ __forceinline__ i64 pool_ticket_group(int lane, i64 num_rows, i64 chunk_rows) {
  i64 chunk = 0;
  if (lane == 0) {
    const u32 groups = pool_groups();
    const u32 group = blockIdx.x % groups;
    const u32 chunks = static_cast<u32>((num_rows + chunk_rows - 1) / chunk_rows);
    const u32 share = (chunks + groups - 1) / groups;
    const u32 c = atomicAdd(&g_probe_group_next[group * MOEGATE_POOL_PAD], 1u);
    chunk = static_cast<i64>(c < share && group * share + c < chunks ? group * share + c : chunks);
  }
  return chunk;
}
__device__ __forceinline__ i64 pool_take(i64 ticket) { return __shfl_sync(0xffffffffu, ticket, 0); }
__device__ __forceinline__ void pool_leave(int lane) {
  __syncwarp();
  if (lane == 0) {
    const u32 groups = pool_groups();
    const u32 group = blockIdx.x % groups;
    const u32 blocks = gridDim.x / groups + (group < gridDim.x % groups ? 1u : 0u);
    if (atomicAdd(&g_probe_group_done[group * MOEGATE_POOL_PAD], 1u) == blocks * (blockDim.x / 32u) - 1u) {
      atomicExch(&g_probe_group_next[group * MOEGATE_POOL_PAD], 0u);
      atomicExch(&g_probe_group_done[group * MOEGATE_POOL_PAD], 0u);
    }
  }
}
"""

# (old, new) pairs, each old exactly once in route.cu.
REPLACEMENTS = [
    # the helpers, before the warp kernel's declaration of its resident blocks
    (
        "template <int PLAN, int DT, int E>\nconstexpr int kWarpMinBlocks =",
        POOL_HELPERS + "\ntemplate <int PLAN, int DT, int E>\nconstexpr int kWarpMinBlocks =",
    ),
    # warp kernel: the bound plan's first chunk, its first row's load
    (
        """    typename Loader::InFlight ahead;
    if constexpr (kBound) {
      if (first_warp < num_rows) {
        Loader::issue(row_start<Raw>(scores, first_warp, row_stride), lane, use_vec, ahead);
      }
    } else {
      (void)ahead;
    }
""",
        """    typename Loader::InFlight ahead;
    [[maybe_unused]] i64 pool_row = 0;
    [[maybe_unused]] constexpr i64 kChunk = static_cast<i64>(kBatch) * MOEGATE_POOL_SCALE;
    if constexpr (kBound) {
      pool_row = pool_claim(lane) * kChunk;
      if (pool_row < num_rows) {
        Loader::issue(row_start<Raw>(scores, pool_row, row_stride), lane, use_vec, ahead);
      }
    } else {
      (void)ahead;
    }
""",
    ),
    # warp kernel: the bound plan's loop over its chunks, a chunk being one batch
    (
        """      int pending = 0;  // rows selected, not yet finished (warp-uniform)
      i64 batch_first = first_warp;
      u32 held_bound = 0xffffffffu;
      for (i64 row = first_warp;; row += num_warps) {
        const bool has_row = row < num_rows;
        if (has_row) {
          const typename Loader::InFlight in_flight = ahead;
          const i64 next_row = row + num_warps;  // past the last row: this row again, unused
""",
        """      int pending = 0;  // rows selected, not yet finished (warp-uniform)
      i64 batch_first = pool_row;
      u32 held_bound = 0xffffffffu;
      i64 chunk_end = pool_row + kChunk < num_rows ? pool_row + kChunk : num_rows;
      i64 next_chunk = pool_row < num_rows ? pool_claim(lane) * kChunk : num_rows;
      for (i64 row = pool_row;;) {
        const bool has_row = row < num_rows;
        if (has_row) {
          const typename Loader::InFlight in_flight = ahead;
          const i64 next_row = row + 1 < chunk_end ? row + 1 : next_chunk;  // past the last row: unused
""",
    ),
    (
        """        if (pending == kBatch || (!has_row && pending > 0)) {
          finish_rows_bound<DT, E, G, KG, K>(pending, batch_first, num_warps, held_bound, lane, has_bias,
                                             warp_bias, parked, stage_key, stage_id, stage_p, scores,
                                             row_stride, bias, bias_dtype, out_ids, out_weights, out);
          pending = 0;
          batch_first = row + num_warps;
        }
        if (!has_row) break;
      }
""",
        """        const bool batch_done = pending == kBatch || row + 1 == chunk_end;
        if ((has_row && batch_done) || (!has_row && pending > 0)) {
          finish_rows_bound<DT, E, G, KG, K>(pending, batch_first, 1, held_bound, lane, has_bias,
                                             warp_bias, parked, stage_key, stage_id, stage_p, scores,
                                             row_stride, bias, bias_dtype, out_ids, out_weights, out);
          pending = 0;
          batch_first = row + 1;
        }
        if (!has_row) break;
        if (row + 1 < chunk_end) {
          ++row;
        } else {
          row = next_chunk;
          batch_first = row;
          chunk_end = row + kChunk < num_rows ? row + kChunk : num_rows;
          next_chunk = row < num_rows ? pool_claim(lane) * kChunk : num_rows;
        }
      }
""",
    ),
    # warp kernel: the throughput (and latency) loop; the latency kernel keeps its stride
    (
        "      for (i64 row = first_warp; row < num_rows; row += num_warps) {\n"
        "        // ---- step 1: probabilities (x is overwritten by p) ----\n",
        """      constexpr i64 kPoolRows = 4 * MOEGATE_POOL_SCALE;
      i64 chunk_end = 0;
      i64 next_chunk = 0;
      i64 start = first_warp;
      if constexpr (PLAN != kPlanLatency) {
        start = pool_claim(lane) * kPoolRows;
        chunk_end = start + kPoolRows;
        next_chunk = start < num_rows ? pool_claim(lane) * kPoolRows : num_rows;
      }
      const auto advance = [&](i64 r) -> i64 {
        if constexpr (PLAN == kPlanLatency) {
          return r + num_warps;
        } else {
          if (r + 1 < chunk_end) return r + 1;
          const i64 n = next_chunk;
          chunk_end = n + kPoolRows;
          next_chunk = n < num_rows ? pool_claim(lane) * kPoolRows : num_rows;
          return n;
        }
      };
      for (i64 row = start; row < num_rows; row = advance(row)) {
        // ---- step 1: probabilities (x is overwritten by p) ----
""",
    ),
    (
        """  if constexpr (PLAN == kPlanLatency || C >= 16) {
    route_rows(Layout<kEitherLoads>());""",
        None,  # checked below: the warp kernel's dispatch of its layouts, followed by the pool's leave
    ),
    # segment kernel: its loop over the warp's rows, whole segments' worth of rows a chunk
    (
        """    typename Loader::InFlight ahead;
    if constexpr (kLoadAhead) {
      if (warp_first_row < num_rows) issue_row(warp_first_row, ahead);
    } else {
      (void)ahead;
    }
""",
        """    typename Loader::InFlight ahead;
    constexpr i64 kRowsPerWarp = kWarpSize / L;
    constexpr i64 kPoolRows = (kRowsPerWarp >= 8 ? kRowsPerWarp : 8) * MOEGATE_POOL_SCALE;
    i64 start = pool_claim(lane) * kPoolRows;
    i64 chunk_end = start + kPoolRows;
    i64 next_chunk = start < num_rows ? pool_claim(lane) * kPoolRows : num_rows;
    const auto peek = [&](i64 f) -> i64 {
      return f + kRowsPerWarp < chunk_end ? f + kRowsPerWarp : next_chunk;
    };
    (void)warp_first_row;
    (void)num_segments;
    const auto advance = [&](i64 f) -> i64 {
      if (f + kRowsPerWarp < chunk_end) return f + kRowsPerWarp;
      const i64 n = next_chunk;
      chunk_end = n + kPoolRows;
      next_chunk = n < num_rows ? pool_claim(lane) * kPoolRows : num_rows;
      return n;
    };
    if constexpr (kLoadAhead) {
      if (start < num_rows) issue_row(start, ahead);
    } else {
      (void)ahead;
    }
""",
    ),
    (
        "    for (i64 first = warp_first_row; first < num_rows; first += num_segments) {  // warp-uniform\n",
        "    for (i64 first = start; first < num_rows; first = advance(first)) {  // warp-uniform\n",
    ),
    (
        "        if (first + num_segments < num_rows) issue_row(first + num_segments, ahead);\n",
        "        if (peek(first) < num_rows) issue_row(peek(first), ahead);\n",
    ),
    (
        """  if (vec) {
    route_rows(Layout<kVectorLoads>());
  } else {
    route_rows(Layout<kScalarLoads>());
  }
}

// ======================================================================================================
// Row-per-thread kernel""",
        """  if (vec) {
    route_rows(Layout<kVectorLoads>());
  } else {
    route_rows(Layout<kScalarLoads>());
  }
  pool_leave(lane);
}

// ======================================================================================================
// Row-per-thread kernel""",
    ),
]


# --defer: (old, new) in the pool's text; the next chunk is a ticket (lane 0's chunk index) taken where read
DEFERRED = [
    (
        "          const i64 next_row = row + 1 < chunk_end ? row + 1 : next_chunk;"
        "  // past the last row: unused\n",
        "          i64 next_row = row + 1;  // past the last row: unused\n"
        "          if (row + 1 >= chunk_end) next_row = pool_take(next_chunk) * kChunk;  // warp-uniform\n",
    ),
    ("          row = next_chunk;\n", "          row = pool_take(next_chunk) * kChunk;\n"),
    ("          const i64 n = next_chunk;\n", "          const i64 n = pool_take(next_chunk) * kPoolRows;\n"),
    (
        "      return f + kRowsPerWarp < chunk_end ? f + kRowsPerWarp : next_chunk;\n",
        "      if (f + kRowsPerWarp < chunk_end) return f + kRowsPerWarp;\n"
        "      return pool_take(next_chunk) * kPoolRows;\n",
    ),
    ("      const i64 n = next_chunk;\n", "      const i64 n = pool_take(next_chunk) * kPoolRows;\n"),
]
_NEXT_CLAIM = re.compile(
    r"next_chunk = (\w+) < num_rows \? pool_claim(_group)?\((?:lane, num_rows, k\w+|lane)\) \* (k\w+)"
    r" : num_rows;"
)


def _defer(text: str) -> str:
    """The pool's `text` with every next chunk claimed as a ticket and broadcast where read (--defer)."""
    for old, new in DEFERRED:
        if text.count(old) != 1:
            raise ValueError(f"pool text: {text.count(old)} copies of {old.strip()[:60]!r}, need 1")
        text = text.replace(old, new)
    text, n = _NEXT_CLAIM.subn(
        lambda m: (
            f"next_chunk = {m[1]} < num_rows ? pool_ticket{m[2] or ''}(lane, num_rows, {m[3]}) : "
            f"(num_rows + {m[3]} - 1) / {m[3]};"
        ),
        text,
    )
    if n != 6:
        raise ValueError(f"pool text: {n} claims of a next chunk, need 6")
    return text


def pool_source(text: str, scale: int = 1, groups: int = 0, defer: bool = False) -> str:
    """route.cu `text` with the grid's row pool in the looping warp and segment kernels (module docstring),
    its chunks `scale` times the rows named there; `groups` > 0: a pool per group of blocks, that many groups
    (--groups); `defer`: the next chunk's claim broadcast only where it is read (--defer). ValueError where a
    piece it replaces is not in the text exactly once, for a scale below 1 or a negative groups."""
    if scale < 1:
        raise ValueError(f"scale={scale}, need >= 1")
    if groups < 0:
        raise ValueError(f"groups={groups}, need >= 0 (0: one pool for the grid)")
    out = text
    replacements = REPLACEMENTS
    if groups:
        replacements = [(old, _grouped(new)) for old, new in REPLACEMENTS]
    for old, new in replacements:
        if out.count(old) != 1:
            raise ValueError(f"route.cu text: {out.count(old)} copies of {old[:60]!r}..., need 1")
        if new is not None:
            out = out.replace(old, new)
    # the warp kernel's layouts, then the pool's leave (not in the latency kernel, which does not claim)
    end = out.index("route_rows(Layout<kEitherLoads>());")
    close = out.index("\n}\n", end)
    out = out[:close] + "\n  if constexpr (PLAN != kPlanLatency) pool_leave(lane);" + out[close:]
    if defer:
        out = _defer(out)
    out = out.replace("#define MOEGATE_POOL_SCALE 1 ", f"#define MOEGATE_POOL_SCALE {scale} ", 1)
    return out.replace("#define MOEGATE_POOL_GROUPS 132", f"#define MOEGATE_POOL_GROUPS {groups}", 1)


def _grouped(new: str | None) -> str | None:
    """A replacement of REPLACEMENTS with the group helpers and claims in place of the grid's."""
    if new is None:
        return None
    new = new.replace(POOL_HELPERS, GROUP_HELPERS)
    for chunk in ("kChunk", "kPoolRows"):
        grouped = f"pool_claim_group(lane, num_rows, {chunk}) * {chunk}"
        new = new.replace(f"pool_claim(lane) * {chunk}", grouped)
    return new


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=REPO / "optimized" / "kernels" / "route.cu")
    parser.add_argument("--scale", type=int, default=1, help="chunks this many times the default rows")
    parser.add_argument("--groups", type=int, default=0, help="a pool per group of blocks, this many groups")
    parser.add_argument("--defer", action="store_true", help="broadcast a claimed chunk where it is read")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(pool_source(args.source.read_text(), args.scale, args.groups, args.defer))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
