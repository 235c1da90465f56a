"""`moegate bench`: time an implementation's route() at a few batch sizes."""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from .. import fixtures as fx
from .common import (
    IMPL_HELP,
    ImplFailed,
    Out,
    add_common,
    nonneg_int,
    pos_int,
    resolve_device,
    resolve_impl,
    table,
    usage,
)


def cmd_bench(args: argparse.Namespace, out: Out) -> int:
    impl = resolve_impl(args.impl)
    device = resolve_device(args.device, impl)
    preset = usage(fx.resolve_presets, [args.preset])[0]
    dtype = usage(fx.parse_dtype, args.dtype)
    dev = torch.device(device)
    row_counts = args.rows or ([1, 64, 1024, 16384] if dev.type == "cuda" else [1, 64, 1024, 4096])
    timer = "CUDA events" if dev.type == "cuda" else "time.perf_counter"
    out(
        f"bench: impl {impl.name!r}, preset {preset}, scores {fx.dtype_name(dtype)}, "
        f"on {fx.device_name(dev)}; "
        f"median of {args.repeats} calls after {args.warmup} warm-up calls, timed with {timer}"
    )
    results = []
    for t in row_counts:
        p = fx.preset_problem(preset, dtype, t, seed=t, device=dev)
        try:
            for _ in range(args.warmup):
                impl(p.scores, p.bias, p.config)
            times = []
            for _ in range(args.repeats):
                if dev.type == "cuda":
                    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    begin.record()
                    impl(p.scores, p.bias, p.config)
                    end.record()
                    end.synchronize()
                    times.append(begin.elapsed_time(end) * 1e-3)
                else:
                    s = time.perf_counter()
                    impl(p.scores, p.bias, p.config)
                    times.append(time.perf_counter() - s)
        except Exception as exc:
            raise ImplFailed(
                f"bench: impl {impl.name!r} raised at T={t}: {type(exc).__name__}: {exc}"
            ) from exc
        times.sort()
        median = times[len(times) // 2]
        results.append(
            {
                "rows": t,
                "median_us": median * 1e6,
                "min_us": times[0] * 1e6,
                "rows_per_s": t / median if median > 0 else None,
            }
        )
    table_rows = [
        (
            r["rows"],
            f"{r['median_us']:.1f}",
            f"{r['min_us']:.1f}",
            f"{r['rows_per_s']:.3g}" if r["rows_per_s"] else "-",
        )
        for r in results
    ]
    out(table(("T", "median us", "min us", "rows/s"), table_rows, (True, True, True, True)))
    if args.json:
        out.json(
            {
                "command": "bench",
                "ok": True,
                "impl": impl.name,
                "preset": preset,
                "device": device,
                "dtype": fx.dtype_name(dtype),
                "timer": timer,
                "results": results,
            }
        )
    return 0


def add_parser(sub: Any) -> None:
    """Add this command to the `moegate` subparsers."""
    p = sub.add_parser(
        "bench",
        help="time route() of an implementation at a few batch sizes",
        description="A minimal timing of one implementation's route(): median and minimum per call at a "
        "few T, with CUDA events on a GPU and time.perf_counter on the CPU. Not a benchmark suite.",
    )
    p.add_argument(
        "--impl", default=None, help=IMPL_HELP + " (default: optimized with a GPU, else reference)"
    )
    p.add_argument("--preset", default="deepseek-v3", help="preset (default: %(default)s)")
    p.add_argument("--rows", type=nonneg_int, nargs="+", metavar="T", help="batch sizes T")
    p.add_argument("--dtype", default="bfloat16", help="score dtype (default: %(default)s)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda for optimized, else cpu)")
    p.add_argument("--repeats", type=pos_int, default=20, help="timed calls per T (default 20)")
    p.add_argument("--warmup", type=nonneg_int, default=3, help="untimed calls first (default 3)")
    add_common(p)
    p.set_defaults(func=cmd_bench)
