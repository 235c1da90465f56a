"""The files of a fixture set: how they are written so that nothing is lost, and the error a damaged
file gives.

Nothing here goes through pickle: case files are safetensors (a JSON header and raw little-endian
tensor bytes) and the manifest is JSON; `torch.load` is never used (tests/test_fixture_files.py greps
the package for it).

Writing (`write_set_directory`):
- every file is written to a temporary file in its own directory, flushed to disk, then renamed over
  its name with `os.replace` (atomic on POSIX): a reader sees the old file or the new one, never half;
- a whole set is first written into a temporary sibling directory `.<name>.new-*` next to the target,
  then swapped in by two renames: the old directory to `.<name>.old-*`, the new one to the target's
  name; the old one is then deleted. An exception or Ctrl-C before the swap leaves the previous set
  untouched (the temporary directory is removed); one between the two renames renames the old
  directory back. Only a hard kill in that window (two `rename` calls) can leave the old set under its
  `.<name>.old-*` name, intact, with the target missing. A missing target is one rename; an existing
  empty directory is kept (it may be a shell's current directory) and the files are moved into it, the
  manifest last (on an exception the moved ones are removed again). A set is not replaced from inside
  its own directory, which the swap would pull away from under the shell.
- `force` decides what may be replaced: without it, a directory that already holds a fixture set is
  refused (`FixtureSetExistsError`); with it, the old set's `manifest.json` and `*.safetensors` files are
  replaced as a whole (old cases that are not recorded again are gone), and any other file in that
  directory (a README) is carried over into the new one. A non-empty directory that holds no fixture
  set is never replaced, with or without `force`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

MANIFEST_NAME = "manifest.json"
CASE_SUFFIX = ".safetensors"


class FixtureError(ValueError):
    """A fixture set or file that cannot be used: missing, truncated, malformed, or inconsistent.

    path: the file (or directory) at fault; problem: what is wrong, one line. `str()` gives
    "<path>: <problem>", the line `moegate fixtures check` prints before exiting with status 2.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # one line, whatever a library's message held
        super().__init__(f"{self.path}: {self.problem}")


class FixtureSetExistsError(ValueError):
    """A fixture set may not be written there: the directory holds a set and `force` was not given
    (`needs_force`), or it holds other files, or it is a file.

    path: the directory.
    """

    def __init__(self, path: str | Path, message: str, *, needs_force: bool = False) -> None:
        self.path = str(path)
        self.needs_force = needs_force
        super().__init__(message)


