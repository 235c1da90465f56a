"""Which earlier activity in a process makes the host path slower (GPU machine; docs/perf.md, session 14).

    python tools/host_state_probe.py

tools/host_path_probe.py measured the same eager `route` call at 5.7 us first and at 10.9 us at its end,
after the Python launcher's pieces, torch.empty and a CuPy kernel call had run in the process. This times
`route` (`time_host`, the bench's host timer, 1000 calls, T = 1, DeepSeek-V3 bf16) first, then again
after 2000 calls of each of those activities in turn, to find the one after which it is slower.
"""

import importlib
import statistics

import cupy
import torch

from moegate import optimized
from moegate.optimized import PLAN_LATENCY, build, dispatch_plan
from moegate.optimized.launch import launch_route_kernel
from moegate.properties.benchmark_timers import time_host
from moegate.reference import get_preset

route_module = importlib.import_module("moegate.optimized.route")
config = get_preset("deepseek-v3")
scores = torch.randn(1, 256, device="cuda").to(torch.bfloat16)
bias = (torch.randn(256, device="cuda") * 0.05).to(torch.bfloat16)
ids = torch.empty((1, 9), dtype=torch.int32, device="cuda")
weights = torch.empty((1, 9), device="cuda")
optimized.route(scores, bias, config)
plan = dispatch_plan(config, scores.dtype)
kernel = build.get_kernel(plan.kernel_name(PLAN_LATENCY), (), 0)
sm, pdl = route_module._device_info(0)
launch_config = (*plan.geometry(1, sm, PLAN_LATENCY), 0, route_module._current_stream(0), pdl)
params = (scores.data_ptr(), 1, 256, bias.data_ptr(), 2, 256, 8, 4, 8, 0, 1, 1, 0, 0, 2.5, PLAN_LATENCY)
args = (*launch_config, *params, ids.data_ptr(), weights.data_ptr())
device = torch.device("cuda")
empty = cupy.RawKernel('extern "C" __global__ void e() {}', "e")


def route_us() -> float:
    runs = [
        statistics.median(time_host(lambda s, b: optimized.route(s, b, config), (scores, bias), device))
        for _ in range(3)
    ]
    return statistics.median(runs) * 1e6


def repeat(fn, calls=2000) -> None:
    for i in range(calls):
        fn()
        if i % 100 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()


print(f"{'first':44s} route {route_us():6.2f} us", flush=True)
steps = {
    "after route with out= x2000": lambda: optimized.route(scores, bias, config, out=(ids, weights)),
    "after the Python launcher's route x2000": lambda: route_module._route(scores, bias, config, None, ()),
    "after launch_route_kernel (ctypes) x2000": lambda: launch_route_kernel(kernel.ptr, *args),
    "after torch.empty x2 x2000": lambda: (
        torch.empty((1, 9), device="cuda"),
        torch.empty((1, 9), device="cuda"),
    ),
    "after a CuPy kernel call x2000": lambda: empty((1,), (32,), ()),
    "after route x2000": lambda: optimized.route(scores, bias, config),
}
for name, fn in steps.items():
    repeat(fn)
    print(f"{name:44s} route {route_us():6.2f} us", flush=True)
