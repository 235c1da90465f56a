"""Compiled launcher variants side by side on the host path (GPU machine; docs/perf.md).

    python tools/launcher_probe.py [--rounds 7] name=path/to/launcher.cpp ... [name=installed]

Builds each launcher.cpp variant with torch's extension loader (its own module name, from its digest;
"installed": the installed launcher, optimized/native.py's build),
registers DeepSeek-V3 bf16's kernels with each, checks that every variant gives the installed launcher's
output bitwise (on torch's current stream and on a side stream) and then times, in alternating rounds of
1000 calls, each variant's C++ call alone (`time_host`: the bench's host timer, Python to launch, a
synchronize every 50 calls outside the timed region) at T = 1, without and with `out=`. Prints each
variant's median over the rounds' medians.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import statistics
from pathlib import Path

import torch
from torch.utils import cpp_extension

from moegate import optimized
from moegate.optimized import PLAN_BOUND, PLAN_LATENCY, PLAN_THROUGHPUT, dispatch_plan, native
from moegate.optimized.build import get_kernel
from moegate.optimized.launch import resident_blocks_per_sm
from moegate.properties.benchmark_timers import time_host
from moegate.reference import get_preset

route_module = importlib.import_module("moegate.optimized.route")


def build(name: str, source: Path) -> object:
    digest = hashlib.sha256(source.read_bytes() + torch.__version__.encode()).hexdigest()[:12]
    directory = native.cache_dir() / "launcher_probe" / f"{name}_{digest}"
    directory.mkdir(parents=True, exist_ok=True)
    return cpp_extension.load(
        name=f"probe_{name}_{digest}",
        sources=[str(source)],
        extra_cflags=["-O2", "-std=c++17"],
        build_directory=str(directory),
        with_cuda=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("variants", nargs="+", help="name=path of a launcher.cpp, or name=installed")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    config = get_preset("deepseek-v3")
    scores = torch.randn(1, 256, device="cuda").to(torch.bfloat16)
    bias = (torch.randn(256, device="cuda") * 0.05).to(torch.bfloat16)
    ids = torch.empty((1, config.output_width), dtype=torch.int32, device="cuda")
    weights = torch.empty((1, config.output_width), device="cuda")
    want = optimized.route(scores, bias, config)  # compile, load, register with the installed launcher
    plan = dispatch_plan(config, scores.dtype)
    sm_count, programmatic = route_module._device_info(0)
    plans = (PLAN_THROUGHPUT, PLAN_LATENCY, PLAN_BOUND)
    functions = [get_kernel(plan.kernel_name(p), (), 0).ptr for p in plans]
    caps = [plan.cap_blocks_per_sm(resident_blocks_per_sm(f, plan.block, 0)) for f in functions]

    calls = {}
    for spec in args.variants:
        name, path = spec.split("=", 1)
        module = native.load_extension() if path == "installed" else build(name, Path(path))
        native.configure(module)
        try:
            record = native.make_record(module, config, plan)
        except TypeError:  # a launcher from before session 14: no bound_min_blocks_per_sm argument
            record = module.make_record(*native.make_record_arguments(config, plan)[:-1])
        try:
            module.set_kernels(record, 0, sm_count, int(programmatic), 1, *functions, *caps)
        except TypeError:  # a launcher from before session 15: no grid caps (8 blocks per SM for all)
            module.set_kernels(record, 0, sm_count, int(programmatic), 1, *functions)
        for stream in (torch.cuda.current_stream(), torch.cuda.Stream()):
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                got = module.route(scores, bias, record, None)
                ids.fill_(-7)
                weights.fill_(float("nan"))
                got_out = module.route(scores, bias, record, (ids, weights))
            torch.cuda.current_stream().wait_stream(stream)
            torch.cuda.synchronize()
            for pair in (got, got_out):
                same = torch.equal(pair[0], want[0]) and torch.equal(pair[1], want[1])
                assert same, f"{name}: output differs"
        calls[name] = (module.route, record)
        print(f"{name}: {path}, output bitwise the installed route's on two streams", flush=True)

    device = torch.device("cuda")
    medians: dict[str, list[float]] = {f"{n} {m}": [] for n in calls for m in ("alone", "out=")}
    for _ in range(args.rounds):
        for name, (fn, record) in calls.items():
            inputs = (scores, bias)
            alone = time_host(lambda s, b, fn=fn, record=record: fn(s, b, record, None), inputs, device)
            given = time_host(
                lambda s, b, fn=fn, record=record: fn(s, b, record, (ids, weights)), inputs, device
            )
            medians[f"{name} alone"].append(statistics.median(alone) * 1e6)
            medians[f"{name} out="].append(statistics.median(given) * 1e6)
    for key, values in medians.items():
        spread = f"{min(values):.2f} .. {max(values):.2f}"
        print(f"{key:28s} {statistics.median(values):7.2f} us (rounds {spread})", flush=True)


if __name__ == "__main__":
    main()
