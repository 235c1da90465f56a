"""Time step 5's two plans of the specialized kernel side by side on a CUDA GPU (docs/perf.md).

    python tools/plan_probe.py [--preset deepseek-v3 ...] [--rows 1,256,4096,...] [--dtype bfloat16]

For each preset and T: the kernel forced into the latency plan, into the throughput plan, the latency
kernel run through its throughput path with the throughput geometry ("crossed": stop 14's single kernel),
into the bound plan where the dtype's plan has one (`KernelPlan.bound_name_expression`; the dispatch takes
it from `bound_min_blocks_per_sm` blocks per SM on), and as the dispatch picks
(`KernelPlan.selection_plan`), each timed by `moegate bench`'s own timer (`benchmark_timers.CudaTimer`:
calls captured in one CUDA graph over input sets rotated past L2, replayed, median of 5 replays, per
call). The outputs of the plans are compared bitwise on one set. Prints one line per (preset, T).
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from moegate import optimized
from moegate.optimized import PLAN_BOUND, PLAN_LATENCY, PLAN_THROUGHPUT, dispatch_plan, launch
from moegate.properties.benchmark_timers import CudaTimer
from moegate.reference import get_preset, preset_has_bias


def probe(preset: str, num_rows: int, dtype: torch.dtype) -> str:
    config = get_preset(preset)
    E, W = config.num_experts, config.output_width
    plan = dispatch_plan(config, dtype)
    if plan.specialization is None:
        return f"{preset:20s} T={num_rows:>7d} generic kernel: one plan"
    device = torch.device("cuda")
    bias = torch.randn(E, device=device) * 0.1 if preset_has_bias(preset) else None

    def make_set(index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        del index  # fresh random logits per set
        return torch.randn(num_rows, E, device=device).to(dtype), bias

    def outputs() -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.empty(num_rows, W, dtype=torch.int32, device=device)
        return ids, torch.empty(num_rows, W, device=device)

    timer = CudaTimer(device)
    scores0, _ = make_set(0)
    times, outs = {}, {}
    crossed = plan
    if plan.latency_name_expression is not None:
        crossed = dataclasses.replace(plan, name_expression=plan.latency_name_expression, rows_per_warp=1)
    variants = (
        ("latency", plan, PLAN_LATENCY),
        ("throughput", plan, PLAN_THROUGHPUT),
        ("crossed", crossed, PLAN_THROUGHPUT),
        ("dispatch", plan, None),
    )
    if plan.bound_name_expression is not None:
        variants += (("bound", plan, PLAN_BOUND),)
    for name, variant, selection in variants:

        def call(scores, bias, selection: int | None = selection, variant=variant) -> None:
            launch(variant, scores, bias, config, *outputs(), selection=selection)

        times[name] = timer.time(call, make_set, num_rows * E * dtype.itemsize).seconds * 1e6
        outs[name] = outputs()
        launch(variant, scores0, bias, config, *outs[name], selection=selection)
    compared = [outs[name] for name in ("latency", "throughput", "crossed", "bound") if name in outs]
    same = all(torch.equal(compared[0][i], other[i]) for other in compared[1:] for i in range(2))
    sm_count = torch.cuda.get_device_properties(device).multi_processor_count
    picked = {PLAN_LATENCY: "latency", PLAN_THROUGHPUT: "throughput", PLAN_BOUND: "bound"}[
        plan.selection_plan(num_rows, sm_count)
    ]
    bound = ""
    if "bound" in times:
        ratio = times["bound"] / times["throughput"]
        bound = f"bound {times['bound']:8.2f} us  bound/throughput {ratio:.3f}  "
    return (
        f"{preset:20s} T={num_rows:>7d} latency {times['latency']:8.2f} us  throughput "
        f"{times['throughput']:8.2f} us  crossed {times['crossed']:8.2f} us  {bound}"
        f"dispatch ({picked}) {times['dispatch']:8.2f} us  "
        f"latency/throughput {times['latency'] / times['throughput']:.3f}  bitwise same: {same}"
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
