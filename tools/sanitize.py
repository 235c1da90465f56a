"""Run compute-sanitizer's memcheck, racecheck and initcheck on the fused routing kernels.

    python tools/sanitize.py [--tools memcheck,racecheck,initcheck] [--log-dir DIR] [--looping]

Each tool runs this file in `--worker` mode under `compute-sanitizer --tool TOOL`: one small case per
compiled kernel (every specialization in every scores dtype, the generic kernel in every dtype on
several shapes, including K > 32, G = E, a misaligned row-strided view and non-finite rows); the
specialized kernels in each of their selection plans (latency, throughput, and bound where a row has it),
with a bias, and in the contiguous layout without one too (a softmax row without a bias takes the lazy
numerators where route.cu's kLazyNamed holds; session 21 found that path never sanitized before).
With --looping, instead: every specialization's throughput and bound kernels (bf16; a bias for the
sigmoid rows, none for the softmax rows, as their models route) at a T
one block's rows past a full SM's threads on every SM, so that every block loops over the rows in the
dispatch's grid (capped at the kernel's resident blocks where KernelPlan.cap_blocks_per_sm says so), and
where the grid grows past its cap at large T (dispatch.LOOP_BLOCK_ROWS) once more with it grown at that T
(LOOP_BLOCK_ROWS set to one block's rows: each block then takes one pass or less).
Inputs are made on the CPU and copied, so the only kernels the sanitizer sees are ours. Prints one summary
line per tool and exits non-zero if any tool reports an error.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

TOOLS = ("memcheck", "racecheck", "initcheck")
SUMMARY = re.compile(r"(ERROR SUMMARY: .*|RACECHECK SUMMARY: .*)")


def looping_worker() -> int:
    import torch

    from moegate.optimized import (
        PLAN_BOUND,
        PLAN_THROUGHPUT,
        SPECIALIZATIONS,
        dispatch,
        dispatch_plan,
        launch,
    )
    from moegate.optimized.build import get_kernel
    from moegate.optimized.dispatch import MAX_THREADS_PER_SM
    from moegate.optimized.launch import resident_blocks_per_sm

    sm_count = torch.cuda.get_device_properties(0).multi_processor_count
    gen = torch.Generator().manual_seed(0)
    count = grown = 0
    for spec in SPECIALIZATIONS:
        config = spec.config(num_fused_shared_experts=1)
        plan = dispatch_plan(config, torch.bfloat16)
        E = config.num_experts
        rows_per_block = plan.warps_per_block * plan.rows_per_warp
        T = (sm_count * (MAX_THREADS_PER_SM // plan.block) + 1) * rows_per_block
        scores = torch.randn(T, E, generator=gen).to(torch.bfloat16).cuda()
        bias = torch.randn(E, generator=gen).cuda() if spec.scoring_func == "sigmoid" else None
        bound = (PLAN_BOUND,) if plan.bound_name_expression is not None else ()
        for selection in (PLAN_THROUGHPUT, *bound):
            resident = resident_blocks_per_sm(
                get_kernel(plan.kernel_name(selection)).ptr, plan.block, plan.shared_mem_bytes
            )
            capped, _ = plan.geometry(T, sm_count, selection, resident)
            shipped = dispatch.LOOP_BLOCK_ROWS
            for grow in (False, True):  # the dispatch's grid at this T, then the grid grown past its cap
                dispatch.LOOP_BLOCK_ROWS = rows_per_block if grow else shipped
                try:
                    grid, _ = plan.geometry(T, sm_count, selection, resident)
                    if grow and grid <= capped:  # a cap of one wave of the resident blocks stays
                        continue
                    ids = torch.empty(T, config.output_width, dtype=torch.int32, device="cuda")
                    weights = torch.empty(T, config.output_width, dtype=torch.float32, device="cuda")
                    launch(plan, scores, bias, config, ids, weights, selection=selection)
                    count += 1
                    grown += grow
                finally:
                    dispatch.LOOP_BLOCK_ROWS = shipped
    torch.cuda.synchronize()
    print(
        f"worker: {count} launches (each specialization's throughput and bound kernels, looping; "
        f"{grown} of them in a grid grown past its cap) done"
    )
    return 0


def worker() -> int:
    import torch

    from moegate.optimized import (
        PLAN_BOUND,
        PLAN_LATENCY,
        PLAN_THROUGHPUT,
        SPECIALIZATIONS,
        dispatch_plan,
        generic_plan,
        launch,
        route,
    )
    from moegate.reference import RoutingConfig

    dtypes = (torch.float32, torch.bfloat16, torch.float16)
    cases: list[tuple[str, RoutingConfig, bool]] = []
    for spec in SPECIALIZATIONS:
        cases.append((f"specialized {spec.name}", spec.config(num_fused_shared_experts=1), True))
    generic = {
        "generic E=160 G=8 softmax": RoutingConfig(
            num_experts=160, topk=6, num_expert_group=8, topk_group=3, scoring_func="softmax"
        ),
        "generic E=72 G=3 replica": RoutingConfig(
            num_experts=72,
            topk=5,
            num_expert_group=3,
            topk_group=2,
            num_fused_shared_experts=3,
            shared_expert_mode="replica",
        ),
        "generic G=E": RoutingConfig(num_experts=64, topk=8, num_expert_group=64, topk_group=8),
        "generic E=1024 K=40": RoutingConfig(num_experts=1024, topk=40, num_fused_shared_experts=2),
        "generic E=8": RoutingConfig(num_experts=8, topk=2, scoring_func="softmax"),
    }
    cases += [(name, config, False) for name, config in generic.items()]

    gen = torch.Generator().manual_seed(0)
    count = 0
    for name, config, specialized in cases:
        for dtype in dtypes:
            E, T = config.num_experts, 67
            # A row-strided view starting one element in: the scalar-load fallback of the vector path.
            storage = torch.randn((T + 1) * (E + 3) + 1, generator=gen)
            storage[5 : 5 + E] = float("nan")
            storage[E + 9 : 2 * E] = float("inf")
            for layout in ("contiguous", "strided"):
                if layout == "contiguous":
                    scores = storage[: T * E].view(T, E).to(dtype).cuda()
                else:
                    cpu = storage.to(dtype)
                    scores = cpu.cuda()[1 : 1 + T * (E + 3)].view(T, E + 3)[:, :E]
                bias = torch.randn(E, generator=gen).cuda()
                plan = dispatch_plan(config, dtype) if specialized else generic_plan(config, dtype)
                assert (plan.specialization is not None) == specialized, (name, plan)
                selections: tuple[int | None, ...] = (None,)
                if specialized:
                    bound = (PLAN_BOUND,) if plan.bound_name_expression is not None else ()
                    selections = (PLAN_THROUGHPUT, PLAN_LATENCY, *bound)
                biases = (bias, None) if specialized and layout == "contiguous" else (bias,)
                for selection in selections:
                    for b in biases:
                        ids = torch.empty(T, config.output_width, dtype=torch.int32, device="cuda")
                        weights = torch.empty(T, config.output_width, dtype=torch.float32, device="cuda")
                        launch(plan, scores, b, config, ids, weights, selection=selection)
                        count += 1
                if specialized:  # through route(): the first call registers, the second is the C++ launcher's
                    for _ in range(2):
                        route(scores, bias, config)
                        count += 1
    torch.cuda.synchronize()
    print(
        f"worker: {count} launches ({len(cases)} cases x {len(dtypes)} dtypes x 2 layouts, every plan "
        f"for the specialized kernels (without a bias too where contiguous), and route() twice for them: "
        f"the Python and the compiled launcher) done"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", action="store_true", help="run the cases (under a sanitizer)")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated compute-sanitizer tools")
    parser.add_argument("--log-dir", type=Path, default=None, help="write each tool's full log here")
    parser.add_argument("--looping", action="store_true", help="the cases whose blocks loop over the rows")
    args = parser.parse_args()
    if args.worker:
        return looping_worker() if args.looping else worker()
    sanitizer = shutil.which("compute-sanitizer")
    if sanitizer is None:
        print("compute-sanitizer not found on PATH: nothing checked")
        return 2
    failed = False
    summaries = []
    for tool in args.tools.split(","):
        cmd = [sanitizer, f"--tool={tool}", "--error-exitcode=3", sys.executable, __file__, "--worker"]
        cmd += ["--looping"] if args.looping else []
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        log = result.stdout + result.stderr
        if args.log_dir is not None:
            args.log_dir.mkdir(parents=True, exist_ok=True)
            (args.log_dir / f"sanitize_{tool}.log").write_text(log)
        found = SUMMARY.findall(log)
        worker_line = next(
            (line for line in log.splitlines() if line.startswith("worker:")), "worker: no output"
        )
        summary = found[-1] if found else "no summary line"
        ok = result.returncode == 0 and worker_line != "worker: no output"
        failed |= not ok
        summaries.append(
            f"{tool:10s} {'OK  ' if ok else 'FAIL'} exit={result.returncode} {summary} | {worker_line}"
        )
        if not ok:
            print(log[-4000:])
    for line in summaries:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
