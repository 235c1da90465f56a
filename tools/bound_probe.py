"""How often the bound plan's proof fails (route.cu: finish_rows_bound), on a CUDA GPU.

    python tools/bound_probe.py [--preset deepseek-v3 ...] [--rows 262144]

Compiles route.cu with a counter that finish_rows_bound increments once per row it cannot prove (each then
takes the exact path), routes random rows of each preset through the bound plan with the bias of `moegate
bench` (0.1 N(0, 1) in bf16 beside bf16 scores N(0, 1)) and with the GPU tests' (0.3 N(0, 1) in float32,
scores 2 N(0, 1)), and prints the fraction of rows that fell back.
"""

from __future__ import annotations

import argparse

import cupy
import torch

from moegate.optimized import KERNEL_SOURCE, PLAN_BOUND, build, dispatch_plan
from moegate.optimized.route import launch
from moegate.reference import get_preset, preset_has_bias

ANCHOR = "  u32 unproved = __ballot_sync(kFullMask, live && q == 0 && !proved);\n"
COUNTER = "__device__ unsigned long long moegate_fallbacks;\n"


def counting_source() -> str:
    text = KERNEL_SOURCE.read_text()
    if text.count(ANCHOR) != 1:
        raise SystemExit("route.cu lacks the proof's anchor; update tools/bound_probe.py")
    counted = ANCHOR + "  if (lane == 0) atomicAdd(&moegate_fallbacks, __popc(unproved) + 0ull);\n"
    text = text.replace(ANCHOR, counted)
    namespace = text.index("namespace moegate {")
    return text[:namespace] + COUNTER + text[namespace:]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", action="append", default=None)
    parser.add_argument("--rows", type=int, default=262144)
    args = parser.parse_args()
    presets = args.preset or ["deepseek-v3", "glm-4.5"]
    device = torch.device("cuda")
    dtype = torch.bfloat16
    plans = {p: dispatch_plan(get_preset(p), dtype) for p in presets}
    for p, plan in plans.items():  # the counter sits in finish_rows_bound, the warp kernel's proof
        if not plan.kernel_name(PLAN_BOUND).startswith("moegate::route_warp_kernel<"):
            raise SystemExit(f"{p}: its bound plan is not the warp kernel's (finish_rows_bound)")
    names = sorted({plan.kernel_name(PLAN_BOUND) for plan in plans.values()})
    text = counting_source()
    build.kernel_source = lambda: text
    build.name_expressions = lambda: names
    build._binaries.clear()
    build._modules.clear()
    build._kernels.clear()
    print(torch.cuda.get_device_name(0), "kernels", names, flush=True)
    g = torch.Generator(device=device).manual_seed(0)
    for p in presets:
        config, plan = get_preset(p), plans[p]
        E, T, W = config.num_experts, args.rows, config.output_width
        cases = {
            "bench (scores N(0,1) bf16, bias 0.1 N(0,1) bf16)": (1.0, 0.1, torch.bfloat16),
            "tests (scores 2 N(0,1) bf16, bias 0.3 N(0,1) f32)": (2.0, 0.3, torch.float32),
        }
        for label, (scale, bias_scale, bias_dtype) in cases.items():
            scores = (torch.randn(T, E, device=device, generator=g) * scale).to(dtype)
            bias = None
            if preset_has_bias(p):
                bias = (torch.randn(E, device=device, generator=g) * bias_scale).to(bias_dtype)
            module, _ = build.load_module()
            counter = int(module.get_global_var("moegate_fallbacks"))
            cupy.cuda.runtime.memset(counter, 0, 8)
            ids = torch.empty(T, W, dtype=torch.int32, device=device)
            weights = torch.empty(T, W, device=device)
            launch(plan, scores, bias, config, ids, weights, selection=PLAN_BOUND)
            torch.cuda.synchronize()
            host = torch.zeros(1, dtype=torch.int64)
            cupy.cuda.runtime.memcpy(host.data_ptr(), counter, 8, 2)  # device to host
            fell_back = int(host[0])
            print(f"{p:14s} T={T} {label}: {fell_back} rows fell back ({fell_back / T:.4%})", flush=True)


if __name__ == "__main__":
    main()
