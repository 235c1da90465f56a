"""Whether the host path's process-to-process spread follows the CPU a process runs on (GPU machine;
docs/perf.md, session 15).

    python tools/host_cpu_probe.py [--rounds 3] [--calls 1000]

Session 14 measured the same eager call (T = 1, DeepSeek-V3 bf16, `moegate bench`'s `time_host`) at 5.2 to
6.2 us in one process and 8.9 to 9.7 us in another on the same machine. This moves the calling thread to
each CPU the process may use in turn (os.sched_setaffinity, after torch and the kernels are loaded) and
times the call there, in alternating rounds; then, with the process's own affinity restored, once more.
It prints each CPU's median per round and the CPUs ordered by their median over the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch

from moegate import optimized
from moegate.properties.benchmark_timers import time_host
from moegate.reference import get_preset


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    config = get_preset("deepseek-v3")
    device = torch.device("cuda")
    scores = torch.randn(1, 256, device=device).to(torch.bfloat16)
    bias = (torch.randn(256, device=device) * 0.05).to(torch.bfloat16)
    optimized.route(scores, bias, config)  # compile, load, register with the compiled launcher
    allowed = sorted(os.sched_getaffinity(0))
    print(f"pid {os.getpid()}, CPUs allowed: {allowed}", flush=True)

    def median_us() -> float:
        samples = time_host(optimized.route, (scores, bias, config), device, calls=args.calls)
        return statistics.median(samples) * 1e6

    before = median_us()
    print(f"own affinity, before: {before:.2f} us", flush=True)
    medians: dict[int, list[float]] = {cpu: [] for cpu in allowed}
    try:
        for round_index in range(args.rounds):
            line = []
            for cpu in allowed:
                os.sched_setaffinity(0, {cpu})
                medians[cpu].append(median_us())
                line.append(f"{cpu}:{medians[cpu][-1]:.2f}")
            print(f"round {round_index}: " + " ".join(line), flush=True)
    finally:
        os.sched_setaffinity(0, set(allowed))
    after = median_us()
    print(f"own affinity, after: {after:.2f} us", flush=True)
    ranked = sorted(allowed, key=lambda cpu: statistics.median(medians[cpu]))
    for cpu in ranked:
        values = ", ".join(f"{v:.2f}" for v in medians[cpu])
        median = statistics.median(medians[cpu])
        print(f"cpu {cpu:3d}: median {median:6.2f} us  (rounds {values})", flush=True)


if __name__ == "__main__":
    main()
