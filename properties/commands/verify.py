"""`moegate verify`: the property suite against an implementation, with the golden fixtures and the mutant
panel when no implementation is named and no GPU is usable."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path
from typing import Any

import torch

from moegate.reference import get_preset

from .. import fixtures as fx
from ..failures import save_failures
from ..impls import Impl, gpu_unavailable_reason
from ..strategies import BIAS_KINDS, ROW_KINDS
from .common import (
    GOLDEN_ENV,
    IMPL_HELP,
    PROFILES,
    ImplFailed,
    Out,
    Progress,
    UsageError,
    add_common,
    golden_fixture_dir,
    nonneg_int,
    pos_int,
    resolve_device,
    resolve_impl,
    split_list,
    usage,
)
from .mutants import mutant_dict, run_mutants


def _narrowing(args: argparse.Namespace, impl: Impl) -> dict[str, Any]:
    """verify's contract arguments from the command line: the kinds and limits that narrow what is drawn
    (the implementation's own contract is added by verify's caller)."""
    del impl
    return {
        "row_kinds": split_list(args.row_kinds) or None,
        "bias_kinds": split_list(args.bias_kinds) or None,
        "limits": tuple(args.limit or ()),
    }


def _verify_in_workers(
    args: argparse.Namespace,
    impl: Impl,
    device: str,
    configs: list[Any] | None,
    profile: str,
    dtypes: list[Any] | None,
    progress: Progress,
    out: Out,
) -> Any:
    """`verify --workers N` (N > 1): properties/parallel.py, one merged report; a worker that raises
    outside a property or dies is exit 1 with one line."""
    from ..parallel import WorkerError, verify_parallel

    try:
        report = verify_parallel(
            impl.name,
            workers=args.workers,
            device=device,
            configs=configs,
            max_examples=args.examples,
            profile=profile,
            dtypes=dtypes,
            seed=args.seed,
            impl_name=impl.name,
            progress=progress,
            **_narrowing(args, impl),
        )
    except WorkerError as exc:
        raise ImplFailed(str(exc).replace("\n", " ")) from exc
    info = report.extra["workers"]
    out(
        f"{info['count']} workers ({info['threads_per_worker']} CPU threads each) on "
        f"{', '.join(info['devices'])}: {info['tasks']} tasks"
    )
    return report


def cmd_verify(args: argparse.Namespace, out: Out) -> int:
    explicit = args.impl is not None
    impl = resolve_impl(args.impl)
    device = resolve_device(args.device, impl)
    configs = [get_preset(n) for n in usage(fx.resolve_presets, args.preset)] if args.preset else None
    dtypes = [usage(fx.parse_dtype, d) for d in split_list(args.dtype)] or None
    profile = args.profile or ("ci" if torch.device(device).type == "cpu" else "dev")
    full_cpu_run = not explicit and impl.name == "reference"
    notes = []
    if full_cpu_run:
        notes.append(
            f"no usable GPU ({gpu_unavailable_reason()}): verifying the reference against the property "
            "suite and the golden fixtures, then running the mutant panel"
        )
    elif impl.name == "optimized":
        notes.append(
            f"verifying the fused kernel (optimized) against the reference on {fx.device_name(device)}"
        )
    elif impl.contract is not None:
        notes.append(f"verifying {impl.name} on {fx.device_name(device)}, judged on its declared contract")
    for note in notes:
        out(note)
    # parallel is imported for one worker too: Hypothesis draws with a bias towards the constants of the
    # local modules loaded, so the in-process run and the workers must have loaded the same ones.
    from .. import parallel  # noqa: F401
    from .. import suite as verify_mod

    if impl.prepare is not None:  # build (or load from the cache) before the first example
        try:
            impl.prepare(device)
        except ValueError as exc:
            raise UsageError(f"{impl.name} cannot run here: {exc}") from exc

    progress = Progress(enabled=not args.quiet)
    start = time.perf_counter()
    try:
        if args.workers > 1:
            report = _verify_in_workers(args, impl, device, configs, profile, dtypes, progress, out)
        else:
            report = verify_mod.verify(
                impl.fn,
                configs=configs,
                max_examples=args.examples,
                device=device,
                profile=profile,
                dtypes=dtypes,
                progress=progress,
                seed=args.seed,
                impl_name=impl.name,
                contract=impl.contract,
                **_narrowing(args, impl),
            )
    except ValueError as exc:  # a preset or dtype the contract does not accept, a bad kind or limit
        raise UsageError(str(exc)) from exc
    finally:
        progress.close()
    ok = bool(report.ok)
    saved = None
    if not ok:
        # Saved first, so that each failure's report can say where its full example is.
        saved = save_failures(
            report.results,
            impl.fn,
            impl.name,
            device,
            Path(args.failures_dir),
            context=f"`moegate verify --impl {impl.name}`",
        )
    doc: dict[str, Any] = {
        "command": "verify",
        "impl": impl.name,
        "device": device,
        "profile": profile,
        "workers": report.extra.get("workers", {"count": 1, "devices": [device]}),
        "notes": notes,
        "report": report.to_dict(),
    }
    out(report.format(verbose=args.verbose))
    if saved is not None:
        for e in saved.errors:
            out(e)
        if saved.directory is not None:
            fail_dir = saved.directory
            replay = shlex.join(
                ["moegate", "fixtures", "check", str(fail_dir), "--impl", impl.name, "--device", device]
            )
            out("")
            out(
                f"shrunk counterexamples saved to {fail_dir}/ as a fixture set (expected outputs from the "
                "reference), with a replay script per property (whole tensors)"
            )
            out(f"replay them all against the reference: {replay}")
            doc["failure_fixture_dir"] = str(fail_dir)
            doc["replay"] = replay
    if not explicit:
        golden = golden_fixture_dir()
        if golden is None:
            out(f"golden fixtures not found (set ${GOLDEN_ENV} or run from a source checkout): skipped")
            doc["fixtures"] = None
        else:
            fixture_report = usage(fx.check_fixture_set, golden, impl, device=device, progress=progress)
            out(fixture_report.format(verbose=False))
            doc["fixtures"] = fixture_report.to_dict()
            ok = ok and fixture_report.ok
    if full_cpu_run:
        results, mutants_ok = run_mutants(None, args.examples, profile, out, progress)
        doc["mutants"] = [mutant_dict(r) for r in results]
        ok = ok and mutants_ok
    doc["ok"] = ok
    out(f"verify: {'PASS' if ok else 'FAIL'} ({time.perf_counter() - start:.1f}s)")
    if args.json:
        out.json(doc)
    return 0 if ok else 1


def add_parser(sub: Any) -> None:
    """Add this command to the `moegate` subparsers."""
    p = sub.add_parser(
        "verify",
        help="run the property suite against an implementation",
        description="Run the property suite against an implementation. Without --impl: the fused kernel "
        "when a CUDA GPU and CuPy are usable; otherwise the reference, the golden fixtures and the "
        "mutant panel. A failure's shrunk example is saved as a fixture set, with its replay command.",
    )
    p.add_argument(
        "--impl", default=None, help=IMPL_HELP + " (default: optimized with a GPU, else reference)"
    )
    p.add_argument(
        "--preset", action="append", metavar="NAME", help="verify on these presets only (repeatable; 'all')"
    )
    p.add_argument("--examples", type=pos_int, default=None, metavar="N", help="examples per property")
    p.add_argument(
        "--profile", choices=PROFILES, default=None, help="example budget (default: ci on CPU, dev on GPU)"
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda for optimized, else cpu)")
    p.add_argument(
        "--dtype", action="append", metavar="DTYPE", help="score dtypes: float32, bfloat16, float16"
    )
    p.add_argument(
        "--seed", type=nonneg_int, default=None, help="Hypothesis seed (reproducible dev/deep runs)"
    )
    p.add_argument(
        "--row-kinds",
        action="append",
        metavar="KINDS",
        help="draw only these kinds of logit rows (comma-separated: " + ", ".join(ROW_KINDS) + ")",
    )
    p.add_argument(
        "--bias-kinds",
        action="append",
        metavar="KINDS",
        help="draw only these kinds of bias (comma-separated: " + ", ".join(BIAS_KINDS) + ")",
    )
    p.add_argument(
        "--limit",
        action="append",
        metavar="EXPR",
        help="narrow the drawn shapes (repeatable), e.g. 'G <= 8' or 'n >= 2'; names E, G, Kg, K, n = E / G",
    )
    p.add_argument(
        "--workers",
        type=pos_int,
        default=1,
        metavar="N",
        help="run the properties in N worker processes (spawned; with --device cuda and several GPUs, "
        "one GPU per worker) and merge their reports; default 1: in this process",
    )
    p.add_argument(
        "--failures-dir",
        default="moegate-failures",
        metavar="DIR",
        help="where shrunk counterexamples go, in a timestamped folder (default: %(default)s)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print each failure in full: Hypothesis' falsifying example and the replay snippet, whole "
        "tensors included (by default they go to the saved files)",
    )
    add_common(p)
    p.set_defaults(func=cmd_verify)
