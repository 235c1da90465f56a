"""Where a large batch's time goes between the SMs: every warp of the dispatch's kernel on a timeline (GPU
machine; docs/perf.md, session 25).

    python tools/block_timeline.py [--preset deepseek-v3 ...] [--rows 65536,262144] [--calls 4] [--png DIR]
        [--dump DIR]
    python tools/block_timeline.py --read DIR/records_PRESET_T.npz --resident N   # no GPU

The bench's rows at T = 65536 cost more per row than at 262144: fitted through the two, every looping
kernel's time has a constant part of 3.6 to 8 µs (DeepSeek-V3 bf16: 38.9 = 8.0 + 65536 x 0.472 ns). This
tool says where such a constant sits. It compiles route.cu with a stamp in the warp and segment kernels
(`stamped_source`: an object made at the kernel's entry whose destructor runs at its exit), so that lane 0
of each warp records %globaltimer at entry and at exit, its SM (%smid), its block and warp, in the slot of
its launch (%gridid's low bits); the stamped kernel declares the unstamped one's resident blocks, so that
ptxas keeps its occupancy. For each preset and T it captures `--calls` launches of the dispatch's plan
over distinct input sets in one CUDA graph (as `moegate bench` times them), replays it, and prints per
launch (`summarize`):

- span: the first warp's entry to the last warp's exit; gap: from the previous launch's last exit;
- ramp: from the first entry until every SM has a warp;
- drain: from the first SM's last exit (an SM out of work) to the last exit;
- fill: the warps' summed residence over (resident warp slots x span), the slots being what the driver
  lets reside of the kernel (1.0: every slot busy the whole span);
- per-SM spread: the SMs' last exits, their spread (max - min) and standard deviation;
- blocks (`block_shares`, session 26): the blocks' mean end by blockIdx // SMs (in a one-wave grid, the
  block an SM got first, second, ...), the share of a warp's slot its block holds after the warp is done,
  and the blocks' fill. `--dump` keeps every warp record (numpy .npz), `--read` prints both summaries
  from such a file.

It also times the stamped and the unstamped kernel (`moegate bench`'s timer), so that the stamps' own cost
shows, checks their outputs bitwise equal, and with --png draws the first launch of each row (one line per
SM, one bar per block; matplotlib).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import re
import statistics
from collections.abc import Sequence
from pathlib import Path

KERNEL_ANCHOR = "    float* __restrict__ out_weights) {\n"
STAMPED_KERNELS = ("route_warp_kernel(", "route_segment_kernel(")
SLOTS = 8  # launches recorded: a launch writes the slot of its %gridid's low bits (consecutive ids differ)
SLOT_WARPS = 1 << 17  # warp records a launch: 8 warps x 16384 blocks (T = 2^20 takes 64 blocks per SM)
STAMP_HEADER = f"""
// tools/block_timeline.py: lane 0 of each warp records its entry and exit (%globaltimer, ns), its SM, block,
// warp and launch (%gridid's low 16 bits) in record (gridid % {SLOTS}, warp of the grid). Stores only, no
// load and no atomic, and nothing held across the kernel, so that the stamps hardly delay a warp.
__device__ unsigned long long moegate_timeline[{SLOTS} * {SLOT_WARPS} * 3];  // entry, exit, where
__device__ __forceinline__ unsigned long long* moegate_warp_record(unsigned long long& grid) {{
  asm volatile("mov.u64 %0, %%gridid;" : "=l"(grid));
  const unsigned long long warp = (blockIdx.x * (blockDim.x >> 5)) + (threadIdx.x >> 5);
  const unsigned long long slot = grid % {SLOTS}ull;
  return warp < {SLOT_WARPS}ull ? &moegate_timeline[(slot * {SLOT_WARPS}ull + warp) * 3ull] : nullptr;
}}
struct MoegateWarpStamp {{
  __device__ MoegateWarpStamp() {{
    unsigned long long now, grid;
    unsigned sm;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    unsigned long long* record = moegate_warp_record(grid);
    if ((threadIdx.x & 31u) == 0u && record != nullptr) {{
      const unsigned long long tag = ((grid & 0xFFFFull) << 16) | (static_cast<unsigned long long>(sm) << 8);
      record[0] = now;
      record[2] = ((tag | (threadIdx.x >> 5)) << 32) | blockIdx.x;
    }}
  }}
  __device__ ~MoegateWarpStamp() {{
    unsigned long long now, grid;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    unsigned long long* record = moegate_warp_record(grid);
    if ((threadIdx.x & 31u) == 0u && record != nullptr) record[1] = now;
  }}
}};
"""
STAMP_LINE = "  MoegateWarpStamp moegate_warp_stamp;\n"


LAUNCH_BOUNDS = re.compile(
    r"__launch_bounds__\((?P<threads>[^,()]+), (?P<blocks>\w+<[^<>]*>|\w+)\) "
    r"(?P<kernel>route_(?:warp|segment)_kernel)\("
)


def stamped_source(text: str, min_blocks: int | None = None) -> str:
    """route.cu `text` with the warp stamp (STAMP_HEADER, before `namespace moegate`, so that its globals
    keep their plain names) made first thing in route_warp_kernel and route_segment_kernel. min_blocks:
    where given, both kernels declare that many resident blocks (__launch_bounds__' second argument), so
    that ptxas holds a stamped kernel to the registers of the unstamped one's occupancy (unasked, it took
    79 registers for Qwen3-MoE's 64). ValueError where the text does not have one definition of each kernel
    with its launch bounds and a signature that ends in KERNEL_ANCHOR."""
    out = text
    for kernel in STAMPED_KERNELS:
        if out.count(kernel) != 1:
            raise ValueError(f"route.cu text: {out.count(kernel)} definitions of {kernel[:-1]}, need 1")
        start = out.index(kernel)
        anchor = out.find(KERNEL_ANCHOR, start)
        if anchor < 0 or out.find("{", start) != anchor + len(KERNEL_ANCHOR) - 2:
            raise ValueError(f"route.cu text: {kernel[:-1]}'s signature does not end in {KERNEL_ANCHOR!r}")
        at = anchor + len(KERNEL_ANCHOR)
        out = out[:at] + STAMP_LINE + out[at:]
    bounds = list(LAUNCH_BOUNDS.finditer(out))
    if sorted(m["kernel"] + "(" for m in bounds) != sorted(STAMPED_KERNELS):
        raise ValueError("route.cu text: the stamped kernels' __launch_bounds__(threads, blocks) not found")
    if min_blocks is not None:
        if min_blocks < 1:
            raise ValueError(f"min_blocks={min_blocks}, need >= 1")
        for m in reversed(bounds):
            out = out[: m.start("blocks")] + str(min_blocks) + out[m.end("blocks") :]
    namespace = out.index("namespace moegate {")
    return out[:namespace] + STAMP_HEADER + "\n" + out[namespace:]


@dataclasses.dataclass(frozen=True)
class WarpRecord:
    """One warp's stay: entry and exit in ns (%globaltimer), its launch (%gridid's low 16 bits), SM, block
    and warp."""

    entry: int
    exit: int
    grid: int
    sm: int
    block: int
    warp: int


def parse_records(rows: Sequence[tuple[int, int, int, int]]) -> list[WarpRecord]:
    """WarpRecords from the stamps' records that a warp entered: (slot, entry, exit, grid << 48 | SM << 40 |
    warp << 32 | block) each, grid being the low 16 bits of the launch's %gridid. ValueError for a record
    without an exit (0: a warp that did not finish, since the records are read after the launches) and for
    a slot that holds records of two launches (their %gridid alike modulo SLOTS: one overwrote the other)."""
    records = []
    grid_of_slot: dict[int, int] = {}
    for slot, entry, leave, where in rows:
        where &= (1 << 64) - 1
        grid = where >> 48
        if leave == 0:
            raise ValueError(f"slot {slot}, block {where & 0xFFFFFFFF}: an entry without an exit")
        if grid_of_slot.setdefault(slot, grid) != grid:
            raise ValueError(f"slot {slot}: records of launches {grid_of_slot[slot]} and {grid}")
        sm, warp, block = (where >> 40) & 0xFF, (where >> 32) & 0xFF, where & 0xFFFFFFFF
        records.append(WarpRecord(entry, leave, grid, sm, block, warp))
    return records


@dataclasses.dataclass(frozen=True)
class LaunchSummary:
    """One launch's timeline, times in µs (`summarize`)."""

    grid: int
    blocks: int
    sms: int
    span_us: float
    gap_us: float | None  # from the previous launch's last exit to this one's first entry
    ramp_us: float  # first entry until every SM that ran a warp has one
    drain_us: float  # the first SM's last exit to the last exit
    fill: float  # summed warp residence / (SMs x resident warps per SM x span)
    last_exit_spread_us: float  # max - min of the SMs' last exits
    last_exit_sd_us: float


