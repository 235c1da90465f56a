"""The `moegate` command (also `python -m moegate.properties`).

    moegate verify    [--impl reference|optimized|module:function] [--preset NAME ...] [--examples N]
                      [--profile ci|dev|deep] [--device cpu|cuda] [--dtype ...] [--workers N] [--json]
    moegate mutants   [--examples N] [--mutant NAME ...] [--json]
    moegate fixtures record --out DIR [--force] [--preset NAME|all ...] [--edge-cases] [--impl ...]
                      [--rows N] [--dtypes ...] [--seed N] [--device ...] [--json]
    moegate fixtures check DIR [--impl ...] [--device ...] [--max-rows N] [--json]
    moegate presets   [--json]
    moegate bench     [--impl NAME ...] [--peer NAME ...] [--preset NAME|all ...] [--dtype ...] [--rows T ...]
                      [--device ...] [--replays N] [--host] [--out DIR [--force]] [--json]

Exit codes: 0 everything passed; 1 a property or a fixture failed, or a mutant survived; 2 bad usage or
bad input (argparse errors, unknown preset or impl, an impl that cannot be imported, a missing or
damaged fixture set, an existing set without --force), with one line on stderr. With `--json`, stdout
holds one JSON document and nothing else; progress (tqdm bars on a terminal, plain lines otherwise) and
notes go to stderr.

`main(argv)` returns the exit code, so tests call it in-process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import fixtures as fx
from .commands import bench, fixtures, mutants, peers, presets, verify
from .commands.common import PROG, ImplFailed, Out, Parser, Progress, UsageError

__all__ = ["Progress", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The `moegate` argument parser (every level has --help); each command adds its own subparser."""
    parser = Parser(
        prog=PROG,
        description="Reference-vs-optimized verification of MoE routing kernels (SPEC.md).",
        epilog="Exit codes: 0 pass, 1 a property/fixture failed or a mutant survived, 2 bad usage or input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {fx.moegate_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (verify, mutants, fixtures, peers, presets, bench):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `moegate` command with `argv` (default sys.argv[1:]); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help / --version (0) or a usage error (2, already printed)
        return int(exc.code) if isinstance(exc.code, int) else 2
    out = Out(json_mode=getattr(args, "json", False))
    command = f"{PROG} {args.command}" + (f" {args.fixtures_command}" if args.command == "fixtures" else "")
    try:
        return int(args.func(args, out))
    except UsageError as exc:
        sys.stderr.write(f"{command}: error: {exc}\n")
        return 2
    except ImplFailed as exc:
        sys.stderr.write(f"{command}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{command}: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
