"""A minute's check that every kernel the dispatch table names runs and agrees, before any long GPU run.

    python tools/gpu_smoke.py [--preset deepseek-v3 ...] [--timeout 30]

For each preset (all by default), bf16 and float32 logits, with a bias where the preset's model has one
(PRESET_HAS_BIAS: the softmax rows without one take the lazy numerators where route.cu's kLazyNamed holds),
and each plan its table row has (throughput, latency, bound), launches the plan's kernel at T = 1, 37 and
5000 into poisoned buffers and compares the ids and weights bitwise with the generic kernel's. Every launch
is synchronized under a watchdog: a kernel that does not return within --timeout seconds ends the process
with the Python stack and the case it was running (a hung kernel looks like a slow compile from outside:
docs/perf.md, session 18); the kernels are compiled first, outside the watchdog. Exit status 1 when any case
differs.
"""

from __future__ import annotations

import argparse
import faulthandler
import sys
import time

import torch

from moegate.optimized import (
    PLAN_BOUND,
    PLAN_LATENCY,
    PLAN_THROUGHPUT,
    build,
    dispatch_plan,
    generic_plan,
    launch,
)
from moegate.reference import PRESET_HAS_BIAS, get_preset, preset_names

ROWS = (1, 37, 5000)


def run(plan, scores, bias, config, selection):
    """ids and weights of `plan` in step 5's plan `selection`, into buffers poisoned first."""
    n, w = scores.shape[0], config.output_width
    ids = torch.full((n, w), -7, dtype=torch.int32, device=scores.device)
    weights = torch.full((n, w), float("nan"), device=scores.device)
    launch(plan, scores, bias, config, ids, weights, selection=selection)
    return ids, weights


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", action="append", default=None)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a launch may take")
    args = parser.parse_args()
    device = torch.device("cuda")
    differ = 0
    started = time.time()
    build.load_module()  # every kernel compiled before the watchdog runs (a minute on a fresh machine)
    print(f"compiled in {time.time() - started:.0f} s", flush=True)
    for name in args.preset or preset_names():
        config = get_preset(name)
        generator = torch.Generator(device=device).manual_seed(0)
        bias = torch.randn(config.num_experts, device=device, generator=generator) * 0.3
        if not PRESET_HAS_BIAS.get(name, True):
            bias = None
        for dtype in (torch.bfloat16, torch.float32):
            plan = dispatch_plan(config, dtype)
            selections = [PLAN_THROUGHPUT]
            if plan.latency_name_expression is not None:
                selections.append(PLAN_LATENCY)
            if plan.bound_name_expression is not None:
                selections.append(PLAN_BOUND)
            for t in ROWS:
                logits = torch.randn(t, config.num_experts, device=device, generator=generator)
                scores = (logits * 2).to(dtype)
                expected = run(generic_plan(config, dtype), scores, bias, config, None)
                for selection in selections:
                    case = f"{name} {dtype} T={t} plan {selection} ({plan.kernel_name(selection)})"
                    faulthandler.dump_traceback_later(args.timeout, exit=True)
                    print(case, end=" ", flush=True)
                    got = run(plan, scores, bias, config, selection)
                    torch.cuda.synchronize()
                    faulthandler.cancel_dump_traceback_later()
                    same = torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
                    differ += 0 if same else 1
                    print("ok" if same else "DIFFERS from the generic kernel", flush=True)
    print(f"{differ} cases differ; {time.time() - started:.0f} s", flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
