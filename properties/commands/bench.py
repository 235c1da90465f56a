"""`moegate bench`: time implementations of route() over presets, dtypes and T beside the measured floors
(the measuring is `moegate.properties.benchmark`; this module parses, prints and writes)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .. import benchmark as bm
from .. import benchmark_report as report
from .. import fixtures as fx
from ..benchmark_targets import IMPL, evaluate_targets
from ..benchmark_timers import default_timer
from .common import (
    IMPL_HELP,
    Out,
    Progress,
    UsageError,
    add_common,
    pos_int,
    split_list,
    table,
    usage,
)

OUT_FILES = ("bench.json", "bench.png")
DEFAULT_REPLAYS = 5


def _check_out_dir(out_dir: str | None, force: bool) -> Path | None:
    """--out DIR, refused (before anything runs) where it would overwrite a file without --force."""
    if out_dir is None:
        return None
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out_dir}: exists and is not a directory")
    existing = [name for name in OUT_FILES if (path / name).exists()]
    if existing and not force:
        raise UsageError(f"--out {out_dir}: {' and '.join(existing)} exist; pass --force to overwrite")
    return path


def _write_out(path: Path, doc: dict[str, Any], out: Out) -> None:
    from ..benchmark_plot import write_plot

    path.mkdir(parents=True, exist_ok=True)
    (path / "bench.json").write_text(json.dumps(doc, indent=1) + "\n")
    png = path / "bench.png"
    try:
        write_plot(doc, png)
    except ImportError:
        png.unlink(missing_ok=True)  # only reached with --force: no stale figure beside the new JSON
        out(
            f"bench: wrote {path / 'bench.json'}; no bench.png: matplotlib is not installed "
            "(pip install 'moegate[bench]')"
        )
        return
    out(f"bench: wrote {path / 'bench.json'} and {png}")


def _load_run(path: str, flag: str) -> bm.BenchResult:
    """A saved run (bench.json, `--json`'s document) for --from/--against; UsageError naming the flag."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{flag} {path}: no such file")
    try:
        doc = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{flag} {path}: not a JSON document ({exc})") from None
    try:
        return bm.BenchResult.from_json(doc)
    except ValueError as exc:
        raise UsageError(f"{flag} {path}: {exc}") from None


# The options that choose what a run times: --from re-reports a saved run and takes none of them.
RUN_OPTIONS = ("impl", "peer", "preset", "dtype", "rows", "device", "replays", "host")


def _run(args: argparse.Namespace) -> bm.BenchResult:
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    device = usage(fx.check_device, args.device or default_device, "--device")
    on_gpu = device.type == "cuda"
    impls = split_list(args.impl) or list(bm.DEFAULT_GPU_IMPLS if on_gpu else bm.DEFAULT_CPU_IMPLS)
    peers = split_list(args.peer) or list(bm.PEER_NAMES)
    presets = usage(fx.resolve_presets, split_list(args.preset) or bm.DEFAULT_PRESETS)
    dtypes = [usage(fx.parse_dtype, d) for d in split_list(args.dtype) or ["bfloat16"]]
    row_counts = args.rows or list(bm.GPU_ROWS if on_gpu else bm.CPU_ROWS)

    progress = Progress(enabled=not args.quiet)

    def announce(line: str) -> None:  # what starts, on the progress stream (stderr)
        if progress.enabled:
            progress.stream.write(f"bench: {line}\n")
            progress.stream.flush()

    try:
        return usage(
            bm.run_benchmark,
            impls,
            presets,
            dtypes,
            row_counts,
            device=device,
            peers=peers,
            host=args.host,
            timer=default_timer(device, replays=args.replays or DEFAULT_REPLAYS),
            progress=progress,
            announce=announce,
        )
    finally:
        progress.close()


def cmd_bench(args: argparse.Namespace, out: Out) -> int:
    if args.from_file:
        given = [f"--{name}" for name in RUN_OPTIONS if getattr(args, name) not in (None, False)]
        if given:
            raise UsageError(
                f"--from {args.from_file} reports a saved run and times nothing: leave out "
                f"{' and '.join(given)}, or --from"
            )
    before = _load_run(args.against, "--against") if args.against else None
    out_dir = _check_out_dir(args.out, args.force)  # before anything is timed
    result = _load_run(args.from_file, "--from") if args.from_file else _run(args)

    if args.from_file:
        out(f"saved run: {args.from_file}")
    for line in report.header_lines(result):
        out(line)
    headers, right = report.TABLE_HEADERS, report.TABLE_RIGHT
    if before is not None:
        headers, right = (*headers, "vs before"), (*right, True)
        out(
            f"vs before: this run's time over the same row's in {args.against} ({before.card}, driver "
            f"{before.driver}{'' if before.card == result.card else '; ANOTHER CARD'})"
        )
    out(table(headers, report.table_rows(result, before), right))
    if result.host:
        out()
        out(
            f"host path: one eager call, Python to launch, time.perf_counter on the CPU side "
            f"({bm.HOST_CALLS} calls, no synchronize inside the timed region); then {bm.HOST_CALLS} calls "
            f"with the thread pinned to each CPU it may use (CPUs: how many; each CPU's median)"
        )
        out(table(report.HOST_HEADERS, report.host_table_rows(result), report.HOST_RIGHT))
    for line in report.notes(result):
        out(line)
    checks = evaluate_targets(result)
    if checks:
        out()
        for line in report.target_lines(checks, IMPL):
            out(line)
    doc = {
        "command": "bench",
        "ok": not result.errors,
        **result.to_json(),
        "targets": [asdict(c) for c in checks],
    }
    if out_dir is not None:
        _write_out(out_dir, doc, out)
    if args.json:
        out.json(doc)
    if result.errors and not args.from_file:
        out(f"bench: {len(result.errors)} row(s) raised (status 'error', listed above)")
        return 1
    return 0


def add_parser(sub: Any) -> None:
    """Add this command to the `moegate` subparsers."""
    p = sub.add_parser(
        "bench",
        help="time implementations of route() over presets, dtypes and T, beside the measured floors",
        description=(
            "Time route() of several implementations at each preset, dtype and batch size T. On a GPU: "
            "CUDA-graph replays over input sets rotated past the L2 cache (events where a graph cannot "
            "be captured), the copy floor (a kernel copy of a large float32 buffer, timed with events) "
            "and the launch floor (an empty kernel in a graph) measured in the same run. On the CPU: "
            "time.perf_counter. Prints a table (µs per call, ratio to the fastest peer, ratio to the "
            "floor max(bytes / copy bandwidth, launch floor)) and the speed targets of docs/perf.md judged "
            "on the run's rows; --out writes bench.json and bench.png; --from reports a saved run again, "
            "--against compares with one. Exit 1 when a call raised, 2 for bad usage or when no "
            "implementation can run here."
        ),
    )
    p.add_argument(
        "--impl",
        action="append",
        metavar="NAME",
        help=IMPL_HELP + "; also 'compile', 'flashinfer-default', 'flashinfer-cake', 'vllm'. Repeatable. "
        f"Default on a GPU: {', '.join(bm.DEFAULT_GPU_IMPLS)} (those that cannot load are listed as not "
        f"available); on the CPU: {', '.join(bm.DEFAULT_CPU_IMPLS)}",
    )
    p.add_argument(
        "--peer",
        action="append",
        metavar="NAME",
        help=f"an implementation that counts as a peer for 'vs peer' (repeatable; default "
        f"{', '.join(bm.PEER_NAMES)})",
    )
    p.add_argument(
        "--preset",
        action="append",
        metavar="NAME",
        help=f"preset, or 'all' (repeatable; default {', '.join(bm.DEFAULT_PRESETS)})",
    )
    p.add_argument(
        "--dtype", action="append", metavar="DTYPE", help="scores dtype (repeatable; default bfloat16)"
    )
    p.add_argument(
        "--rows",
        type=pos_int,
        nargs="+",
        metavar="T",
        help=f"batch sizes T (default {' '.join(map(str, bm.GPU_ROWS))} on a GPU, "
        f"{' '.join(map(str, bm.CPU_ROWS))} on the CPU)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when a GPU is visible)")
    p.add_argument(
        "--replays",
        type=pos_int,
        default=None,
        metavar="N",
        help="timed graph replays (or batches of calls) per row, of which the median "
        f"(default {DEFAULT_REPLAYS})",
    )
    p.add_argument(
        "--host",
        action="store_true",
        help=f"also time the host path: {bm.HOST_CALLS} eager calls at T = 1 of the first preset and dtype, "
        f"then {bm.HOST_CALLS} more with the thread pinned to each CPU it may use",
    )
    p.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="time nothing: report a saved run (a bench.json, or --json's output) again, with its targets; "
        "works without a GPU",
    )
    p.add_argument(
        "--against",
        metavar="FILE",
        help="a saved run to compare with: the table gains 'vs before', each row's time over the same "
        "(impl, preset, dtype, T)'s time there",
    )
    p.add_argument("--out", metavar="DIR", help="write bench.json and bench.png (the plot) into DIR")
    p.add_argument("--force", action="store_true", help="overwrite bench.json/bench.png in --out DIR")
    add_common(p)
    p.set_defaults(func=cmd_bench)
