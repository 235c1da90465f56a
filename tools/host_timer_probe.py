"""Why two host timers disagree on the same eager call (GPU machine; docs/perf.md, session 14).

    python tools/host_timer_probe.py

tools/host_path_probe.py's own loop (2000 calls, a synchronize every 100) measured `route` at 5.7 us, and
`time_host` (the bench's: 1000 calls, a synchronize every 50, 20 warm-up calls) at 9 to 11 us in the same
process. This alternates the two loops, and variants of each that differ in one thing (the synchronize
cadence, the result kept until the next call instead of freed inside the timed region), on the same call
(T = 1, DeepSeek-V3 bf16), and prints each one's median and quartiles over three rounds.
"""

import statistics
import time

import torch

from moegate import optimized
from moegate.reference import get_preset

config = get_preset("deepseek-v3")
scores = torch.randn(1, 256, device="cuda").to(torch.bfloat16)
bias = (torch.randn(256, device="cuda") * 0.05).to(torch.bfloat16)
optimized.route(scores, bias, config)


def loop(calls: int, sync_every: int, sync_before: bool, keep: bool) -> list[float]:
    """sync_before: synchronize at the top of every sync_every-th call (host_path_probe's loop), else
    after it (time_host's). keep: hold the result until the next call (freed outside the timed region)."""
    samples = []
    held = None
    for _ in range(20):
        optimized.route(scores, bias, config)
    torch.cuda.synchronize()
    for i in range(calls):
        if sync_before and i % sync_every == 0:
            torch.cuda.synchronize()
        start = time.perf_counter()
        if keep:
            held = optimized.route(scores, bias, config)
        else:
            optimized.route(scores, bias, config)
        samples.append(time.perf_counter() - start)
        if not sync_before and (i + 1) % sync_every == 0:
            torch.cuda.synchronize()
        if keep:
            del held
    torch.cuda.synchronize()
    return samples


variants = {
    "probe loop (2000, sync before every 100)": (2000, 100, True, False),
    "time_host loop (1000, sync after every 50)": (1000, 50, False, False),
    "time_host loop, sync after every 100": (1000, 100, False, False),
    "time_host loop, sync after every 10": (1000, 10, False, False),
    "probe loop, sync before every 50": (2000, 50, True, False),
    "time_host loop, result freed outside": (1000, 50, False, True),
}
results: dict[str, list[float]] = {k: [] for k in variants}
for _ in range(3):
    for name, spec in variants.items():
        results[name].extend(loop(*spec))
for name, samples in results.items():
    q = statistics.quantiles(samples, n=4)
    print(
        f"{name:46s} median {statistics.median(samples) * 1e6:6.2f} us "
        f"(quartiles {q[0] * 1e6:.2f} .. {q[2] * 1e6:.2f})",
        flush=True,
    )
