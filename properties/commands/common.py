"""What every `moegate` command shares: usage errors, output streams, progress, argument types, tables,
and resolving an implementation and a device from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from .. import fixtures as fx
from ..impls import Impl, default_impl_name, gpu_unavailable_reason, load_impl

PROG = "moegate"
GOLDEN_ENV = "MOEGATE_GOLDEN_DIR"
PROFILES = ("ci", "dev", "deep")

IMPL_HELP = (
    "implementation to run: 'reference', 'eager' (the reference, on CUDA by default), 'optimized' (the "
    "fused CUDA kernel) or 'module:function' "
    "(any importable route(scores, bias, config); the module may be a path to a .py file)"
)


class UsageError(Exception):
    """Bad usage or bad input: main prints one line and returns 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


# ---- helpers --------------------------------------------------------------------------------------------


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


def usage(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call fn; turn ValueError/TypeError (bad argument values) into UsageError."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc


def nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative, but it must be >= 0")
    return value


def pos_int(text: str) -> int:
    value = nonneg_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}, but it must be >= 1")
    return value


def split_list(values: Sequence[str] | None) -> list[str]:
    """`--dtypes bf16,fp32 float16` -> ["bf16", "fp32", "float16"]."""
    return [v for item in values or [] for v in item.split(",") if v.strip()]


def resolve_impl(spec: str | None) -> Impl:
    return usage(load_impl, spec if spec is not None else default_impl_name())


def resolve_device(device: str | None, impl: Impl) -> str:
    dev = usage(fx.check_device, device if device is not None else impl.default_device, "--device")
    if impl.name == "optimized":
        if dev.type != "cuda":
            raise UsageError(
                f"--device {dev}, but impl 'optimized' (the fused kernel) runs on CUDA tensors only"
            )
        reason = gpu_unavailable_reason()
        if reason is not None:
            raise UsageError(f"impl 'optimized' needs a CUDA GPU and CuPy, but {reason}")
    elif impl.contract is not None and impl.default_device == "cuda" and dev.type != "cuda":
        raise UsageError(f"--device {dev}, but impl {impl.name!r} runs on CUDA tensors only")
    return str(dev)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool]) -> str:
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


def golden_fixture_dir() -> Path | None:
    """The golden fixture set: $MOEGATE_GOLDEN_DIR, else `tests/fixtures` of the source checkout this
    package runs from (an editable install); None when neither holds a manifest (e.g. a wheel install)."""
    env = os.environ.get(GOLDEN_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "tests" / "fixtures")
    for c in candidates:
        if (c / fx.MANIFEST_NAME).is_file():
            return c
    return None


class ImplFailed(Exception):
    """The implementation raised while recording or timing: exit 1 with its message."""


def add_common(p: argparse.ArgumentParser) -> None:
    """--json and --quiet, on every command."""
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout (and nothing else)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
