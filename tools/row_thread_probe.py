"""Time a row per thread against the dispatch's kernel (DeepSeek-V3 and the sigmoid rows without groups, bf16
logits), and check it bitwise.

    python tools/row_thread_probe.py [--preset deepseek-v3] [--rows 4096,65536,262144]
        [--variants tile2,pair2] [--rounds 3] [--ncu]

`tools/row_thread_probe.cu` (its header says what it does and why) is appended to route.cu and compiled with
route.cu's options, beside the dispatch's kernels for `--preset` in bf16 (every plan: they are bitwise the
same). For each T the probe first checks its output against the dispatch's, bitwise, on random rows (a float32
bias 0.1 N(0, 1), a bf16 one, none), tie-heavy rows, and rows with NaN and infinite logits, outputs poisoned
before each launch; it prints how many rows it routed again exactly (the count its kernel keeps). Then it
times the dispatch's launch and each variant (`--variants`: tileW, the whole tile of 32 rows in shared
memory, streamSxW, the groups streamed through S slots, pairW, a row per pair of threads, for DeepSeek-V3, and
flatW or keepW for the sigmoid presets without groups; W warps a block)
with `moegate bench`'s timer (CUDA graph over input sets rotated past L2, median of 5 replays), in `--rounds`
alternating passes, and prints each against the dispatch's time and against the copy floor measured in the
same run. `--ncu` only launches each kernel once at the first T, for Nsight Compute (tools/gpu_session28.sh).
A GPU tool: the CPU tests check its arithmetic and build its source (tests/test_row_thread_probe.py).
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

import torch

PROBE_SOURCE = Path(__file__).resolve().parent / "row_thread_probe.cu"
SHAPE = (256, 8, 4, 8)  # E, G, Kg, K of DeepSeek-V3: route_row_thread_probe's and route_row_pair_probe's
# The presets route_row_flat_probe takes (sigmoid, a bias, no groups): E and K.
FLAT_SHAPES = {"moonlight-16b-a3b": (64, 6), "glm-4.5-air": (128, 8), "glm-4.5": (160, 8)}
THREAD_CANDIDATES = 24  # kRowThreadCandidates
PAIR_CANDIDATES = 16  # route_row_pair_probe's kCandidates


VARIANT = re.compile(r"^(tile|pair|flat|keep|stream([2-5])x)([1-8])$")
FLAT = -2  # parse_variant's kSlots of the flat kernel
KEEP = -3  # the flat kernel with its keys kept in registers (kKeep)


def parse_variant(variant: str) -> tuple[int, int]:
    """The variant "tileW" (the tile), "streamSxW" (S slots), "pairW" (a row per pair of threads), "flatW" (no
    groups) or "keepW" (no groups, the keys kept in registers) with W warps a block, as (kSlots, W): kSlots 0
    for the tile, -1 for the pairs, FLAT or KEEP for the flat kernel; ValueError otherwise."""
    match = VARIANT.match(variant)
    if match is None:
        raise ValueError(
            f"variant={variant!r}, but a variant is tileW, pairW, flatW, keepW or streamSxW (2 <= S <= 5 "
            f"slots, 1 <= W <= 8 warps)"
        )
    kind = match.group(1)
    named = {"pair": -1, "flat": FLAT, "keep": KEEP}
    slots = named[kind] if kind in named else int(match.group(2) or 0)
    return slots, int(match.group(3))


def check_variants(preset: str, variants: list[str]) -> None:
    """ValueError unless each variant serves `preset`: flatW the FLAT_SHAPES presets, the rest DeepSeek-V3."""
    for v in variants:
        flat = parse_variant(v)[0] in (FLAT, KEEP)
        if flat != (preset in FLAT_SHAPES) or (not flat and preset != "deepseek-v3"):
            raise ValueError(
                f"variant={v!r} with preset={preset!r}, but flatW and keepW serve {sorted(FLAT_SHAPES)} and "
                f"the other variants deepseek-v3"
            )


def rows_per_warp(variant: str) -> int:
    """Rows a warp's tile holds: 16 for the pairs, 32 otherwise."""
    return 16 if parse_variant(variant)[0] == -1 else 32


def probe_name(variant: str, preset: str = "deepseek-v3") -> str:
    """The name expression of the probe kernel `variant` ("tile2": the tile, 2 warps a block) for `preset`."""
    slots, warps = parse_variant(variant)
    if slots in (FLAT, KEEP):
        e, k = FLAT_SHAPES[preset]
        return f"moegate::route_row_flat_probe<{e}, {k}, {warps}, {str(slots == KEEP).lower()}>"
    e, g, kg, k = SHAPE
    if slots < 0:
        return f"moegate::route_row_pair_probe<{e}, {g}, {kg}, {k}, {warps}, {PAIR_CANDIDATES}>"
    return f"moegate::route_row_thread_probe<{e}, {g}, {kg}, {k}, {warps}, {slots}>"


