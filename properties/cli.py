"""The `moegate` command (also `python -m moegate.properties`).

    moegate verify    [--impl reference|optimized|module:function] [--preset NAME ...] [--examples N]
                      [--profile ci|dev|deep] [--device cpu|cuda] [--dtype ...] [--json]
    moegate mutants   [--examples N] [--mutant NAME ...] [--json]
    moegate fixtures record --out DIR [--preset NAME|all ...] [--edge-cases] [--impl ...] [--rows N]
                      [--dtypes ...] [--seed N] [--device ...] [--json]
    moegate fixtures check DIR [--impl ...] [--device ...] [--max-rows N] [--json]
    moegate presets   [--json]
    moegate bench     [--impl ...] [--preset NAME] [--rows T ...] [--dtype ...] [--device ...] [--json]

Exit codes: 0 everything passed; 1 a property or a fixture failed, or a mutant survived; 2 bad usage or
bad input (argparse errors, unknown preset or impl, an impl that cannot be imported, a missing fixture
directory), with one line on stderr. With `--json`, stdout holds one JSON document and nothing else;
progress (tqdm bars on a terminal, plain lines otherwise) and notes go to stderr.

`main(argv)` returns the exit code, so tests call it in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn, TextIO

import torch

from moegate.reference import PRESET_HAS_BIAS, get_preset, preset_names

from . import fixtures as fx
from .impls import Impl, default_impl_name, gpu_unavailable_reason, load_impl

PROG = "moegate"
GOLDEN_ENV = "MOEGATE_GOLDEN_DIR"
PROFILES = ("ci", "dev", "deep")

# Where each preset's values come from (the published config.json the preset's comment in
# moegate/reference/presets.py cites). Kept here until reference/ grows its own table.
PRESET_SOURCES: dict[str, str] = {
    "deepseek-v3": "deepseek-ai/DeepSeek-V3 (and -R1) config.json",
    "deepseek-v2": "deepseek-ai/DeepSeek-V2 config.json",
    "deepseek-v2-lite": "deepseek-ai/DeepSeek-V2-Lite config.json",
    "kimi-k2": "moonshotai/Kimi-K2-Instruct config.json",
    "moonlight-16b-a3b": "moonshotai/Moonlight-16B-A3B config.json",
    "glm-4.5": "zai-org/GLM-4.5 config.json",
    "glm-4.5-air": "zai-org/GLM-4.5-Air config.json",
    "qwen3-moe": "Qwen/Qwen3-30B-A3B, Qwen/Qwen3-235B-A22B config.json",
    "qwen3-next-80b-a3b": "Qwen/Qwen3-Next-80B-A3B-Instruct config.json",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-v0.1 config.json",
    "gpt-oss-120b": "openai/gpt-oss-120b config.json",
    "llama-4-maverick": "meta-llama/Llama-4-Maverick-17B-128E config.json",
}


class UsageError(Exception):
    """Bad usage or bad input: main prints one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


# ---- helpers --------------------------------------------------------------------------------------------


def golden_fixture_dir() -> Path | None:
    """The golden fixture set: $MOEGATE_GOLDEN_DIR, else `tests/fixtures` of the source checkout this
    package runs from (an editable install); None when neither holds a manifest (e.g. a wheel install)."""
    env = os.environ.get(GOLDEN_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent.parent / "tests" / "fixtures")
    for c in candidates:
        if (c / fx.MANIFEST_NAME).is_file():
            return c
    return None


class Progress:
    """`progress(name, done, total)` callbacks shown on `stream`: a tqdm bar per name on a terminal,
    one plain line per finished name otherwise; nothing when disabled."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bars: dict[str, Any] = {}
        self.reported: set[str] = set()
        self.started = time.perf_counter()

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if not self.enabled or name in self.reported:  # shrinking calls past the total: nothing more
            return
        finished = total is not None and done >= total
        if self.tty:
            from tqdm import tqdm

            bar = self.bars.get(name)
            if bar is None:
                bar = self.bars[name] = tqdm(total=total, desc=name, file=self.stream, leave=False)
            bar.total = total
            bar.n = done
            bar.refresh()
            if finished:
                self.reported.add(name)
                bar.close()
                del self.bars[name]
        elif finished:
            self.reported.add(name)
            elapsed = time.perf_counter() - self.started
            self.stream.write(f"  [{elapsed:6.1f}s] {name}: {done}/{total}\n")
            self.stream.flush()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


class Out:
    """Human output: stdout normally; stderr under --json (stdout then holds only the JSON)."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode

    def __call__(self, text: str = "") -> None:
        stream = sys.stderr if self.json_mode else sys.stdout
        stream.write(text + "\n")
        stream.flush()

    def json(self, doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc, indent=1, default=str) + "\n")
        sys.stdout.flush()


