"""The bound plan's warp kernel against the segment kernel, for the sigmoid rows on the segment kernel.

    python tools/bound_segment_probe.py [--preset glm-4.5-air ...] [--rows 4096,16384,65536,262144]

For each preset whose table row runs route_segment_kernel in the throughput plan and which
`bound_plan_applies` admits (GLM-4.5-Air, Moonlight, Llama-4), compiles the bound plan's warp kernel
(route_warp_kernel<..., PLAN_BOUND>) beside the dispatch's kernels and times both at each T with `moegate
bench`'s timer (CUDA graph over input sets rotated past L2, median of 5 replays), in alternating rounds,
after checking that both give bitwise the same ids and weights on random and tie-heavy rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import torch

from moegate.optimized import PLAN_BOUND, PLAN_THROUGHPUT, build, dispatch_plan
from moegate.optimized.dispatch import SPECIALIZATIONS, bound_plan_applies, specialized_name
from moegate.optimized.route import launch
from moegate.properties.benchmark_timers import CudaTimer
from moegate.reference import get_preset, preset_has_bias

CANDIDATES = ("glm-4.5-air", "moonlight-16b-a3b", "llama-4-maverick")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", action="append", default=None)
    parser.add_argument("--rows", default="4096,16384,65536,262144")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dtype = torch.bfloat16
    device = torch.device("cuda")
    rows = [int(r) for r in args.rows.split(",")]
    by_name = {s.name: s for s in SPECIALIZATIONS}
    plans = {}
    for p in args.preset or CANDIDATES:
        spec = by_name[p]
        if spec.kernel != "segment" or not bound_plan_applies(*spec.key):
            raise SystemExit(f"{p}: not a segment row that bound_plan_applies admits")
        segment = dispatch_plan(get_preset(p), dtype)
        bound = dataclasses.replace(
            segment,
            # the warp kernel's bound plan (a segment row's own PLAN_BOUND name is the segment kernel's)
            name_expression=specialized_name(
                dataclasses.replace(spec, kernel="warp", lanes=0), dtype, PLAN_BOUND
            ),
            rows_per_warp=1,
            latency_name_expression=None,
        )
        plans[p] = {"segment": (segment, PLAN_THROUGHPUT), "bound": (bound, PLAN_BOUND)}
    names = sorted({plan.name_expression for variants in plans.values() for plan, _ in variants.values()})
    build.name_expressions = lambda: names
    build._binaries.clear()
    build._modules.clear()
    build._kernels.clear()
    timer = CudaTimer(device)
    print(torch.cuda.get_device_name(0), "torch", torch.__version__, flush=True)
    torch.manual_seed(0)
    times: dict[tuple[str, str, int], list[float]] = {}
    for p, variants in plans.items():
        config = get_preset(p)
        E, W = config.num_experts, config.output_width
        bias = (torch.randn(E, device=device) * 0.1).to(dtype) if preset_has_bias(p) else None
        for t in rows:
            checks = [
                torch.randn(t, E, device=device).to(dtype),
                (torch.randint(-2, 3, (t, E), device=device) * 0.5).to(dtype),
            ]

            def outputs(n: int = t, w: int = W) -> tuple[torch.Tensor, torch.Tensor]:
                ids = torch.full((n, w), -7, dtype=torch.int32, device=device)
                return ids, torch.full((n, w), float("nan"), device=device)

            got = {}
            for v, (plan, sel) in variants.items():
                got[v] = []
                for s in checks:
                    o = outputs()
                    launch(plan, s, bias, config, *o, selection=sel)
                    got[v].append(o)
            same = all(
                torch.equal(a, b)
                for x, y in zip(got["segment"], got["bound"], strict=True)
                for a, b in zip(x, y, strict=True)
            )
            print(f"{p} T={t}: bound {'bitwise the segment kernel' if same else 'DIFFERS'}", flush=True)

            def make_set(index: int, n: int = t, e: int = E, b=bias):
                del index
                return torch.randn(n, e, device=device).to(dtype), b

            for _ in range(args.rounds):
                for v, (plan, sel) in variants.items():

                    def call(scores, b, plan=plan, sel=sel, config=config, outputs=outputs) -> None:
                        launch(plan, scores, b, config, *outputs(), selection=sel)

                    us = timer.time(call, make_set, t * E * dtype.itemsize).seconds * 1e6
                    times.setdefault((p, v, t), []).append(us)
            seg = statistics.median(times[p, "segment", t])
            bnd = statistics.median(times[p, "bound", t])
            print(
                f"{p:18s} T={t:>7d} segment {seg:8.2f} us  bound {bnd:8.2f} us  ({bnd / seg:.3f}x)",
                flush=True,
            )


if __name__ == "__main__":
    main()
