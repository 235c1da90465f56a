"""Where an eager `moegate.optimized.route` call spends its host time (GPU machine; docs/perf.md).

    python tools/host_path_probe.py

Times each piece of the launcher alone (median of 2000 calls, perf_counter, a synchronize every 100 calls
outside the timed region), T = 1, DeepSeek-V3, bf16.
"""

import statistics
import time

import torch

from moegate import optimized
from moegate.optimized import PLAN_LATENCY, build, dispatch_plan
from moegate.optimized.launch import launch_route_kernel
from moegate.optimized.route import _current_stream, _device_info, launch
from moegate.reference import check_inputs, get_preset

config = get_preset("deepseek-v3")
scores = torch.randn(1, 256, device="cuda").to(torch.bfloat16)
bias = (torch.randn(256, device="cuda") * 0.05).to(torch.bfloat16)
ids = torch.empty((1, 9), dtype=torch.int32, device="cuda")
weights = torch.empty((1, 9), device="cuda")
optimized.route(scores, bias, config)
plan = dispatch_plan(config, scores.dtype)
kernel = build.get_kernel(plan.name_expression, (), 0)
sm, pdl = _device_info(0)
launch_config = (*plan.geometry(1, sm, PLAN_LATENCY), 0, _current_stream(0), pdl)
params = (scores.data_ptr(), 1, 256, bias.data_ptr(), 2, 256, 8, 4, 8, 0, 1, 1, 0, 0, 2.5, PLAN_LATENCY)
args = (*launch_config, *params, ids.data_ptr(), weights.data_ptr())


def median_us(fn, calls=2000):
    times = []
    for i in range(calls):
        if i % 100 == 0:
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    torch.cuda.synchronize()
    return statistics.median(times) * 1e6


pieces = {
    "route (whole call)": lambda: optimized.route(scores, bias, config),
    "route with out=": lambda: optimized.route(scores, bias, config, out=(ids, weights)),
    "launch() alone": lambda: launch(plan, scores, bias, config, ids, weights),
    "launch_route_kernel (driver)": lambda: launch_route_kernel(kernel.ptr, *args),
    "check_inputs": lambda: check_inputs(scores, bias, config),
    "dispatch_plan": lambda: dispatch_plan(config, scores.dtype),
    "torch.empty x2 (cuda)": lambda: (
        torch.empty((1, 9), dtype=torch.int32, device="cuda"),
        torch.empty((1, 9), device="cuda"),
    ),
    "torch.cuda.current_device": torch.cuda.current_device,
    "_current_stream": lambda: _current_stream(0),
    "empty kernel via CuPy call": None,
}
import cupy  # noqa: E402

empty = cupy.RawKernel('extern "C" __global__ void e() {}', "e")
pieces["empty kernel via CuPy call"] = lambda: empty((1,), (32,), ())
for name, fn in pieces.items():
    print(f"{name:32s} {median_us(fn):7.2f} us", flush=True)
