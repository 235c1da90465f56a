"""Finding a peer kernel's sources and building them once, into a cache keyed by what went in.

Sources are looked for, in order:
1. every entry of $MOEGATE_PEER_SOURCES (paths separated by os.pathsep): a directory holding the package's
   files (an extracted wheel or sdist, or a folder of such archives), or an archive file itself
   (`flashinfer_python-*.whl`, `vllm-*.tar.gz`);
2. the installed Python package (found without importing it), for packages that ship their sources;
3. `./.peers` under the current directory (where the project's own tools put extracted sources).
Only the files a build needs are read from an archive; they are extracted into the cache.

A build is keyed by the package version, the contents of every source file it uses, our entry-point shim,
the compiler options, the GPU architecture and nvcc's version: `$MOEGATE_CACHE_DIR/peers/<name>-<key>/`
(default `~/.cache/moegate`, or `$XDG_CACHE_HOME/moegate`). A file lock keeps two processes from building
the same key at once; the build goes to a temporary directory that is renamed into place, so a half-built
library is never loaded. Every missing piece (nvcc, a source file, a supported GPU) is a `PeerUnavailable`
naming it.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

SOURCES_ENV = "MOEGATE_PEER_SOURCES"
CACHE_ENV = "MOEGATE_CACHE_DIR"
DEFAULT_SOURCE_DIR = ".peers"


class PeerUnavailable(ValueError):
    """A peer cannot be built or run here; the message names the missing piece and how to supply it."""


def cache_dir() -> Path:
    """$MOEGATE_CACHE_DIR, else $XDG_CACHE_HOME/moegate, else ~/.cache/moegate."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "moegate"


@dataclass(frozen=True)
class SourceLayout:
    """Where a package keeps the files a build needs.

    package: the distribution's human name ("FlashInfer", "vLLM").
    module: the top-level Python module of an installed package that ships the files ("flashinfer"), or
        None when installed packages do not (vLLM's wheel has no csrc/).
    files: the files, relative to the layout's root (for an sdist, the root is its top folder).
    version_file: a file (in `files`) whose text holds the version; version_pattern: a regex with one group.
    archive_pattern: a regex matching the archive file names (wheel or sdist) that hold the layout.
    hint: how to get the sources (printed when they are missing).
    """

    package: str
    module: str | None
    files: tuple[str, ...]
    version_file: str
    version_pattern: str
    archive_pattern: str
    hint: str

    @property
    def marker(self) -> str:
        """The first file: its presence identifies a root."""
        return self.files[0]


@dataclass(frozen=True)
class Sources:
    """A located source tree: root / file for every file of the layout, and where it came from."""

    layout: SourceLayout
    root: Path
    origin: str
    version: str

    def path(self, relative: str) -> Path:
        return self.root / relative

    def digest(self) -> str:
        """sha256 over every file of the layout (name and contents)."""
        h = hashlib.sha256()
        for rel in self.layout.files:
            h.update(rel.encode() + b"\0" + self.path(rel).read_bytes() + b"\0")
        return h.hexdigest()


def _read_version(layout: SourceLayout, root: Path) -> str:
    try:
        text = (root / layout.version_file).read_text(errors="replace")
    except OSError:
        return "unknown"
    match = re.search(layout.version_pattern, text, re.MULTILINE)
    return match.group(1) if match else "unknown"


def _complete_root(layout: SourceLayout, root: Path) -> Path | None:
    """root if it holds every file of the layout, else a subfolder one level down that does (an extracted
    sdist's top folder), else None."""
    for candidate in (root, *sorted(p for p in root.iterdir() if p.is_dir())) if root.is_dir() else ():
        if all((candidate / f).is_file() for f in layout.files):
            return candidate
    return None


