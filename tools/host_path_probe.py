"""Where an eager `moegate.optimized.route` call spends its host time (GPU machine; docs/perf.md).

    python tools/host_path_probe.py

Times each piece alone (median of 2000 calls, perf_counter, a synchronize every 100 calls outside the
timed region), T = 1, DeepSeek-V3, bf16: the whole call through the compiled launcher (the default after a
config's first call), the compiled launcher's C++ call alone, and the Python launcher's pieces.
"""

import importlib
import statistics
import time

import torch

from moegate import optimized
from moegate.optimized import PLAN_LATENCY, build, dispatch_plan
from moegate.optimized.launch import launch_route_kernel
from moegate.reference import check_inputs, get_preset

route_module = importlib.import_module("moegate.optimized.route")
config = get_preset("deepseek-v3")
scores = torch.randn(1, 256, device="cuda").to(torch.bfloat16)
bias = (torch.randn(256, device="cuda") * 0.05).to(torch.bfloat16)
ids = torch.empty((1, 9), dtype=torch.int32, device="cuda")
weights = torch.empty((1, 9), device="cuda")
optimized.route(scores, bias, config)  # compile, load, register with the compiled launcher
plan = dispatch_plan(config, scores.dtype)
kernel = build.get_kernel(plan.kernel_name(PLAN_LATENCY), (), 0)
sm, pdl = route_module._device_info(0)
launch_config = (*plan.geometry(1, sm, PLAN_LATENCY), 0, route_module._current_stream(0), pdl)
params = (scores.data_ptr(), 1, 256, bias.data_ptr(), 2, 256, 8, 4, 8, 0, 1, 1, 0, 0, 2.5, PLAN_LATENCY)
args = (*launch_config, *params, ids.data_ptr(), weights.data_ptr())
native_route = route_module._native_route
record = route_module._records.by_id[id(config)][1] if native_route is not None else None
why_not = "no: " + str(route_module.native.build_error())
print(f"compiled launcher: {'yes' if native_route is not None else why_not}")


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
    "compiled launcher's C++ call alone": (lambda: native_route(scores, bias, record, None))
    if record
    else None,
    "... with out=": (lambda: native_route(scores, bias, record, (ids, weights))) if record else None,
    "Python launcher (whole call)": lambda: route_module._route(scores, bias, config, None, ()),
    "Python launch() alone": lambda: route_module.launch(plan, scores, bias, config, ids, weights),
    "launch_route_kernel (ctypes driver call)": lambda: launch_route_kernel(kernel.ptr, *args),
    "check_inputs": lambda: check_inputs(scores, bias, config),
    "dispatch_plan": lambda: dispatch_plan(config, scores.dtype),
    "torch.empty x2 (cuda)": lambda: (
        torch.empty((1, 9), dtype=torch.int32, device="cuda"),
        torch.empty((1, 9), device="cuda"),
    ),
    "torch._C._cuda_getCurrentRawStream": lambda: torch._C._cuda_getCurrentRawStream(0),
}
import cupy  # noqa: E402

empty = cupy.RawKernel('extern "C" __global__ void e() {}', "e")
pieces["empty kernel via CuPy call"] = lambda: empty((1,), (32,), ())
for name, fn in pieces.items():
    if fn is not None:
        print(f"{name:42s} {median_us(fn):7.2f} us", flush=True)

# The same call through `moegate bench --host`'s timer (1000 calls, a synchronize every 50), directly and
# through the bench's Impl wrapper, before and after capturing route in a CUDA graph (the bench times the
# kernel in a graph before it times the host path).
from moegate.properties.benchmark_timers import time_host  # noqa: E402
from moegate.properties.impls import load_impl  # noqa: E402

impl = load_impl("optimized")
device = torch.device("cuda")


def host_median(fn) -> float:
    return statistics.median(time_host(fn, (scores, bias), device)) * 1e6


print(f"{'time_host: route':42s} {host_median(lambda s, b: optimized.route(s, b, config)):7.2f} us")
print(f"{'time_host: Impl(route)':42s} {host_median(lambda s, b: impl(s, b, config)):7.2f} us")
side = torch.cuda.Stream()
side.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(side):
    optimized.route(scores, bias, config)
torch.cuda.current_stream().wait_stream(side)
graph = torch.cuda.CUDAGraph()
with torch.cuda.graph(graph):
    optimized.route(scores, bias, config)
graph.replay()
torch.cuda.synchronize()
after = host_median(lambda s, b: impl(s, b, config))
print(f"{'time_host: Impl(route), after a graph capture':42s} {after:7.2f} us")