def _usage(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call fn; turn ValueError/TypeError (bad argument values) into UsageError."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative, but it must be >= 0")
    return value


def _pos_int(text: str) -> int:
    value = _nonneg_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}, but it must be >= 1")
    return value


def _split_list(values: Sequence[str] | None) -> list[str]:
    """`--dtypes bf16,fp32 float16` -> ["bf16", "fp32", "float16"]."""
    return [v for item in values or [] for v in item.split(",") if v.strip()]


def _resolve_impl(spec: str | None) -> Impl:
    return _usage(load_impl, spec if spec is not None else default_impl_name())


def _resolve_device(device: str | None, impl: Impl) -> str:
    dev = _usage(fx.check_device, device if device is not None else impl.default_device, "--device")
    if impl.name == "optimized":
        if dev.type != "cuda":
            raise UsageError(
                f"--device {dev}, but impl 'optimized' (the fused kernel) runs on CUDA tensors only"
            )
        reason = gpu_unavailable_reason()
        if reason is not None:
            raise UsageError(f"impl 'optimized' needs a CUDA GPU and CuPy, but {reason}")
    return str(dev)


def _timestamp_dir(root: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    return path


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for j, row in enumerate(cells):
        parts = [
            c.rjust(w) if right[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---- verify ---------------------------------------------------------------------------------------------


def _save_failures(report: Any, impl: Impl, device: str, root: Path) -> tuple[Path | None, list[str]]:
    """Save every failing property's shrunk counterexample as one fixture set (expected = reference)."""
    from .impls import load_impl as _load

    reference = _load("reference")
    failed = [r for r in report.results if r.failed and r.counterexample is not None]
    if not failed:
        return None, []
    cases, errors = [], []
    for r in failed:
        name = "".join(c if c.isalnum() or c in "-_" else "-" for c in r.name) or "counterexample"
        try:
            cases.append(
                fx.record_case(
                    name,
                    r.counterexample,
                    reference,
                    device="cpu",
                    preset="",
                    extra_meta={
                        "property": r.name,
                        "failure": str(r.failure)[:2000],
                        "verified_impl": impl.name,
                    },
                )
            )
        except Exception as exc:  # the reference itself may choke on the counterexample: say so
            errors.append(f"{r.name}: counterexample not saved ({type(exc).__name__}: {exc})")
    if not cases:
        return None, errors
    out_dir = _timestamp_dir(root)
    fx.write_fixture_set(
        out_dir, cases, description=f"shrunk counterexamples of `moegate verify --impl {impl.name}`"
    )
    return out_dir, errors


def cmd_verify(args: argparse.Namespace, out: Out) -> int:
    explicit = args.impl is not None
    impl = _resolve_impl(args.impl)
    device = _resolve_device(args.device, impl)
    configs = [get_preset(n) for n in _usage(fx.resolve_presets, args.preset)] if args.preset else None
    dtypes = [_usage(fx.parse_dtype, d) for d in _split_list(args.dtype)] or None
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
    for note in notes:
        out(note)
    from . import verify as verify_mod

    progress = Progress(enabled=not args.quiet)
    start = time.perf_counter()
    try:
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
        )
    finally:
        progress.close()
    ok = bool(report.ok)
    doc: dict[str, Any] = {
        "command": "verify",
        "impl": impl.name,
        "device": device,
        "profile": profile,
        "notes": notes,
        "report": report.to_dict(),
    }
    out(report.format())
    if not ok:
        fail_dir, errors = _save_failures(report, impl, device, Path(args.failures_dir))
        for e in errors:
            out(e)
        if fail_dir is not None:
            replay = shlex.join(
                ["moegate", "fixtures", "check", str(fail_dir), "--impl", impl.name, "--device", device]
            )
            out(f"shrunk counterexamples saved to {fail_dir}/ (expected outputs from the reference)")
            out(f"replay: {replay}")
            relational = [
                r.name for r in report.results if not r.ok and r.name not in ("oracle", "differential")
            ]
            if relational:
                out(
                    f"note: {', '.join(relational)} relate(s) several calls of the impl; the fixture replays "
                    "one call against the reference and may pass: use the property's replay above"
                )
            doc["failure_fixture_dir"] = str(fail_dir)
            doc["replay"] = replay
    if not explicit:
        golden = golden_fixture_dir()
        if golden is None:
            out(f"golden fixtures not found (set ${GOLDEN_ENV} or run from a source checkout): skipped")
            doc["fixtures"] = None
        else:
            fixture_report = fx.check_fixture_set(golden, impl, device=device, progress=progress)
            out(fixture_report.format(verbose=False))
            doc["fixtures"] = fixture_report.to_dict()
            ok = ok and fixture_report.ok
    if full_cpu_run:
        results, mutants_ok = _run_mutants(None, args.examples, profile, out, progress)
        doc["mutants"] = [_mutant_dict(r) for r in results]
        ok = ok and mutants_ok
    doc["ok"] = ok
    out(f"verify: {'PASS' if ok else 'FAIL'} ({time.perf_counter() - start:.1f}s)")
    if args.json:
        out.json(doc)
    return 0 if ok else 1


# ---- mutants --------------------------------------------------------------------------------------------


def _mutant_dict(r: Any) -> dict[str, Any]:
    return {
        "name": r.name,
        "description": r.description,
        "killed": bool(r.killed),
        "killed_by": r.killed_by,
        "examples": r.examples,
        "seconds": round(float(r.seconds), 3),
    }


def _mutant_names() -> list[str]:
    from . import mutants

    return list(mutants.MUTANTS)


def _run_mutants(
    names: list[str] | None, examples: int | None, profile: str | None, out: Out, progress: Progress
) -> tuple[list, bool]:
    """Run the panel one mutant at a time (a progress step per mutant), print its table; (results, ok)."""
    from . import mutants

    known = _mutant_names()
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
        _table(
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
    results, ok = _run_mutants(_split_list(args.mutant) or None, args.examples, args.profile, out, progress)
    if args.json:
        out.json({"command": "mutants", "ok": ok, "mutants": [_mutant_dict(r) for r in results]})
    return 0 if ok else 1


# ---- fixtures -------------------------------------------------------------------------------------------


def cmd_fixtures_record(args: argparse.Namespace, out: Out) -> int:
    impl = _resolve_impl(args.impl or "reference")
    device = _resolve_device(args.device, impl)
    presets = _usage(fx.resolve_presets, _split_list(args.preset) or ["all"])
    dtypes = [_usage(fx.parse_dtype, d) for d in _split_list(args.dtypes)] or list(fx.DTYPES.values())
    problems = fx.preset_cases_problems(presets, dtypes, args.rows, args.seed)
    if args.edge_cases:
        problems += fx.edge_problems(args.seed)
    progress = Progress(enabled=not args.quiet)
    try:
        cases = fx.record_problems(problems, impl, device=device, progress=progress)
    except Exception as exc:
        raise _ImplFailed(f"recording with impl {impl.name!r} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        progress.close()
    manifest = fx.write_fixture_set(
        args.out, cases, description=f"moegate fixtures record --impl {impl.name} --seed {args.seed}"
    )
    total = sum(p.stat().st_size for p in Path(args.out).iterdir() if p.is_file())
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
                "bytes": total,
            }
        )
    return 0


class _ImplFailed(Exception):
    """The implementation raised while recording: exit 1 with its message."""


def cmd_fixtures_check(args: argparse.Namespace, out: Out) -> int:
    impl = _resolve_impl(args.impl)
    device = _resolve_device(args.device, impl)
    _usage(fx.read_manifest, args.dir)
    progress = Progress(enabled=not args.quiet)
    try:
        report = _usage(fx.check_fixture_set, args.dir, impl, device=device, progress=progress)
    finally:
        progress.close()
    out(report.format(max_rows=args.max_rows))
    if args.json:
        out.json({"command": "fixtures check", **report.to_dict()})
    return 0 if report.ok else 1


# ---- presets --------------------------------------------------------------------------------------------


def cmd_presets(args: argparse.Namespace, out: Out) -> int:
    rows, docs = [], []
    for name in preset_names():
        c = get_preset(name)
        bias = "yes" if PRESET_HAS_BIAS[name] else "no"
        rows.append(
            (
                name,
                c.num_experts,
                c.topk,
                f"{c.num_expert_group}/{c.topk_group}",
                c.scoring_func,
                bias,
                "yes" if c.renormalize else "no",
                f"{c.routed_scaling_factor:g}",
                c.num_fused_shared_experts,
                c.output_width,
                PRESET_SOURCES.get(name, ""),
            )
        )
        docs.append(
            {
                "name": name,
                "config": c.to_dict(),
                "has_bias": PRESET_HAS_BIAS[name],
                "output_width": c.output_width,
                "source": PRESET_SOURCES.get(name, ""),
            }
        )
    headers = ("preset", "E", "K", "G/Kg", "scoring", "bias", "renorm", "r", "S", "W", "source")
    right = (False, True, True, True, False, False, False, True, True, True, False)
    if args.json:
        out.json({"command": "presets", "ok": True, "presets": docs})
    else:
        out(_table(headers, rows, right))
    return 0


# ---- bench ----------------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace, out: Out) -> int:
    impl = _resolve_impl(args.impl)
    device = _resolve_device(args.device, impl)
    preset = _usage(fx.resolve_presets, [args.preset])[0]
    dtype = _usage(fx.parse_dtype, args.dtype)
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
            raise _ImplFailed(
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
    out(_table(("T", "median us", "min us", "rows/s"), table_rows, (True, True, True, True)))
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


# ---- the parser -----------------------------------------------------------------------------------------

IMPL_HELP = (
    "implementation to run: 'reference', 'optimized' (the fused CUDA kernel) or 'module:function' "
    "(any importable route(scores, bias, config); the module may be a path to a .py file)"
)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout (and nothing else)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")


def build_parser() -> argparse.ArgumentParser:
    """The `moegate` argument parser (every level has --help)."""
    from . import fixtures as _fx  # noqa: F401 (keeps the import cost in one place)

    parser = _Parser(
        prog=PROG,
        description="Reference-vs-optimized verification of MoE routing kernels (SPEC.md).",
        epilog="Exit codes: 0 pass, 1 a property/fixture failed or a mutant survived, 2 bad usage or input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {fx.moegate_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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
    p.add_argument("--examples", type=_pos_int, default=None, metavar="N", help="examples per property")
    p.add_argument(
        "--profile", choices=PROFILES, default=None, help="example budget (default: ci on CPU, dev on GPU)"
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda for optimized, else cpu)")
    p.add_argument(
        "--dtype", action="append", metavar="DTYPE", help="score dtypes: float32, bfloat16, float16"
    )
    p.add_argument(
        "--seed", type=_nonneg_int, default=None, help="Hypothesis seed (reproducible dev/deep runs)"
    )
    p.add_argument(
        "--failures-dir",
        default="moegate-failures",
        metavar="DIR",
        help="where shrunk counterexamples go, in a timestamped folder (default: %(default)s)",
    )
    _add_common(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "mutants",
        help="run the mutant panel: planted bugs the suite must kill",
        description="Run every planted bug (mutant) through the property suite; each must be killed.",
    )
    p.add_argument("--examples", type=_pos_int, default=None, metavar="N", help="examples per property")
    p.add_argument("--mutant", action="append", metavar="NAME", help="run only these mutants (repeatable)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="example budget (default: ci)")
    _add_common(p)
    p.set_defaults(func=cmd_mutants)

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
    r.add_argument("--out", required=True, metavar="DIR", help="directory to write (created if needed)")
    r.add_argument(
        "--preset", action="append", metavar="NAME|all", help="presets to record (repeatable; default all)"
    )
    r.add_argument(
        "--edge-cases", action="store_true", help="also record the edge sets (ties, NaN/inf, T=0, ...)"
    )
    r.add_argument("--impl", default=None, help=IMPL_HELP + " (default: reference)")
    r.add_argument(
        "--rows", type=_nonneg_int, default=64, metavar="N", help="rows per preset case (default 64)"
    )
    r.add_argument(
        "--dtypes",
        action="append",
        metavar="DTYPES",
        help="score dtypes, comma-separated or repeated (default: all three)",
    )
    r.add_argument("--seed", type=_nonneg_int, default=0, help="base seed (default 0)")
    r.add_argument(
        "--device", default=None, help="device to run the impl on (default: cuda for optimized, else cpu)"
    )
    _add_common(r)
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
    c.add_argument(
        "--max-rows", type=_pos_int, default=5, metavar="N", help="mismatching rows shown per file"
    )
    _add_common(c)
    c.set_defaults(func=cmd_fixtures_check)

    p = sub.add_parser(
        "presets", help="list the model presets", description="The presets of SPEC.md, with sources."
    )
    _add_common(p)
    p.set_defaults(func=cmd_presets)

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
    p.add_argument("--rows", type=_nonneg_int, nargs="+", metavar="T", help="batch sizes T")
    p.add_argument("--dtype", default="bfloat16", help="score dtype (default: %(default)s)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda for optimized, else cpu)")
    p.add_argument("--repeats", type=_pos_int, default=20, help="timed calls per T (default 20)")
    p.add_argument("--warmup", type=_nonneg_int, default=3, help="untimed calls first (default 3)")
    _add_common(p)
    p.set_defaults(func=cmd_bench)
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
    except _ImplFailed as exc:
        sys.stderr.write(f"{command}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{command}: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