def extract_archive(layout: SourceLayout, archive: Path) -> Path:
    """The layout's files from a wheel or sdist, extracted once into the cache (keyed by the archive's
    name, size and time); returns the extracted root."""
    stat = archive.stat()
    key = hashlib.sha256(f"{archive.name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir() / "sources" / f"{archive.name}-{key}"
    if _complete_root(layout, target) is not None:
        return _complete_root(layout, target)  # type: ignore[return-value]
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=_ensure(target.parent)))
    try:
        if archive.name.endswith(".whl") or archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                names = set(z.namelist())
                for rel in layout.files:
                    if rel not in names:
                        raise PeerUnavailable(
                            f"{archive} has no {rel}: not a {layout.package} archive we can build"
                        )
                    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / rel).write_bytes(z.read(rel))
        else:
            with tarfile.open(archive) as t:
                members = {m.name: m for m in t.getmembers() if m.isfile()}
                top = {name.split("/", 1)[0] for name in members}
                if len(top) != 1:
                    raise PeerUnavailable(
                        f"{archive}: an sdist must have one top folder, found {sorted(top)[:3]}"
                    )
                (prefix,) = top
                for rel in layout.files:
                    member = members.get(f"{prefix}/{rel}")
                    if member is None:
                        raise PeerUnavailable(
                            f"{archive} has no {prefix}/{rel}: not a {layout.package} sdist"
                        )
                    data = t.extractfile(member)
                    assert data is not None  # a regular file always has data
                    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / rel).write_bytes(data.read())
        try:
            tmp.rename(target)
        except OSError:  # another process extracted it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_sources(layout: SourceLayout) -> Sources:
    """Locate the layout's files (module docstring: the search order). Raises PeerUnavailable naming
    every place looked at."""
    looked: list[str] = []
    pattern = re.compile(layout.archive_pattern)
    entries = [Path(p).expanduser() for p in os.environ.get(SOURCES_ENV, "").split(os.pathsep) if p.strip()]
    for entry in entries:
        looked.append(f"${SOURCES_ENV} entry {entry}")
        if entry.is_file() and pattern.fullmatch(entry.name):
            root = extract_archive(layout, entry)
            return Sources(layout, root, str(entry), _read_version(layout, root))
        if entry.is_dir():
            root = _complete_root(layout, entry)
            if root is not None:
                return Sources(layout, root, str(entry), _read_version(layout, root))
            for archive in sorted(p for p in entry.iterdir() if p.is_file() and pattern.fullmatch(p.name)):
                root = extract_archive(layout, archive)
                return Sources(layout, root, str(archive), _read_version(layout, root))
    if layout.module is not None:
        spec = importlib.util.find_spec(layout.module)
        if spec is not None and spec.submodule_search_locations:
            site = Path(next(iter(spec.submodule_search_locations))).parent
            looked.append(f"the installed package {layout.module} ({site})")
            if all((site / f).is_file() for f in layout.files):
                return Sources(layout, site, f"installed package at {site}", _read_version(layout, site))
        else:
            looked.append(f"the installed package {layout.module} (not installed)")
    default = Path.cwd() / DEFAULT_SOURCE_DIR
    looked.append(str(default))
    if default.is_dir():
        for sub in (default, *sorted(p for p in default.iterdir() if p.is_dir())):
            root = _complete_root(layout, sub)
            if root is not None:
                return Sources(layout, root, str(root), _read_version(layout, root))
    raise PeerUnavailable(
        f"{layout.package} sources not found (looked in: {'; '.join(looked)}). {layout.hint} "
        f"Set ${SOURCES_ENV} to the archive or to a directory holding its files "
        f"(needed: {', '.join(layout.files[:3])}, ...)"
    )


# ---- the compiler and the GPU ----------------------------------------------------------------------------


def find_nvcc() -> Path:
    """nvcc from $CUDA_HOME / $CUDA_PATH, the PATH, or /usr/local/cuda; PeerUnavailable if none."""
    candidates = [
        Path(os.environ[v]) / "bin" / "nvcc" for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)
    ]
    on_path = shutil.which("nvcc")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path("/usr/local/cuda/bin/nvcc"))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise PeerUnavailable(
        "nvcc (the CUDA compiler) not found: set CUDA_HOME to a CUDA toolkit, or put nvcc on the PATH"
    )


def nvcc_version(nvcc: Path) -> str:
    """The last line of `nvcc --version` (e.g. 'Build cuda_13.0.r13.0/compiler.36424714_0')."""
    out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, check=False).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    return lines[-1] if lines else "unknown"


def cuda_include_dirs(nvcc: Path, headers: Sequence[str]) -> list[Path]:
    """Folders holding `headers` that the toolkit itself may lack (FlashInfer's common headers include
    cuBLAS's and cuRAND's for type names only): the toolkit's include folder, then the NVIDIA wheels'
    (`nvidia/cu13/include`, `nvidia/*/include` in site-packages). PeerUnavailable naming a missing one."""
    roots = [nvcc.parent.parent / "include"]
    for entry in sys.path:
        base = Path(entry) / "nvidia"
        if base.is_dir():
            roots += sorted(p for p in base.glob("*/include") if p.is_dir())
    extra = Path.cwd() / DEFAULT_SOURCE_DIR / "cuda-include"
    if extra.is_dir():
        roots.append(extra)
    found: list[Path] = []
    for header in headers:
        where = next((r for r in roots if (r / header).is_file()), None)
        if where is None:
            raise PeerUnavailable(
                f"{header} not found (looked in {', '.join(map(str, roots))}): install the CUDA toolkit's "
                "headers for it (for example the pip packages nvidia-cublas, nvidia-curand) or copy them "
                f"into ./{DEFAULT_SOURCE_DIR}/cuda-include"
            )
        if where not in found:
            found.append(where)
    return found


