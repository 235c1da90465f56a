"""Time the throughput-plan kernels of the E <= 160 table rows side by side on a CUDA GPU (docs/perf.md).

    python tools/segment_probe.py [--preset moonlight-16b-a3b ...] [--rows 4096,65536,262144]

For each preset and T: the warp-per-row throughput kernel (`route_warp_kernel`, PLAN_THROUGHPUT) and
the row-per-segment kernel (`route_segment_kernel`) with L = 2, 4, 8, 16 lanes per row wherever the
table would accept it (E / L <= 32, groups on whole lanes: `Specialization`'s check); each with the
dispatch's grid cap (8 blocks of 256 threads per SM) and with the grid capped at the blocks that are
resident at once (the driver's occupancy for that kernel: "occ"). Each is timed by `moegate bench`'s
own timer (CUDA graph over input sets rotated past L2, median of 5 replays, per call). Every variant's
output is compared bitwise with the warp kernel's, on random logits and on tie-heavy ones (a handful of
distinct values, the bias too). Kernels that are not in the dispatch table are compiled into the module
for this process only (the build's name list is extended before the first compile).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses

import torch

from moegate.optimized import PLAN_THROUGHPUT, build, dispatch, launch
from moegate.optimized.dispatch import WARP_SIZE, KernelPlan, Specialization
from moegate.properties.benchmark_timers import CudaTimer
from moegate.reference import get_preset, preset_has_bias

LANES = dispatch.SEGMENT_LANES


@dataclasses.dataclass(frozen=True)
class CappedPlan(KernelPlan):
    """A plan whose grid is capped at `blocks_per_sm` blocks per SM instead of the dispatch's cap."""

    blocks_per_sm: int = 0

    def grid(self, num_rows: int, sm_count: int) -> int:
        wanted = -(-num_rows // (self.warps_per_block * self.rows_per_warp))
        return max(1, min(wanted, sm_count * self.blocks_per_sm))


def variants(spec: Specialization, dtype: torch.dtype) -> list[tuple[str, KernelPlan]]:
    """The warp kernel's throughput plan and the segment kernel at every L the table's constraints allow
    (a segment row built from `spec`; Specialization rejects the others)."""
    if spec.kernel == "thread":
        return []
    as_warp = dataclasses.replace(spec, kernel="warp", lanes=0)
    warp = dispatch.specialized_name(as_warp, dtype, PLAN_THROUGHPUT)
    out = [("warp", KernelPlan(warp, spec.name, dispatch.SPECIALIZED_WARPS_PER_BLOCK, 0))]
    for lanes in LANES:
        try:
            as_segment = dataclasses.replace(spec, kernel="segment", lanes=lanes)
        except ValueError:  # no whole lanes for this L
            continue
        name = dispatch.specialized_name(as_segment, dtype, PLAN_THROUGHPUT)
        plan = KernelPlan(name, spec.name, 8, 0, rows_per_warp=WARP_SIZE // lanes)
        out.append((f"seg{lanes}", plan))
    return out


def occupancy(name: str) -> int:
    """Resident 256-thread blocks per SM of kernel `name` (cuOccupancyMaxActiveBlocksPerMultiprocessor)."""
    function = build.get_kernel(name)
    blocks = ctypes.c_int()
    status = ctypes.CDLL("libcuda.so.1").cuOccupancyMaxActiveBlocksPerMultiprocessor(
        ctypes.byref(blocks), ctypes.c_void_p(function.ptr), 256, ctypes.c_size_t(0)
    )
    assert status == 0, status
    return blocks.value


def probe(preset: str, rows: list[int], dtype: torch.dtype) -> None:
    config = get_preset(preset)
    spec = next(
        s
        for s in dispatch.SPECIALIZATIONS
        if s.key
        == (config.scoring_func, config.num_experts, config.num_expert_group, config.topk_group, config.topk)
    )
    E, W = config.num_experts, config.output_width
    device = torch.device("cuda")
    bias = torch.randn(E, device=device) * 0.1 if preset_has_bias(preset) else None
    timer = CudaTimer(device)
    plans = []
    for name, plan in variants(spec, dtype):
        occ = occupancy(plan.name_expression)
        plans.append((name, plan))
        plans.append((f"{name}/occ{occ}", CappedPlan(**dataclasses.asdict(plan), blocks_per_sm=occ)))
    for num_rows in rows:

        def outputs(n: int = num_rows) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.empty(n, W, dtype=torch.int32, device=device), torch.empty(n, W, device=device)

        def make_set(index: int, n: int = num_rows) -> tuple[torch.Tensor, torch.Tensor | None]:
            del index
            return torch.randn(n, E, device=device).to(dtype), bias

        # Bitwise checks: random rows and tie-heavy rows (logits and bias from a few values).
        checks = [make_set(0)[0], (torch.randint(-2, 3, (num_rows, E), device=device) * 0.5).to(dtype)]
        tie_bias = None if bias is None else (torch.randint(-1, 2, (E,), device=device) * 0.25)
        line = [f"{preset:20s} T={num_rows:>7d}"]
        reference_outputs = None
        base = None
        for name, plan in plans:

            def call(scores, b, plan=plan) -> None:
                launch(plan, scores, b, config, *outputs(), selection=PLAN_THROUGHPUT)

            us = timer.time(call, make_set, num_rows * E * dtype.itemsize).seconds * 1e6
            got = []
            for i, scores in enumerate(checks):
                o = outputs()
                launch(plan, scores, bias if i == 0 else tie_bias, config, *o, selection=PLAN_THROUGHPUT)
                got.append(o)
            if reference_outputs is None:
                reference_outputs, base = got, us
            same = all(
                torch.equal(a, b)
                for x, y in zip(got, reference_outputs, strict=True)
                for a, b in zip(x, y, strict=True)
            )
            line.append(f"{name} {us:.2f} ({us / base:.2f}x){'' if same else ' DIFFERS'}")
        print("  ".join(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", action="append", default=None)
    parser.add_argument("--rows", default="4096,65536,262144")
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    presets = args.preset or [
        "moonlight-16b-a3b",
        "deepseek-v2-lite",
        "glm-4.5-air",
        "qwen3-moe",
        "gpt-oss-120b",
        "glm-4.5",
        "llama-4-maverick",
        "kimi-k2",
        "deepseek-v3",
    ]
    extra = sorted(
        {
            plan.name_expression
            for preset in presets
            for spec in dispatch.SPECIALIZATIONS
            if spec.key
            == (lambda c: (c.scoring_func, c.num_experts, c.num_expert_group, c.topk_group, c.topk))(
                get_preset(preset)
            )
            for _, plan in variants(spec, dtype)
        }
        - set(dispatch.name_expressions())
    )
    original = build.name_expressions
    build.name_expressions = lambda: original() + extra
    print(torch.cuda.get_device_name(0), "torch", torch.__version__, "extra kernels", len(extra), flush=True)
    for preset in presets:
        probe(preset, [int(r) for r in args.rows.split(",")], dtype)


if __name__ == "__main__":
    main()
