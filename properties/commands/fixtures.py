"""`moegate fixtures record` and `moegate fixtures check`: regression fixture sets."""

from __future__ import annotations

import argparse
from typing import Any

from .. import fixtures as fx
from .common import (
    IMPL_HELP,
    ImplFailed,
    Out,
    Progress,
    UsageError,
    add_common,
    nonneg_int,
    pos_int,
    resolve_device,
    resolve_impl,
    split_list,
    usage,
)


def _writable(out_dir: str, force: bool) -> None:
    """UsageError unless `fixtures record` may write a set at `out_dir` (see fx.check_target)."""
    try:
        fx.check_target(out_dir, force)
    except fx.FixtureSetExistsError as exc:
        if exc.needs_force:
            raise UsageError(f"{exc.path} already holds a fixture set; pass --force to replace it") from exc
        raise UsageError(str(exc)) from exc


def cmd_fixtures_record(args: argparse.Namespace, out: Out) -> int:
    impl = resolve_impl(args.impl or "reference")
    device = resolve_device(args.device, impl)
    presets = usage(fx.resolve_presets, split_list(args.preset) or ["all"])
    dtypes = [usage(fx.parse_dtype, d) for d in split_list(args.dtypes)] or list(fx.DTYPES.values())
    _writable(args.out, args.force)  # before recording: refuse now rather than after the work
    problems = fx.preset_cases_problems(presets, dtypes, args.rows, args.seed)
    if args.edge_cases:
        problems += fx.edge_problems(args.seed)
    # A peer records what it accepts: its contract's flags and bias dtype; the rest is listed, not recorded.
    problems, skipped = fx.fit_to_contract(problems, impl.contract)
    for line in skipped:
        out(f"skipped {line}")
    if not problems:
        raise UsageError(f"impl {impl.name!r} accepts none of the cases asked for ({len(skipped)} skipped)")
    progress = Progress(enabled=not args.quiet)
    try:
        cases = fx.record_problems(problems, impl, device=device, progress=progress)
    except Exception as exc:
        raise ImplFailed(f"recording with impl {impl.name!r} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        progress.close()
    _writable(args.out, args.force)
    manifest = usage(
        fx.write_fixture_set,
        args.out,
        cases,
        description=f"moegate fixtures record --impl {impl.name} --seed {args.seed}",
        force=args.force,
    )
    total = manifest.stat().st_size + sum((manifest.parent / c.file_name).stat().st_size for c in cases)
    ties = sum(int(c.tie_rows.sum()) for c in cases)
    out(
        f"recorded {len(cases)} cases ({sum(c.problem.num_rows for c in cases)} rows, {ties} tie rows, "
        f"{total / 1e6:.2f} MB) with impl {impl.name!r} on {device} into {args.out}"
    )
    if args.json:
        out.json(
            {
                "command": "fixtures record",
                "ok": True,
                "manifest": str(manifest),
                "cases": len(cases),
                "skipped": skipped,
                "bytes": total,
            }
        )
    return 0


def cmd_fixtures_check(args: argparse.Namespace, out: Out) -> int:
    impl = resolve_impl(args.impl)
    device = resolve_device(args.device, impl)
    usage(fx.read_manifest, args.dir)  # a damaged set: one line naming the file and the problem, exit 2
    progress = Progress(enabled=not args.quiet)
    try:
        report = usage(fx.check_fixture_set, args.dir, impl, device=device, progress=progress)
    finally:
        progress.close()
    out(report.format(max_rows=args.max_rows))
    if args.json:
        out.json({"command": "fixtures check", **report.to_dict()})
    return 0 if report.ok else 1


def add_parser(sub: Any) -> None:
    """Add this command to the `moegate` subparsers."""
    p = sub.add_parser(
        "fixtures",
        help="record or check regression fixtures",
        description="Record an implementation's outputs as a fixture set, or check one against them.",
    )
    fsub = p.add_subparsers(dest="fixtures_command", metavar="ACTION", required=True)
    r = fsub.add_parser(
        "record",
        help="record a fixture set",
        description="Route random inputs of presets (and optionally the edge sets) through an "
        "implementation and write inputs, outputs and tie flags as a fixture set.",
    )
    r.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="directory to write (created if needed); a directory that holds a fixture set is replaced "
        "only with --force",
    )
    r.add_argument(
        "--force",
        action="store_true",
        help="replace the fixture set in --out as a whole (its manifest.json and *.safetensors; other "
        "files there are kept). The new set is written beside it and swapped in at the end, so an "
        "interrupted record leaves the old set as it was",
    )
    r.add_argument(
        "--preset", action="append", metavar="NAME|all", help="presets to record (repeatable; default all)"
    )
    r.add_argument(
        "--edge-cases", action="store_true", help="also record the edge sets (ties, NaN/inf, T=0, ...)"
    )
    r.add_argument("--impl", default=None, help=IMPL_HELP + " (default: reference)")
    r.add_argument(
        "--rows", type=nonneg_int, default=64, metavar="N", help="rows per preset case (default 64)"
    )
    r.add_argument(
        "--dtypes",
        action="append",
        metavar="DTYPES",
        help="score dtypes, comma-separated or repeated (default: all three)",
    )
    r.add_argument("--seed", type=nonneg_int, default=0, help="base seed (default 0)")
    r.add_argument(
        "--device", default=None, help="device to run the impl on (default: cuda for optimized, else cpu)"
    )
    add_common(r)
    r.set_defaults(func=cmd_fixtures_record)
    c = fsub.add_parser(
        "check",
        help="replay a fixture set through an implementation",
        description="Replay every case's inputs through an implementation: ids exact except in flagged "
        "tie rows, weights within the differential tolerances. One line per file; failures show the "
        "first mismatching rows.",
    )
    c.add_argument("dir", metavar="DIR", help="a fixture set directory (holding manifest.json)")
    c.add_argument(
        "--impl", default=None, help=IMPL_HELP + " (default: optimized with a GPU, else reference)"
    )
    c.add_argument(
        "--device", default=None, help="device to replay on (default: cuda for optimized, else cpu)"
    )
    c.add_argument("--max-rows", type=pos_int, default=5, metavar="N", help="mismatching rows shown per file")
    add_common(c)
    c.set_defaults(func=cmd_fixtures_check)