def probe_source(route_text: str) -> str:
    """route.cu's text with the probe appended (the probe reopens namespace moegate)."""
    return route_text.rstrip("\n") + "\n\n" + PROBE_SOURCE.read_text()


def shared_bytes(variant: str, preset: str = "deepseek-v3") -> int:
    """The probe's dynamic shared memory for `variant`: RowThreadLayout's words a warp (the tile or the
    slots, the lists, the shifted bias), or route_row_pair_probe's (the block's shifted bias, then each
    warp's tile of 16 rows and lists), times 4."""
    slots, warps = parse_variant(variant)
    if slots in (FLAT, KEEP):  # the block's shifted bias and bias, then each warp's tile and lists
        e = FLAT_SHAPES[preset][0]
        return 4 * (2 * e + warps * (32 * (e // 2 + 4) + (THREAD_CANDIDATES + 8) * 32))
    e, g, _, _ = SHAPE
    shift = g * (e // g + 4)  # the shifted bias: a warp's, or the block's for the pairs
    if slots < 0:  # the block's shifted bias and bias, then each warp's tile and lists
        return 4 * (shift + e + warps * (16 * (e // 2 + 4) + (PAIR_CANDIDATES + 8) * 32))
    data = slots * 32 * (e // g // 2 + 4) if slots > 0 else 32 * (e // 2 + 4)
    return 4 * warps * (data + (THREAD_CANDIDATES + 8) * 32 + shift)


def call_bytes(num_rows: int, e: int, width: int) -> int:
    """Bytes a call must move: bf16 logits and a float32 bias of E experts in, ids and weights out."""
    return num_rows * e * 2 + e * 4 + num_rows * width * 8


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--preset", default="deepseek-v3", help=f"deepseek-v3 or one of {sorted(FLAT_SHAPES)}"
    )
    parser.add_argument("--rows", default="4096,65536,262144")
    parser.add_argument("--variants", default="tile2,pair2,pair4", help="tileW, streamSxW, pairW")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--ncu", action="store_true", help="launch each kernel once at the first T (a profiler)"
    )
    args = parser.parse_args()

    import cupy
    from source_probe import use_source  # tools/, beside this file

    from moegate.optimized import build, dispatch_plan
    from moegate.optimized.dispatch import BIAS_DTYPE_CODES, config_arguments
    from moegate.optimized.launch import launch_route_kernel, resident_blocks_per_sm
    from moegate.optimized.route import launch
    from moegate.properties.benchmark_timers import CudaTimer, measure_cuda_floors
    from moegate.reference import get_preset

    rows = [int(r) for r in args.rows.split(",")]
    variants = args.variants.split(",")
    check_variants(args.preset, variants)
    device = torch.device("cuda")
    config = get_preset(args.preset)
    plan = dispatch_plan(config, torch.bfloat16)
    width = config.output_width
    dispatch_names = sorted(
        {n for n in (plan.name_expression, plan.latency_name_expression, plan.bound_name_expression) if n}
    )
    text = probe_source(build.kernel_source())
    names = dispatch_names + [probe_name(v, args.preset) for v in variants]
    use_source(text, names)  # source_probe's: build compiles this text with only these names
    module, _ = build.load_module()
    counter = module.get_global_var("g_row_thread_unproved")  # the address (a MemoryPointer in some CuPy)
    counter = int(getattr(counter, "ptr", counter))
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    kernels = {}
    smem = {v: shared_bytes(v, args.preset) for v in variants}
    for v in variants:
        kernel = build.get_kernel(probe_name(v, args.preset))
        cupy.cuda.driver.funcSetAttribute(
            kernel.ptr, 8, shared_bytes(v, args.preset)
        )  # MAX_DYNAMIC_SHARED_SIZE_BYTES
        resident = resident_blocks_per_sm(kernel.ptr, 32 * parse_variant(v)[1], shared_bytes(v, args.preset))
        kernels[v] = (kernel, resident)
        print(
            f"probe {v}: {shared_bytes(v, args.preset)} bytes of shared memory, {resident} blocks an SM",
            flush=True,
        )

    def run_probe(
        v: str, scores: torch.Tensor, bias: torch.Tensor | None, ids: torch.Tensor, weights: torch.Tensor
    ) -> None:
        kernel, resident = kernels[v]
        w = parse_variant(v)[1]
        if scores.data_ptr() % 16 or (scores.stride(0) * scores.element_size()) % 16:
            raise ValueError("the probe copies rows 16 bytes at a time: it needs 16-byte-aligned rows")
        t = int(scores.shape[0])
        tiles = (t + rows_per_warp(v) - 1) // rows_per_warp(v)
        grid = max(1, min((tiles + w - 1) // w, sms * max(resident, 1)))
        launch_route_kernel(
            kernel.ptr, grid, 32 * w, smem[v], torch.cuda.current_stream(device).cuda_stream, False,
            scores.data_ptr(), t, int(scores.stride(0)), 0 if bias is None else bias.data_ptr(),
            BIAS_DTYPE_CODES[None if bias is None else bias.dtype], *config_arguments(config), 0,
            ids.data_ptr(), weights.data_ptr(),
        )  # fmt: skip

    def outputs(t: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.full((t, width), -7, dtype=torch.int32, device=device)
        return ids, torch.full((t, width), float("nan"), device=device)

    def unproved() -> int:
        host = torch.zeros(1, dtype=torch.int64)
        torch.cuda.synchronize()
        cupy.cuda.runtime.memcpy(host.data_ptr(), counter, 8, 2)
        cupy.cuda.runtime.memset(counter, 0, 8)
        return int(host[0])

    torch.manual_seed(0)
    e = config.num_experts
    bias32 = torch.randn(e, device=device) * 0.1
    if args.ncu:
        t = rows[0]
        scores = torch.randn(t, e, device=device).bfloat16()
        launch(plan, scores, bias32, config, *outputs(t))
        for v in variants:
            run_probe(v, scores, bias32, *outputs(t))
        torch.cuda.synchronize()
        print(f"ncu: T={t}, the dispatch's kernel and {len(variants)} probes once; unproved {unproved()}")
        return
    floors = measure_cuda_floors(device)
    print(
        torch.cuda.get_device_name(device),
        "torch",
        torch.__version__,
        "cupy",
        cupy.__version__,
        f"copy floor {floors.copy_tbps:.2f} TB/s",
        flush=True,
    )

    all_same = True
    for t in rows:
        wild = torch.randn(t, e, device=device)
        wild[torch.rand(t, e, device=device) < 0.002] = float("nan")
        wild[torch.rand(t, e, device=device) < 0.002] = float("inf")
        wild[torch.rand(t, e, device=device) < 0.002] = float("-inf")
        cases = {
            "random": (torch.randn(t, e, device=device).bfloat16(), bias32),
            "random, bf16 bias": (torch.randn(t, e, device=device).bfloat16(), bias32.bfloat16()),
            "random, no bias": (torch.randn(t, e, device=device).bfloat16(), None),
            "ties": (
                (torch.randint(-2, 3, (t, e), device=device) * 0.5).bfloat16(),
                torch.randint(-1, 2, (e,), device=device) * 0.25,
            ),
            "non-finite": (wild.bfloat16(), bias32),
        }
        unproved()
        for case, (scores, bias) in cases.items():
            want = outputs(t)
            launch(plan, scores, bias, config, *want)
            for v in variants:
                got = outputs(t)
                run_probe(v, scores, bias, *got)
                again = unproved()
                same = torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
                all_same &= same
                rows_differ = int(((got[0] != want[0]).any(1) | (got[1] != want[1]).any(1)).sum())
                print(
                    f"check T={t} {case} {v}: {'bitwise the same' if same else 'DIFFERS'}"
                    f"{'' if same else f' ({rows_differ} rows)'}; routed again exactly {again} of {t} rows",
                    flush=True,
                )

    timer = CudaTimer(device)
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for t in rows:

            def make_set(index: int, n: int = t) -> tuple[torch.Tensor, torch.Tensor]:
                del index
                return torch.randn(n, e, device=device).bfloat16(), bias32

            out = outputs(t)

            def call_main(scores: torch.Tensor, bias: torch.Tensor, out=out) -> None:
                launch(plan, scores, bias, config, *out)

            calls = [("dispatch", call_main)]
            for v in variants:

                def call_probe(scores: torch.Tensor, bias: torch.Tensor, v=v, out=out) -> None:
                    run_probe(v, scores, bias, *out)

                calls.append((v, call_probe))
            for name, call in calls:
                us = timer.time(call, make_set, t * e * 2).seconds * 1e6
                times.setdefault((name, t), []).append(us)
                print(f"  {name} T={t}: {us:.2f} us", flush=True)
    print(f"unproved rows during timing: {unproved()}")
    for t in rows:
        floor = floors.floor_us(call_bytes(t, e, width))
        base = statistics.median(times["dispatch", t])
        cells = []
        for name in ["dispatch", *variants]:
            ts = times[name, t]
            m = statistics.median(ts)
            cells.append(
                f"{name} {m:8.2f} us ({m / base:.3f}x, {m / floor:.2f}x floor; "
                + "/".join(f"{x:.2f}" for x in ts)
                + ")"
            )
        print(f"T={t:>7d} floor {floor:.2f} us  " + "  ".join(cells), flush=True)
    print("every check bitwise the same" if all_same else "SOME CHECK DIFFERS")


if __name__ == "__main__":
    main()
