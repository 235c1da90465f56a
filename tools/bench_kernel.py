"""Time the fused routing kernel against the reference on a CUDA GPU (docs/perf.md).

    python tools/bench_kernel.py [--preset deepseek-v3] [--dtype bfloat16] [--rows 1,4096,65536]

Kernel time: N calls captured in one CUDA graph and replayed, CUDA events around the replay, divided by
N (pure GPU time, no Python launch overhead). Inputs rotate over enough copies to exceed the L2 cache
(60 MB on an H200), so large T is read from HBM as in a real model. Also printed: the eager per-call
time of `moegate.optimized.route` (with its Python launch path) and of `moegate.reference.route`.
Bytes per call: T*E*sizeof(scores) + E*sizeof(bias) read, T*W*(4 + 4) written.
"""

from __future__ import annotations

import argparse
import math

import torch

from moegate import optimized, reference

L2_FLUSH_BYTES = 256 * 2**20  # rotate inputs over at least this much memory


def _time_ms(fn, repeats: int) -> float:
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    fn()
    torch.cuda.synchronize()
    start.record()
    for _ in range(repeats):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / repeats


def bench(config, dtype: torch.dtype, num_rows: int, has_bias: bool) -> dict:
    E, W = config.num_experts, config.output_width
    elsize = torch.finfo(dtype).bits // 8
    read = num_rows * E * elsize + (E * 4 if has_bias else 0)
    written = num_rows * W * 8
    copies = max(1, min(64, math.ceil(L2_FLUSH_BYTES / max(1, num_rows * E * elsize))))
    scores = [torch.randn(num_rows, E, device="cuda").to(dtype) for _ in range(copies)]
    bias = torch.randn(E, device="cuda") * 0.3 if has_bias else None
    outs = [
        (
            torch.empty(num_rows, W, dtype=torch.int32, device="cuda"),
            torch.empty(num_rows, W, dtype=torch.float32, device="cuda"),
        )
        for _ in range(copies)
    ]
    calls = max(copies, 64)
    for i in range(copies):
        optimized.route(scores[i], bias, config, out=outs[i])  # compile, load, warm
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(calls):
            optimized.route(scores[i % copies], bias, config, out=outs[i % copies])
    kernel_ms = _time_ms(graph.replay, 5) / calls
    eager_ms = _time_ms(lambda: optimized.route(scores[0], bias, config, out=outs[0]), 50)
    ref_ms = _time_ms(lambda: reference.route(scores[0], bias, config), 10)
    return {
        "rows": num_rows,
        "bytes": read + written,
        "kernel_us": kernel_ms * 1e3,
        "eager_us": eager_ms * 1e3,
        "reference_us": ref_ms * 1e3,
        "GBps": (read + written) / (kernel_ms * 1e-3) / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="deepseek-v3")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--rows", default="1,4096,65536")
    args = parser.parse_args()
    config = reference.get_preset(args.preset)
    dtype = getattr(torch, args.dtype)
    has_bias = reference.preset_has_bias(args.preset)
    plan = optimized.dispatch_plan(config, dtype)
    print(
        f"device: {torch.cuda.get_device_name()}  preset: {args.preset}  scores: {args.dtype}  "
        f"bias: {has_bias}"
    )
    print(f"kernel: {plan.name_expression} block={plan.block} shared={plan.shared_mem_bytes} B")
    print(
        f"{'T':>8} {'bytes':>12} {'kernel us':>10} {'GB/s':>8} {'eager us':>9} "
        f"{'reference us':>13} {'speedup':>8}"
    )
    for num_rows in (int(t) for t in args.rows.split(",")):
        r = bench(config, dtype, num_rows, has_bias)
        print(
            f"{r['rows']:>8} {r['bytes']:>12} {r['kernel_us']:>10.2f} {r['GBps']:>8.0f} "
            f"{r['eager_us']:>9.1f} "
            f"{r['reference_us']:>13.1f} {r['reference_us'] / r['kernel_us']:>7.0f}x"
        )


if __name__ == "__main__":
    main()
