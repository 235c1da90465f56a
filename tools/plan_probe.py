"""Time step 5's two plans of the specialized kernel side by side on a CUDA GPU (docs/perf.md).

    python tools/plan_probe.py [--preset deepseek-v3 ...] [--rows 1,256,4096,...] [--dtype bfloat16]

For each preset and T: the kernel forced into the latency plan, into the throughput plan, and as the
dispatch picks (`KernelPlan.selection_plan`), each timed as `moegate bench` times a call: many calls
captured in one CUDA graph over input sets rotated past L2, replayed, median of 5 replays, per call. The
outputs of the two plans are compared bitwise on the first input set. Prints one line per (preset, T).
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch

from moegate import optimized
from moegate.optimized import PLAN_LATENCY, PLAN_THROUGHPUT, dispatch_plan, launch
from moegate.reference import get_preset, preset_has_bias

ROTATE_BYTES = 256 << 20


def _time_graph_us(calls: list, replays: int = 5) -> float:
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for call in calls:
            call()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(replays):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1000.0 / len(calls))
    return statistics.median(times)


def probe(preset: str, num_rows: int, dtype: torch.dtype) -> str:
    config = get_preset(preset)
    E, W = config.num_experts, config.output_width
    plan = dispatch_plan(config, dtype)
    if plan.specialization is None:
        return f"{preset:20s} T={num_rows:>7d} generic kernel: one plan"
    sets = max(1, min(64, math.ceil(ROTATE_BYTES / (num_rows * E * dtype.itemsize))))
    scores = [torch.randn(num_rows, E, device="cuda").to(dtype) for _ in range(sets)]
    bias = torch.randn(E, device="cuda") * 0.1 if preset_has_bias(preset) else None
    outs = [
        (torch.empty(num_rows, W, dtype=torch.int32, device="cuda"), torch.empty(num_rows, W, device="cuda"))
        for _ in range(sets)
    ]
    calls_per_graph = max(sets, min(1000, 64 * sets))
    results = {}
    for name, selection in (("latency", PLAN_LATENCY), ("throughput", PLAN_THROUGHPUT), ("dispatch", None)):

        def call(i: int, selection: int | None = selection) -> None:
            launch(plan, scores[i % sets], bias, config, *outs[i % sets], selection=selection)

        for i in range(sets):
            call(i)
        results[name] = _time_graph_us([lambda i=i: call(i) for i in range(calls_per_graph)])
        if name != "dispatch":
            call(0)
            results[name + "_out"] = (outs[0][0].clone(), outs[0][1].clone())
    same = torch.equal(results["latency_out"][0], results["throughput_out"][0]) and torch.equal(
        results["latency_out"][1], results["throughput_out"][1]
    )
    sm_count = torch.cuda.get_device_properties(0).multi_processor_count
    picked = "latency" if plan.selection_plan(num_rows, sm_count) == PLAN_LATENCY else "throughput"
    return (
        f"{preset:20s} T={num_rows:>7d} latency {results['latency']:8.2f} us  throughput "
        f"{results['throughput']:8.2f} us  dispatch ({picked}) {results['dispatch']:8.2f} us  "
        f"latency/throughput {results['latency'] / results['throughput']:.3f}  bitwise same: {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", action="append", default=None)
    parser.add_argument("--rows", default="1,16,256,1024,4096,8448,8449,16384,65536,262144")
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    presets = args.preset or ["deepseek-v3", "kimi-k2", "moonlight-16b-a3b", "glm-4.5-air"]
    print(
        torch.cuda.get_device_name(0), "torch", torch.__version__, "launch via", optimized.launch.__module__
    )
    for preset in presets:
        for num_rows in (int(r) for r in args.rows.split(",")):
            print(probe(preset, num_rows, dtype), flush=True)


if __name__ == "__main__":
    main()
