"""How the grid's cap (blocks per SM) changes a kernel's time at large T (GPU machine; docs/perf.md).

    python tools/grid_probe.py [--preset glm-4.5-air ...] [--rows 65536,262144] [--caps 3,4,6,8]

The kernels loop over rows with a grid stride. Until session 15 the dispatch capped the grid at 8 blocks
of 256 threads per SM (MAX_THREADS_PER_SM), so a kernel whose registers let fewer blocks reside (3 at 80
registers) ran its blocks in waves, the last one partly empty; since, the cap is
KernelPlan.cap_blocks_per_sm of the kernel's resident blocks. For each preset, T and step-5 plan with
a kernel of its own (throughput, bound), this prints the driver's resident blocks per SM for the kernel
and its time (`moegate bench`'s timer: CUDA graph over input sets rotated past L2) with the grid capped at
each of `--caps` blocks per SM (forced: the resident count hidden from the geometry, and the grid held at
the cap, dispatch.LOOP_BLOCK_ROWS off; 0 is the dispatch's own geometry), in alternating rounds;
every cap's output is checked bitwise against the dispatch's own geometry on random rows.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import statistics

import torch

from moegate.optimized import PLAN_BOUND, PLAN_THROUGHPUT, dispatch, dispatch_plan
from moegate.optimized.build import get_kernel
from moegate.optimized.route import launch
from moegate.properties.benchmark_timers import CudaTimer
from moegate.reference import get_preset, preset_has_bias

route_module = importlib.import_module("moegate.optimized.route")


def resident_blocks(function: int, block: int) -> int:
    """cuOccupancyMaxActiveBlocksPerMultiprocessor for a kernel of `block` threads, no dynamic smem."""
    lib = ctypes.CDLL("libcuda.so.1")
    count = ctypes.c_int(0)
    status = lib.cuOccupancyMaxActiveBlocksPerMultiprocessor(
        ctypes.byref(count), ctypes.c_void_p(function), ctypes.c_int(block), ctypes.c_size_t(0)
    )
    return count.value if status == 0 else -status


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", action="append", default=None)
    parser.add_argument("--rows", default="65536,262144")
    parser.add_argument("--caps", default="3,4,6,8")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    presets = args.preset or ["glm-4.5-air", "moonlight-16b-a3b", "qwen3-next-80b-a3b", "deepseek-v3"]
    rows = [int(r) for r in args.rows.split(",")]
    caps = [int(c) for c in args.caps.split(",")]
    dtype = torch.bfloat16
    device = torch.device("cuda")
    timer = CudaTimer(device)
    default_threads = dispatch.MAX_THREADS_PER_SM
    default_block_rows = dispatch.LOOP_BLOCK_ROWS
    driver_count = route_module.resident_blocks_per_sm

    def unknown(function: int, block: int, shared_mem: int) -> int:
        del function, block, shared_mem
        return 0

    print(torch.cuda.get_device_name(0), "torch", torch.__version__, flush=True)
    times: dict[tuple[str, int, int, int], list[float]] = {}
    for round_index in range(args.rounds):
        for p in presets:
            config = get_preset(p)
            plan = dispatch_plan(config, dtype)
            E, W = config.num_experts, config.output_width
            bias = torch.randn(E, device=device) * 0.1 if preset_has_bias(p) else None
            selections = [PLAN_THROUGHPUT] + ([PLAN_BOUND] if plan.bound_name_expression else [])
            for selection in selections:
                if round_index == 0:
                    function = get_kernel(plan.kernel_name(selection), (), 0).ptr
                    print(
                        f"{p} plan {selection}: {plan.kernel_name(selection)}, "
                        f"{resident_blocks(function, plan.block)} blocks of {plan.block} resident per SM",
                        flush=True,
                    )
                for t in rows:
                    check = torch.randn(t, E, device=device).to(dtype)
                    want = None
                    for cap in caps:
                        if cap:  # forced: a full SM is `cap` blocks, the resident count unknown
                            dispatch.MAX_THREADS_PER_SM = cap * plan.block
                            dispatch.LOOP_BLOCK_ROWS = 0
                            route_module.resident_blocks_per_sm = unknown
                        try:

                            def make_set(index: int, n: int = t, e: int = E, b=bias):
                                del index
                                return torch.randn(n, e, device=device).to(dtype), b

                            def call(scores, b, plan=plan, config=config, n=t, w=W, s=selection) -> None:
                                ids = torch.empty(n, w, dtype=torch.int32, device=device)
                                weights = torch.empty(n, w, device=device)
                                launch(plan, scores, b, config, ids, weights, selection=s)

                            us = timer.time(call, make_set, t * E * dtype.itemsize).seconds * 1e6
                            times.setdefault((p, selection, t, cap), []).append(us)
                            print(
                                f"  round {round_index} {p} plan {selection} T={t} cap {cap}: {us:.2f} us",
                                flush=True,
                            )
                            out = (
                                torch.full((t, W), -7, dtype=torch.int32, device=device),
                                torch.full((t, W), float("nan"), device=device),
                            )
                            launch(plan, check, bias, config, *out, selection=selection)
                        finally:
                            dispatch.MAX_THREADS_PER_SM = default_threads
                            dispatch.LOOP_BLOCK_ROWS = default_block_rows
                            route_module.resident_blocks_per_sm = driver_count
                        if want is None:
                            want = (torch.empty_like(out[0]), torch.empty_like(out[1]))
                            launch(plan, check, bias, config, *want, selection=selection)
                        assert torch.equal(out[0], want[0]) and torch.equal(out[1], want[1]), (p, t, cap)
    for (p, selection, t, cap), values in times.items():
        base = statistics.median(times[p, selection, t, caps[-1]])
        us = statistics.median(values)
        print(
            f"{p:20s} plan {selection} T={t:7d} cap {cap} blocks/SM: {us:8.2f} us  "
            f"({us / base:.3f}x cap {caps[-1]})  rounds {', '.join(f'{v:.2f}' for v in values)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