def summarize(records: Sequence[WarpRecord], resident_warps_per_sm: int) -> list[LaunchSummary]:
    """Per launch, in the order they ran (by first entry): span, gap from the previous one, ramp, drain,
    fill and the spread of the SMs' last exits. resident_warps_per_sm: the warp slots of an SM for this
    kernel (resident blocks x warps per block), the denominator of `fill`."""
    if resident_warps_per_sm < 1:
        raise ValueError(f"resident_warps_per_sm={resident_warps_per_sm}, need >= 1")
    by_grid: dict[int, list[WarpRecord]] = {}
    for r in records:
        if r.exit < r.entry:
            raise ValueError(f"{r}: exit before entry")
        by_grid.setdefault(r.grid, []).append(r)
    launches = sorted(by_grid.values(), key=lambda rs: min(r.entry for r in rs))
    out = []
    previous_end = None
    for rs in launches:
        start = min(r.entry for r in rs)
        end = max(r.exit for r in rs)
        first_on_sm: dict[int, int] = {}
        last_on_sm: dict[int, int] = {}
        for r in rs:
            first_on_sm[r.sm] = min(first_on_sm.get(r.sm, r.entry), r.entry)
            last_on_sm[r.sm] = max(last_on_sm.get(r.sm, r.exit), r.exit)
        span = end - start
        lasts = list(last_on_sm.values())
        busy = sum(r.exit - r.entry for r in rs)
        out.append(
            LaunchSummary(
                grid=rs[0].grid,
                blocks=len({r.block for r in rs}),
                sms=len(last_on_sm),
                span_us=span / 1e3,
                gap_us=None if previous_end is None else (start - previous_end) / 1e3,
                ramp_us=(max(first_on_sm.values()) - start) / 1e3,
                drain_us=(end - min(lasts)) / 1e3,
                fill=busy / (len(last_on_sm) * resident_warps_per_sm * span) if span else 0.0,
                last_exit_spread_us=(max(lasts) - min(lasts)) / 1e3,
                last_exit_sd_us=statistics.pstdev(lasts) / 1e3,
            )
        )
        previous_end = end
    return out