def gpu_arch(device_index: int | None = None) -> tuple[tuple[int, int], str]:
    """((major, minor), nvcc arch name) of a visible GPU; Hopper gets its 'a' target (sm_90a), as
    FlashInfer builds it. PeerUnavailable when no CUDA GPU is visible."""
    import torch

    if not torch.cuda.is_available():
        raise PeerUnavailable("no CUDA GPU visible to torch: the peer kernels run on NVIDIA GPUs only")
    index = torch.cuda.current_device() if device_index is None else device_index
    major, minor = torch.cuda.get_device_capability(index)
    suffix = "a" if major == 9 else ""
    return (major, minor), f"{major}{minor}{suffix}"


# ---- building --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildPlan:
    """One shared library: translation units, include folders, options, and what identifies it.

    name: the peer's name (cache folder prefix). units: (source path, extra options) per object file;
    generated: file name -> text written into the build folder first (our shim, the trimmed sources).
    """

    name: str
    units: tuple[tuple[str, tuple[str, ...]], ...]
    generated: tuple[tuple[str, str], ...]
    include_dirs: tuple[Path, ...]
    options: tuple[str, ...]
    arch: str
    source_digest: str
    version: str


def build_key(plan: BuildPlan, nvcc: Path) -> str:
    """sha256 of everything that goes into the library (the sources' contents, not where they lie)."""
    h = hashlib.sha256()
    for part in (plan.name, plan.version, plan.source_digest, plan.arch, nvcc_version(nvcc), *plan.options):
        h.update(part.encode() + b"\0")
    for unit, opts in plan.units:  # by name: where the sources lie does not change the library
        h.update(Path(unit).name.encode() + b"\0" + " ".join(opts).encode() + b"\0")
    for name, text in plan.generated:
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()


def build_library(plan: BuildPlan, log: Callable[[str], None] | None = None) -> Path:
    """The built shared library for `plan`, from the cache or built now (under a file lock)."""
    nvcc = find_nvcc()
    key = build_key(plan, nvcc)[:20]
    root = _ensure(cache_dir() / "peers")
    final = root / f"{plan.name}-{key}"
    library = final / f"lib{plan.name}.so"
    if library.is_file():
        return library
    with open(root / f"{plan.name}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if library.is_file():  # built by another process while we waited
            return library
        say = log or (lambda text: sys.stderr.write(text + "\n"))
        say(f"building {plan.name} ({plan.version}, sm_{plan.arch}) with {nvcc} into {final} ...")
        work = Path(tempfile.mkdtemp(prefix=f".{plan.name}-", dir=root))
        try:
            for name, text in plan.generated:
                (work / name).write_text(text)
            includes = [f"-I{work}"] + [f"-I{d}" for d in plan.include_dirs]
            arch = [f"-gencode=arch=compute_{plan.arch},code=sm_{plan.arch}"]
            common = [*arch, *plan.options, "-Xcompiler", "-fPIC", *includes]

            def compile_unit(index: int) -> Path:
                source, extra = plan.units[index]
                src = work / source if (work / source).is_file() else Path(source)
                obj = work / f"unit{index}.o"
                language = ["-x", "cu"] if src.suffix == ".cpp" else []
                _run([str(nvcc), *common, *extra, *language, "-c", str(src), "-o", str(obj)], work, plan.name)
                return obj

            workers = max(1, min(len(plan.units), os.cpu_count() or 1))
            with ThreadPoolExecutor(workers) as pool:
                objects = list(pool.map(compile_unit, range(len(plan.units))))
            _run(
                [str(nvcc), *arch, "-shared", "-o", str(work / library.name), *map(str, objects)],
                work,
                plan.name,
            )
            for obj in objects:
                obj.unlink()
            work.rename(final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        say(f"built {library}")
        return library


def _run(command: list[str], cwd: Path, name: str) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    with open(cwd / "build.log", "a") as log:
        log.write(" ".join(command) + "\n" + result.stdout + result.stderr + "\n")
    if result.returncode != 0:
        errors = [line for line in (result.stderr + result.stdout).splitlines() if "error" in line.lower()]
        first = errors[0] if errors else (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise PeerUnavailable(f"building {name} failed: {first} (the full log: {cwd / 'build.log'})")


def trim_source(text: str, path: str, remove_lines: Sequence[str], cut_at: str) -> str:
    """`text` without the lines `remove_lines` (each must occur) and without everything from `cut_at` on
    (the engine's framework binding, which needs its Python runtime). PeerUnavailable when a marker is
    missing: the file changed in a way this adapter does not know."""
    for line in remove_lines:
        if line not in text:
            raise PeerUnavailable(
                f"{path} no longer contains {line!r}: this version's layout is not one the adapter knows"
            )
        text = text.replace(line, "// (removed by moegate: framework binding) " + line.replace("#", ""), 1)
    position = text.find(cut_at)
    if position < 0:
        raise PeerUnavailable(
            f"{path} no longer contains {cut_at!r}: this version is not one the adapter knows"
        )
    return text[:position] + "// (moegate: the framework binding below this point is left out)\n"
