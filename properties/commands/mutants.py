"""`moegate mutants`: the panel of planted bugs the property suite must kill."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .common import (
    PROFILES,
    Out,
    Progress,
    UsageError,
    add_common,
    pos_int,
    split_list,
    table,
)


def mutant_dict(r: Any) -> dict[str, Any]:
    return {
        "name": r.name,
        "description": r.description,
        "killed": bool(r.killed),
        "killed_by": r.killed_by,
        "examples": r.examples,
        "seconds": round(float(r.seconds), 3),
    }


def mutant_names() -> list[str]:
    from .. import mutants

    return list(mutants.MUTANTS)


def run_mutants(
    names: list[str] | None, examples: int | None, profile: str | None, out: Out, progress: Progress
) -> tuple[list, bool]:
    """Run the panel one mutant at a time (a progress step per mutant), print its table; (results, ok)."""
    from .. import mutants

    known = mutant_names()
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise UsageError(f"--mutant {unknown[0]!r} is not a known mutant; valid names: {', '.join(known)}")
    selected = names or known
    start = time.perf_counter()
    results = []
    try:
        for i, name in enumerate(selected):
            results += mutants.run_mutant_panel(names=[name], max_examples=examples, profile=profile)
            progress("mutants", i + 1, len(selected))
    finally:
        progress.close()
    rows = [
        (
            r.name,
            "killed" if r.killed else "SURVIVED",
            r.killed_by or "-",
            r.examples,
            f"{r.seconds:.2f}",
            r.description,
        )
        for r in results
    ]
    survived = [r.name for r in results if not r.killed]
    out(f"mutant panel: {len(selected)} planted bugs ({time.perf_counter() - start:.1f}s)")
    out(
        table(
            ("mutant", "status", "killed by", "examples", "seconds", "bug"),
            rows,
            (False, False, False, True, True, False),
        )
    )
    verdict = "all killed" if not survived else f"{len(survived)} SURVIVED: {', '.join(survived)}"
    out(f"mutants: {len(results) - len(survived)}/{len(results)} killed; {verdict}")
    return results, not survived


def cmd_mutants(args: argparse.Namespace, out: Out) -> int:
    progress = Progress(enabled=not args.quiet)
    results, ok = run_mutants(split_list(args.mutant) or None, args.examples, args.profile, out, progress)
    if args.json:
        out.json({"command": "mutants", "ok": ok, "mutants": [mutant_dict(r) for r in results]})
    return 0 if ok else 1


def add_parser(sub: Any) -> None:
    """Add this command to the `moegate` subparsers."""
    p = sub.add_parser(
        "mutants",
        help="run the mutant panel: planted bugs the suite must kill",
        description="Run every planted bug (mutant) through the property suite; each must be killed.",
    )
    p.add_argument("--examples", type=pos_int, default=None, metavar="N", help="examples per property")
    p.add_argument("--mutant", action="append", metavar="NAME", help="run only these mutants (repeatable)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="example budget (default: ci)")
    add_common(p)
    p.set_defaults(func=cmd_mutants)