def plot_launch(records: Sequence[WarpRecord], title: str, path: Path) -> None:
    """One launch as a PNG: a row per SM, a bar per block from its first warp's entry to its last warp's
    exit, blocks of one SM stacked by the order they started (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks: dict[int, tuple[int, int, int]] = {}
    for r in records:
        entry, leave, sm = blocks.get(r.block, (r.entry, r.exit, r.sm))
        blocks[r.block] = (min(entry, r.entry), max(leave, r.exit), sm)
    t0 = min(b[0] for b in blocks.values())
    per_sm: dict[int, list[tuple[int, int]]] = {}
    for entry, leave, sm in blocks.values():
        per_sm.setdefault(sm, []).append((entry, leave))
    fig, ax = plt.subplots(figsize=(11, 6))
    for sm, spans in per_sm.items():
        spans.sort()
        ends: list[int] = []  # stack: a block takes the lowest lane whose last block has ended
        for entry, leave in spans:
            lane = next((i for i, e in enumerate(ends) if e <= entry), len(ends))
            if lane == len(ends):
                ends.append(leave)
            else:
                ends[lane] = leave
            y = sm + 0.9 * lane / max(4, len(ends) + 1)
            ax.plot([(entry - t0) / 1e3, (leave - t0) / 1e3], [y, y], linewidth=0.6, color=f"C{lane % 10}")
    ax.set_xlabel("µs from the first warp's entry")
    ax.set_ylabel("SM")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dump_records(records: Sequence[WarpRecord], path: Path) -> None:
    """`records` as one int64 array per WarpRecord field (entry, exit, grid, sm, block, warp), in a numpy .npz
    at `path`, for analyses the summary does not make."""
    import numpy as np

    fields = [f.name for f in dataclasses.fields(WarpRecord)]
    columns = {f: np.array([getattr(r, f) for r in records], dtype=np.int64) for f in fields}
    np.savez_compressed(path, **columns)


def load_records(path: Path) -> list[WarpRecord]:
    """The WarpRecords `dump_records` wrote to `path`."""
    import numpy as np

    fields = [f.name for f in dataclasses.fields(WarpRecord)]
    with np.load(path) as data:
        columns = [data[f].tolist() for f in fields]
    return [WarpRecord(*values) for values in zip(*columns, strict=True)]


@dataclasses.dataclass(frozen=True)
class BlockShares:
    """One launch's blocks (`block_shares`), times in µs from its first warp's entry."""

    grid: int
    wave_ends_us: tuple[float, ...]  # the mean last exit of the blocks with blockIdx // SMs = 0, 1, ...
    held: float  # of the warps' time in resident blocks, the share after the warp's own exit
    block_fill: float  # the blocks' summed residence / (SMs x resident blocks per SM x span)


def block_shares(
    records: Sequence[WarpRecord], sm_count: int, resident_blocks_per_sm: int
) -> list[BlockShares]:
    """Per launch, in the order they ran: when its blocks end by blockIdx // sm_count (in a grid of one wave
    of resident blocks, the block an SM was given first, second, ...: whether the blocks of one SM end
    apart), how much of a warp's slot its block holds after the warp is done (a block's slots are freed
    only when its last warp exits), and the blocks' fill. A block is its warps' first entry to last exit."""
    if sm_count < 1 or resident_blocks_per_sm < 1:
        raise ValueError(f"sm_count={sm_count}, resident_blocks_per_sm={resident_blocks_per_sm}, need >= 1")
    by_grid: dict[int, list[WarpRecord]] = {}
    for r in records:
        by_grid.setdefault(r.grid, []).append(r)
    out = []
    for rs in sorted(by_grid.values(), key=lambda rs: min(r.entry for r in rs)):
        start = min(r.entry for r in rs)
        span = max(r.exit for r in rs) - start
        blocks: dict[int, tuple[int, int]] = {}
        for r in rs:
            entry, leave = blocks.get(r.block, (r.entry, r.exit))
            blocks[r.block] = (min(entry, r.entry), max(leave, r.exit))
        waves: dict[int, list[int]] = {}
        for block, (_, leave) in blocks.items():
            waves.setdefault(block // sm_count, []).append(leave - start)
        resident = sum(blocks[r.block][1] - r.entry for r in rs)
        after = sum(blocks[r.block][1] - r.exit for r in rs)
        busy = sum(leave - entry for entry, leave in blocks.values())
        out.append(
            BlockShares(
                grid=rs[0].grid,
                wave_ends_us=tuple(statistics.fmean(waves[w]) / 1e3 for w in sorted(waves)),
                held=after / resident if resident else 0.0,
                block_fill=busy / (sm_count * resident_blocks_per_sm * span) if span else 0.0,
            )
        )
    return out


def print_launches(records: Sequence[WarpRecord], resident_warps_per_sm: int) -> None:
    """One line per launch of `summarize`."""
    for x in summarize(records, resident_warps_per_sm):
        gap = "" if x.gap_us is None else f"gap {x.gap_us:6.2f}  "
        print(
            f"  launch: {x.blocks} blocks on {x.sms} SMs, span {x.span_us:7.2f} us  {gap}"
            f"ramp {x.ramp_us:5.2f}  drain {x.drain_us:5.2f}  fill {x.fill:.3f}  "
            f"SMs' last exits: spread {x.last_exit_spread_us:5.2f}, sd {x.last_exit_sd_us:5.2f}",
            flush=True,
        )


def print_block_shares(records: Sequence[WarpRecord], sm_count: int, resident_blocks_per_sm: int) -> None:
    """One line per launch of `block_shares`."""
    for x in block_shares(records, sm_count, resident_blocks_per_sm):
        ends = " ".join(f"{e:.1f}" for e in x.wave_ends_us[:8])
        more = f" (+{len(x.wave_ends_us) - 8} waves)" if len(x.wave_ends_us) > 8 else ""
        print(
            f"  blocks: held after exit {x.held:.3f}, block fill {x.block_fill:.3f}; "
            f"mean end by blockIdx // SMs (us): {ends}{more}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", action="append", default=None)
    parser.add_argument("--rows", default="65536,262144")
    parser.add_argument("--calls", type=int, default=4, help="launches in the graph (distinct input sets)")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--png", type=Path, default=None, help="a folder for one timeline PNG per row")
    parser.add_argument(
        "--dump", type=Path, default=None, help="a folder for every launch's warp records, one .npz per row"
    )
    parser.add_argument(
        "--read", type=Path, default=None, help="summarize a --dump file instead (no GPU; with --resident)"
    )
    parser.add_argument("--resident", type=int, default=0, help="with --read: the kernel's resident blocks")
    parser.add_argument("--sms", type=int, default=132, help="with --read: the card's SMs (H200: 132)")
    parser.add_argument("--warps", type=int, default=8, help="with --read: warps per block")
    args = parser.parse_args()
    if args.read is not None:
        if args.resident < 1:
            parser.error("--read needs --resident N (the kernel's resident blocks per SM: its run's log)")
        records = load_records(args.read)
        print_launches(records, args.resident * args.warps)
        print_block_shares(records, args.sms, args.resident)
        return
    if not 1 <= args.calls <= SLOTS:
        parser.error(f"--calls {args.calls}: need 1 to {SLOTS} (the launches the stamps record)")

    import cupy
    import torch
    from source_probe import use_source

    from moegate.optimized import build, dispatch_plan
    from moegate.optimized.launch import resident_blocks_per_sm
    from moegate.optimized.route import launch
    from moegate.properties.benchmark_timers import CudaTimer
    from moegate.reference import get_preset, preset_has_bias

    dtype = getattr(torch, args.dtype)
    presets = args.preset or ["deepseek-v3", "qwen3-moe"]
    rows = [int(r) for r in args.rows.split(",")]
    device = torch.device("cuda")
    sm_count = torch.cuda.get_device_properties(0).multi_processor_count
    timer = CudaTimer(device)
    plain = build.kernel_source()
    for folder in (args.png, args.dump):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    print(torch.cuda.get_device_name(0), "torch", torch.__version__, flush=True)
    torch.manual_seed(0)
    for p in presets:
        config = get_preset(p)
        plan = dispatch_plan(config, dtype)
        E, W = config.num_experts, config.output_width
        bias = torch.randn(E, device=device) * 0.1 if preset_has_bias(p) else None
        for t in rows:
            selection = plan.selection_plan(t, sm_count)
            name = plan.kernel_name(selection)
            sets = [torch.randn(t, E, device=device).to(dtype) for _ in range(args.calls)]
            outs = [
                (torch.empty(t, W, dtype=torch.int32, device=device), torch.empty(t, W, device=device))
                for _ in range(args.calls)
            ]

            def make_set(index: int, n: int = t, e: int = E):
                del index
                return (torch.randn(n, e, device=device).to(dtype),)

            def call(scores, plan=plan, config=config, n=t, w=W, bias=bias) -> None:
                ids = torch.empty(n, w, dtype=torch.int32, device=device)
                weights = torch.empty(n, w, device=device)
                launch(plan, scores, bias, config, ids, weights)

            # The kernel as it ships: its time, its resident blocks, the outputs the stamped one must give.
            use_source(plain, [name])
            plain_us = timer.time(call, make_set, t * E * dtype.itemsize).seconds * 1e6
            resident = resident_blocks_per_sm(build.get_kernel(name).ptr, plan.block, plan.shared_mem_bytes)
            for s, o in zip(sets, outs, strict=True):
                launch(plan, s, bias, config, *o)
            want = [(o[0].clone(), o[1].clone()) for o in outs]
            for o in outs:
                o[0].fill_(-7)
                o[1].fill_(float("nan"))
            # Stamped, held to the same resident blocks.
            use_source(stamped_source(plain, resident), [name])
            us = timer.time(call, make_set, t * E * dtype.itemsize).seconds * 1e6
            stamped_resident = resident_blocks_per_sm(
                build.get_kernel(name).ptr, plan.block, plan.shared_mem_bytes
            )
            module, _ = build.load_module()
            buffer = int(module.get_global_var("moegate_timeline"))
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for s, o in zip(sets, outs, strict=True):
                    launch(plan, s, bias, config, *o)
            torch.cuda.synchronize()
            cupy.cuda.runtime.memset(buffer, 0, SLOTS * SLOT_WARPS * 24)  # the timer's launches wrote too
            torch.cuda.synchronize()
            graph.replay()
            torch.cuda.synchronize()
            same = all(
                torch.equal(o[0], w[0]) and torch.equal(o[1], w[1]) for o, w in zip(outs, want, strict=True)
            )
            words = torch.zeros(SLOTS * SLOT_WARPS, 3, dtype=torch.int64)
            cupy.cuda.runtime.memcpy(words.data_ptr(), buffer, words.numel() * 8, 2)
            entered = (words[:, 0] != 0).nonzero().flatten()
            read = zip((entered // SLOT_WARPS).tolist(), *words[entered].T.tolist(), strict=True)
            grid, block = plan.geometry(t, sm_count, selection, resident)
            if grid * block // 32 > SLOT_WARPS:
                print(f"{p} T={t}: {grid * block // 32} warps a launch, over {SLOT_WARPS}; skipped")
                continue
            try:
                records = parse_records(list(read))
            except ValueError as exc:  # two launches' ids alike modulo SLOTS: their records are mixed
                print(f"{p} T={t}: the records are not usable ({exc}); skipped", flush=True)
                continue
            warps = resident * plan.block // 32
            entries = sorted({r.entry for r in records})
            step = min((b - a for a, b in itertools.pairwise(entries)), default=0)
            print(
                f"{p} T={t} plan {selection} ({name}): grid {grid} x {block}, {resident} resident blocks per "
                f"SM ({stamped_resident} stamped); {plain_us:.2f} us, stamped {us:.2f} us "
                f"({us / plain_us:.3f}x){'' if same else '; the stamped kernel DIFFERS'}; "
                f"{len(records)} warp records, timer step {step} ns",
                flush=True,
            )
            print_launches(records, warps)
            if args.png is not None:
                first = min(records, key=lambda r: r.entry).grid
                path = args.png / f"timeline_{p}_{t}.png"
                plot_launch([r for r in records if r.grid == first], f"{p} {args.dtype}, T = {t}", path)
                print(f"  wrote {path}", flush=True)
            print_block_shares(records, sm_count, resident)
            if args.dump is not None:
                path = args.dump / f"records_{p}_{t}.npz"
                dump_records(records, path)
                print(f"  wrote {path}", flush=True)


if __name__ == "__main__":
    main()