def sha256_hex(data: bytes) -> str:
    """The sha256 of `data` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


# ---- safetensors, deterministic ------------------------------------------------------------------------

SAFETENSORS_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int32: "I32",
    torch.int64: "I64",
    torch.bool: "BOOL",
}


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """A safetensors file's bytes, deterministic: sorted header keys, tensors in name order, so that
    re-recording unchanged outputs leaves the golden files unchanged in git
    (`safetensors.torch.save_file` orders its header by a hash map, which varies between runs).

    tensors: any layout and device (copied to a fresh, row-major CPU tensor first: a size-1 dimension
    may carry any stride in torch, which a byte view would refuse); dtypes of SAFETENSORS_DTYPES.
    """
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        src = tensors[name].detach()
        t = torch.empty(tuple(src.shape), dtype=src.dtype).copy_(src)
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {
            "dtype": SAFETENSORS_DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the format pads the header to a multiple of 8 bytes with spaces
    return len(head).to_bytes(8, "little") + head + b"".join(blobs)


# ---- atomic files and directories ----------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or filesystem opens directories
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a temporary file in the same directory, flushed to disk, then
    `os.replace`d over `path`. On any exception (Ctrl-C included) `path` keeps its old content and the
    temporary file is removed."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def is_fixture_set(path: Path) -> bool:
    """True when `path` is a directory holding a manifest.json."""
    return (path / MANIFEST_NAME).is_file()


def _set_member(entry: Path) -> bool:
    """A file that belongs to a fixture set (replaced with it): the manifest and the case files."""
    return entry.name == MANIFEST_NAME or (entry.suffix == CASE_SUFFIX and not entry.is_dir())


def _holds_cwd(path: Path) -> bool:
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the current directory was deleted
        return False
    return cwd == path.resolve() or path.resolve() in cwd.parents


def check_target(out_dir: str | Path, force: bool) -> Path:
    """The directory a set will be written to (absolute; a symlink resolved), after checking that
    writing it loses nothing that `force` does not allow.

    Raises:
        FixtureSetExistsError: `out_dir` holds a fixture set and not `force`; or it holds one and is (or
            holds) the current directory, which the swap would pull away from under this process and its
            shell; or it is a non-empty directory without a manifest.json (never replaced); or a file.
    """
    out = Path(os.path.abspath(out_dir))  # "." and "sub/.." get a name, which the swap renames
    if out.is_symlink():
        out = out.resolve()
    if out.exists() and not out.is_dir():
        raise FixtureSetExistsError(out, f"{out} exists and is not a directory; choose another one")
    if not out.is_dir() or not any(out.iterdir()):
        return out
    if not is_fixture_set(out):
        raise FixtureSetExistsError(
            out,
            f"{out} is not empty and holds no fixture set ({MANIFEST_NAME}); it is never replaced: "
            "choose a new or empty directory",
        )
    if not force:
        raise FixtureSetExistsError(
            out, f"{out} already holds a fixture set; pass force=True to replace it", needs_force=True
        )
    if _holds_cwd(out):
        raise FixtureSetExistsError(
            out, f"{out} holds the current directory; replace the set in it from outside it"
        )
    return out


def write_set_directory(
    out_dir: str | Path, write_files: Callable[[Path], None], *, force: bool = False
) -> Path:
    """Create or replace the directory `out_dir` with what `write_files(tmp_dir)` writes into a fresh
    temporary sibling directory; return the final directory (see the module docstring for the swap).
    An existing empty directory is kept (the current directory, say) and filled, the manifest last.

    Raises:
        FixtureSetExistsError: see `check_target`.
        Whatever `write_files` raises; `out_dir` is then as it was.
    """
    out = check_target(out_dir, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        write_files(tmp)
        _fsync_dir(tmp)
        check_target(out, force)  # nothing appeared meanwhile that force does not allow
        if not out.exists():
            os.replace(tmp, out)  # one atomic rename
        elif not any(out.iterdir()):
            _fill(tmp, out)
        else:
            _carry_over(out, tmp)
            _fsync_dir(tmp)
            _swap(tmp, out)
        _fsync_dir(out.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _carry_over(old: Path, new: Path) -> None:
    """Copy what in `old` is not part of its set (a README) into `new`."""
    with contextlib.suppress(OSError):
        shutil.copymode(old, new)
    for entry in old.iterdir():
        if _set_member(entry) or (new / entry.name).exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, new / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, new / entry.name, follow_symlinks=False)


def _fill(new: Path, out: Path) -> None:
    """Move the files of `new` into the empty directory `out`, the manifest last; on any exception the
    ones already moved are removed again, so `out` is left empty (no half set)."""
    moved: list[Path] = []
    try:
        for entry in sorted(new.iterdir(), key=lambda p: (p.name == MANIFEST_NAME, p.name)):
            os.replace(entry, out / entry.name)
            moved.append(out / entry.name)
        _fsync_dir(out)
    except BaseException:
        for path in reversed(moved):
            with contextlib.suppress(OSError):
                path.unlink()
        raise


def _swap(new: Path, out: Path) -> None:
    """Put the directory `new` at `out`'s place, deleting the old `out` only once `new` is there."""
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    try:
        os.replace(out, backup)  # rename(2) over an empty directory
    except BaseException:
        os.rmdir(backup)
        raise
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(backup, out)  # put the previous set back (if even this fails, it stays at `backup`)
        raise
    shutil.rmtree(backup, ignore_errors=True)
