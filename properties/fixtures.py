"""Regression fixtures: record what an implementation returns for fixed inputs, replay it later.

A fixture set is a directory:

    manifest.json            format, versions, producer, and one entry per case (file, config, dtype,
                             seed, rows, tie-row count, sha256 of the file)
    <case>.safetensors       one case per file

Each case file holds these tensors (all CPU, all contiguous):

    scores    [T, E]  float32 | float16 | bfloat16   the router logits, in their own dtype
    bias      [E]     float32 | bfloat16 | float16   the e_score_correction_bias in its own dtype
                                                     (absent when the case has no bias)
    ids       [T, W]  int32                          the recorded topk_ids
    weights   [T, W]  float32                        the recorded topk_weights
    tie_rows  [T]     bool                           rows whose selection involves a near-tie
                                                     (`oracle.tie_rows`); ids there may differ

and string metadata: `config` (RoutingConfig as JSON), `preset`, `dtype`, `bias_dtype`, `seed`, `note`,
`num_rows`, `row_stride` (the recorded input's row stride: row-strided inputs are stored contiguous, so
a replay calls the implementation on contiguous rows), `moegate_version`, `torch_version`, `impl`,
`device`, `device_name`, `format`, `format_version`.

`check_fixture_set` replays every case on a device through an implementation and compares with
`differential.compare`: ids exact except in flagged tie rows, weights within the differential's
tolerances. The manifest's sha256 guards against a fixture file edited by hand.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from moegate.reference import PRESET_HAS_BIAS, RoutingConfig, get_preset, preset_names

from .impls import Impl
from .problem import RoutingProblem

FORMAT = "moegate-fixtures"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"

ProgressFn = Callable[[str, int, int], None]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
_DTYPE_ALIASES = {"fp32": "float32", "f32": "float32", "float": "float32", "bf16": "bfloat16",
                  "fp16": "float16", "f16": "float16", "half": "float16"}  # fmt: skip


def dtype_name(dtype: torch.dtype) -> str:
    """ "float32", "bfloat16" or "float16" for a torch dtype."""
    return str(dtype).replace("torch.", "")


def parse_dtype(name: str) -> torch.dtype:
    """A score dtype from its name ("float32", "bfloat16", "float16", or fp32/bf16/fp16/half).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    key = str(name).strip().lower()
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPES:
        raise ValueError(
            f"dtype={name!r}, but dtype must be one of {', '.join(DTYPES)} (or fp32, bf16, fp16)"
        )
    return DTYPES[key]


def moegate_version() -> str:
    """The installed moegate version (importlib.metadata), or "unknown" when not installed."""
    try:
        return importlib.metadata.version("moegate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def device_name(device: str | torch.device) -> str:
    """A human name of the device: the GPU's name, or "cpu (<machine>)"."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.machine() or 'unknown'})"


def check_device(device: str | torch.device, parameter: str = "device") -> torch.device:
    """`device` as a torch.device that can run here.

    Raises:
        ValueError: not a device string torch understands, or a CUDA device without a visible GPU.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"{parameter}={device!r}, but it must be a torch device such as 'cpu' or 'cuda'"
        ) from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{parameter}={device!r}, but it must be 'cpu' or 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{parameter}={device!r}, but no CUDA GPU is visible to torch on this machine")
    return dev


# ---- cases ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixtureCase:
    """One recorded call: inputs (as a RoutingProblem on the CPU), outputs and tie flags.

    name: the case's name, also its file's stem.
    problem: config, scores [T, E] (contiguous, own dtype), bias [E] or None, seed, note.
    ids: [T, W] int32; weights: [T, W] float32 (the recorded outputs, CPU).
    tie_rows: [T] bool, rows whose selection involves a near-tie (either order of those is valid).
    preset: the preset name, or "" for a hand-made config.
    meta: the remaining string metadata (versions, impl, device, device_name, row_stride, ...).
    """

    name: str
    problem: RoutingProblem
    ids: torch.Tensor
    weights: torch.Tensor
    tie_rows: torch.Tensor
    preset: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"{self.name}.safetensors"


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or any(c in name for c in "/\\:") or name.startswith("."):
        raise ValueError(f"name={name!r}, but a case name must be a non-empty file stem without / \\ :")


def record_case(
    name: str,
    problem: RoutingProblem,
    impl: Impl,
    *,
    device: str | torch.device | None = None,
    preset: str = "",
    extra_meta: dict[str, str] | None = None,
) -> FixtureCase:
    """Run `impl` on `problem` (on `device`, default the impl's) and record inputs, outputs, tie flags.

    problem: any RoutingProblem; its inputs are stored contiguous on the CPU (the original row stride
        goes into the `row_stride` metadata). On the problem's own device the impl sees the original
        (possibly row-strided) tensors.
    Returns a FixtureCase with ids int32 [T, W], weights float32 [T, W], tie_rows bool [T] on the CPU.

    Raises:
        ValueError: bad name or device; the impl returned the wrong shapes or dtypes.
        Whatever the impl raises.
    """
    from . import oracle

    _check_name(name)
    dev = check_device(device if device is not None else impl.default_device)
    run_problem = problem if problem.device == dev else problem.to(dev)
    ids, weights = impl(run_problem.scores, run_problem.bias, run_problem.config)
    _check_outputs(ids, weights, problem, where=f"impl {impl.name!r} on case {name!r}")
    cpu_problem = problem.to("cpu")
    cpu_problem = RoutingProblem(
        cpu_problem.config,
        cpu_problem.scores.contiguous(),
        None if cpu_problem.bias is None else cpu_problem.bias.contiguous(),
        seed=problem.seed,
        note=problem.note,
    )
    tie_rows = oracle.tie_rows(cpu_problem).to(device="cpu", dtype=torch.bool)
    meta = {
        "moegate_version": moegate_version(),
        "torch_version": torch.__version__,
        "impl": impl.name,
        "device": str(dev),
        "device_name": device_name(dev),
        "row_stride": str(problem.scores.stride(0) if problem.scores.dim() == 2 else ""),
        **(extra_meta or {}),
    }
    return FixtureCase(
        name=name,
        problem=cpu_problem,
        ids=ids.detach().to("cpu").contiguous(),
        weights=weights.detach().to("cpu").contiguous(),
        tie_rows=tie_rows.contiguous(),
        preset=preset,
        meta=meta,
    )


def _check_outputs(ids: Any, weights: Any, problem: RoutingProblem, where: str) -> None:
    """Raise ValueError unless ids is int32 [T, W] and weights float32 [T, W] (SPEC.md, "Outputs")."""
    shape = (problem.num_rows, problem.config.output_width)
    for label, t, dtype in (("ids", ids, torch.int32), ("weights", weights, torch.float32)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{where}: {label} is a {type(t).__name__}, but it must be a torch.Tensor")
        if tuple(t.shape) != shape:
            raise ValueError(f"{where}: {label}.shape={tuple(t.shape)}, but it must be [T, W] = {shape}")
        if t.dtype != dtype:
            raise ValueError(f"{where}: {label}.dtype={t.dtype}, but SPEC.md requires {dtype}")


# ---- writing and reading -------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_SAFETENSORS_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int32: "I32",
    torch.int64: "I64",
    torch.bool: "BOOL",
}


def _save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write a safetensors file byte-for-byte deterministically (sorted header keys, tensors in name
    order), so that re-recording unchanged outputs leaves the golden files unchanged in git.
    `safetensors.torch.save_file` orders its header by a hash map, which varies between runs."""
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the format pads the header to a multiple of 8 bytes with spaces
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for data in blobs:
            f.write(data)


def _case_metadata(case: FixtureCase) -> dict[str, str]:
    p = case.problem
    return {
        **case.meta,
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "name": case.name,
        "preset": case.preset,
        "config": json.dumps(p.config.to_dict(), sort_keys=True),
        "dtype": dtype_name(p.dtype),
        "bias_dtype": "none" if p.bias is None else dtype_name(p.bias.dtype),
        "seed": "" if p.seed is None else str(p.seed),
        "note": p.note,
        "num_rows": str(p.num_rows),
        "stored_contiguous": "true",
    }


def write_fixture_set(
    out_dir: str | Path, cases: Sequence[FixtureCase], *, description: str = "", overwrite: bool = True
) -> Path:
    """Write `cases` as a fixture set into `out_dir` (created if needed); return the manifest's path.

    Raises:
        ValueError: duplicate case names, or `out_dir` already holds a manifest and `overwrite` is False.
    """
    out = Path(out_dir)
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"cases hold duplicate names {dup}, but case names must be unique")
    if (out / MANIFEST_NAME).exists() and not overwrite:
        raise ValueError(f"out_dir={str(out)!r} already holds a fixture set and overwrite=False")
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for case in cases:
        tensors = {
            "scores": case.problem.scores.contiguous(),
            "ids": case.ids.contiguous(),
            "weights": case.weights.contiguous(),
            "tie_rows": case.tie_rows.contiguous(),
        }
        if case.problem.bias is not None:
            tensors["bias"] = case.problem.bias.contiguous()
        meta = _case_metadata(case)
        path = out / case.file_name
        _save_safetensors(tensors, path, meta)
        entries.append(
            {
                "name": case.name,
                "file": case.file_name,
                "preset": case.preset,
                "config": case.problem.config.to_dict(),
                "dtype": meta["dtype"],
                "bias_dtype": meta["bias_dtype"],
                "num_rows": case.problem.num_rows,
                "seed": case.problem.seed,
                "note": case.problem.note,
                "tie_rows": int(case.tie_rows.sum()),
                "impl": case.meta.get("impl", ""),
                "sha256": _sha256(path),
            }
        )
    first = cases[0].meta if cases else {}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "description": description,
        "moegate_version": moegate_version(),
        "torch_version": torch.__version__,
        "impl": first.get("impl", ""),
        "device": first.get("device", ""),
        "device_name": first.get("device_name", ""),
        "layout": (
            "one .safetensors file per case: scores [T,E] (own dtype), bias [E] (own dtype; absent when "
            "none), ids [T,W] int32, weights [T,W] float32, tie_rows [T] bool; metadata: config JSON, "
            "dtype, seed, versions, impl, device. Row-strided inputs are stored contiguous."
        ),
        "cases": entries,
    }
    manifest_path = out / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    return manifest_path


def read_manifest(fixture_dir: str | Path) -> dict[str, Any]:
    """The manifest of the fixture set in `fixture_dir`.

    Raises:
        ValueError: no such directory, no manifest, or a manifest of another format or version.
    """
    d = Path(fixture_dir)
    if not d.is_dir():
        raise ValueError(f"fixture_dir={str(d)!r}, but it is not a directory")
    path = d / MANIFEST_NAME
    if not path.is_file():
        raise ValueError(f"fixture_dir={str(d)!r}, but it holds no {MANIFEST_NAME} (not a fixture set)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r}: format is not {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r}: format_version={manifest.get('format_version')!r}, but this moegate reads "
            f"version {FORMAT_VERSION}"
        )
    return manifest


def load_case(path: str | Path, *, sha256: str | None = None) -> FixtureCase:
    """Read one case file. With `sha256`, the file must match it (else ValueError)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"fixture file {str(p)!r} does not exist")
    if sha256 is not None and _sha256(p) != sha256:
        raise ValueError(
            f"fixture file {str(p)!r} does not match the manifest's sha256 "
            "(edited by hand? re-record the set)"
        )
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ValueError(f"fixture file {str(p)!r} cannot be read: {type(exc).__name__}: {exc}") from exc
    missing = {"scores", "ids", "weights", "tie_rows"} - set(tensors)
    if missing or meta.get("format") != FORMAT or "config" not in meta:
        raise ValueError(f"fixture file {str(p)!r} is not a moegate fixture (missing {sorted(missing)})")
    config = RoutingConfig(**json.loads(meta.pop("config")))
    seed = meta.pop("seed", "")
    problem = RoutingProblem(
        config,
        tensors["scores"],
        tensors.get("bias"),
        seed=int(seed) if seed else None,
        note=meta.pop("note", ""),
    )
    return FixtureCase(
        name=meta.pop("name", p.stem),
        problem=problem,
        ids=tensors["ids"],
        weights=tensors["weights"],
        tie_rows=tensors["tie_rows"].to(torch.bool),
        preset=meta.pop("preset", ""),
        meta=meta,
    )


def load_fixture_set(fixture_dir: str | Path) -> list[FixtureCase]:
    """Every case of the fixture set in `fixture_dir`, in manifest order (sha256-checked)."""
    manifest = read_manifest(fixture_dir)
    d = Path(fixture_dir)
    return [load_case(d / e["file"], sha256=e.get("sha256")) for e in manifest["cases"]]


# ---- checking ------------------------------------------------------------------------------------------


@dataclass
class CaseResult:
    """The replay of one case: ok, or a DiffReport / an error message saying why not."""

    name: str
    file: str
    num_rows: int
    ok: bool
    seconds: float
    diff: Any = None  # differential.DiffReport, or None when the impl raised or returned bad shapes
    error: str = ""

    def format(self, max_rows: int = 5) -> str:
        status = "PASS" if self.ok else "FAIL"
        head = f"{status} {self.file} ({self.num_rows} rows, {self.seconds * 1e3:.0f} ms)"
        if self.ok:
            return head
        if self.error:
            return f"{head}\n    {self.error}"
        body = self.diff.format(max_rows=max_rows) if self.diff is not None else ""
        return head + ("\n" + "\n".join("    " + line for line in body.splitlines()) if body else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "num_rows": self.num_rows,
            "ok": self.ok,
            "seconds": round(self.seconds, 4),
            "error": self.error,
            "diff": None if self.diff is None else self.diff.to_dict(),
        }


@dataclass
class FixtureCheckReport:
    """The replay of a whole fixture set through one implementation on one device."""

    fixture_dir: str
    impl: str
    device: str
    results: list[CaseResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def num_failed(self) -> int:
        return sum(not r.ok for r in self.results)

    def format(self, max_rows: int = 5, verbose: bool = True) -> str:
        """A line per case (failures with the differential's first `max_rows` rows), then a summary."""
        lines = [r.format(max_rows) for r in self.results if verbose or not r.ok]
        verdict = "ok" if self.ok else f"{self.num_failed} of {len(self.results)} cases FAILED"
        lines.append(
            f"fixtures {self.fixture_dir}: {len(self.results)} cases against impl {self.impl!r} "
            f"on {self.device}: {verdict}"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fixture_dir": self.fixture_dir,
            "impl": self.impl,
            "device": self.device,
            "ok": self.ok,
            "cases": [r.to_dict() for r in self.results],
        }


def _with_recorded_stride(problem: RoutingProblem, row_stride: str) -> RoutingProblem:
    """The problem with its scores laid out at the recorded row stride again, when it was > E: a view
    into a NaN-padded buffer, so a kernel that reads past a row's E entries gets NaN and shows it."""
    num_rows, num_experts = problem.num_rows, problem.config.num_experts
    stride = int(row_stride) if row_stride.isdigit() else num_experts
    if stride <= num_experts or num_rows < 2:
        return problem
    buf = torch.full((num_rows, stride), float("nan"), dtype=problem.dtype, device=problem.device)
    buf[:, :num_experts] = problem.scores
    return RoutingProblem(
        problem.config, buf[:, :num_experts], problem.bias, seed=problem.seed, note=problem.note
    )


def check_case(case: FixtureCase, impl: Impl, device: str | torch.device) -> CaseResult:
    """Replay `case`'s inputs on `device` through `impl`; compare with the recorded outputs.

    Inputs recorded with a row stride > E are replayed at that stride again (padding = NaN).

    ids must match exactly except in the case's flagged tie rows, weights within the differential's
    tolerances (`differential.compare`). An exception from the impl, or outputs of the wrong shape or
    dtype, is a failed case, not a crash.
    """
    from . import differential

    start = time.perf_counter()
    dev = torch.device(device)
    p = case.problem
    run = _with_recorded_stride(p.to(dev), case.meta.get("row_stride", ""))
    result = CaseResult(case.name, case.file_name, p.num_rows, ok=False, seconds=0.0)
    try:
        ids, weights = impl(run.scores, run.bias, run.config)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        _check_outputs(ids, weights, p, where=f"impl {impl.name!r}")
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - start
        return result
    actual = (ids.detach().to("cpu"), weights.detach().to("cpu"))
    diff = differential.compare(p, (case.ids, case.weights), actual, tie_rows=case.tie_rows, seed=p.seed)
    result.diff = diff
    result.ok = bool(diff.ok)
    result.seconds = time.perf_counter() - start
    return result


def check_fixture_set(
    fixture_dir: str | Path,
    impl: Impl,
    *,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
) -> FixtureCheckReport:
    """Replay every case of the set in `fixture_dir` through `impl` on `device` (default: the impl's).

    Raises:
        ValueError: not a fixture set, a damaged file, or a device that cannot run here.
    """
    dev = check_device(device if device is not None else impl.default_device)
    cases = load_fixture_set(fixture_dir)
    results = []
    for i, case in enumerate(cases):
        results.append(check_case(case, impl, dev))
        if progress is not None:
            progress("fixtures", i + 1, len(cases))
    return FixtureCheckReport(str(fixture_dir), impl.name, str(dev), results)


# ---- inputs: presets and the golden edge sets -----------------------------------------------------------


def case_seed(base_seed: int, name: str) -> int:
    """A per-case seed: stable across runs and platforms (crc32 of the name), different per case."""
    return (int(base_seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


def preset_problem(
    preset: str,
    dtype: torch.dtype,
    num_rows: int,
    seed: int,
    *,
    bias_dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> RoutingProblem:
    """Random inputs for a preset: scores [num_rows, E] ~ N(0, 1) in `dtype`; a bias [E] ~ 0.1 * N(0, 1)
    in `bias_dtype` (default: `dtype`) when the preset's model has one. Generated on the CPU from `seed`.

    Raises:
        ValueError: unknown preset, num_rows < 0.
    """
    config = get_preset(preset)
    if isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 0:
        raise ValueError(f"num_rows={num_rows!r}, but num_rows must be an int >= 0")
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(num_rows, config.num_experts, generator=gen).to(dtype)
    bias = None
    if PRESET_HAS_BIAS[_canonical_preset(preset)]:
        bias = (0.1 * torch.randn(config.num_experts, generator=gen)).to(bias_dtype or dtype)
    problem = RoutingProblem(config, scores, bias, seed=seed, note=f"preset {_canonical_preset(preset)}")
    return problem if torch.device(device).type == "cpu" else problem.to(device)


def _canonical_preset(name: str) -> str:
    config = get_preset(name)
    return next(n for n in preset_names() if get_preset(n) is config)


def resolve_presets(names: Iterable[str]) -> list[str]:
    """Canonical preset names for `names` ("all" expands to every preset; duplicates dropped).

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    out: list[str] = []
    for name in names:
        expanded = preset_names() if name.strip().lower() == "all" else [_canonical_preset(name)]
        out.extend(n for n in expanded if n not in out)
    return out


def preset_cases_problems(
    presets: Sequence[str], dtypes: Sequence[torch.dtype], num_rows: int, seed: int
) -> list[tuple[str, str, RoutingProblem]]:
    """(case name, preset, problem) for every preset x dtype: names like "deepseek-v3-bfloat16"."""
    out = []
    for preset in resolve_presets(presets):
        for dtype in dtypes:
            name = f"{preset}-{dtype_name(dtype)}"
            out.append((name, preset, preset_problem(preset, dtype, num_rows, case_seed(seed, name))))
    return out


def edge_problems(seed: int = 0) -> list[tuple[str, str, RoutingProblem]]:
    """(case name, preset or "", problem): the golden edge sets of issue 5, small and deterministic.

    ties: integer-valued logits (many exact ties in p and b, and between groups) with and without a bias;
    nonfinite: NaN, +inf, -inf entries, all-NaN / all--inf / all-+inf rows, a NaN bias entry;
    empty: T = 0; replica: shared_expert_mode="replica" with S = 3; scaling: r applied on the output;
    strided: row stride > E (stored contiguous); mixed bias dtype: bf16 scores with a float32 bias and the
    reverse; awkward: odd E, G, K and T.
    """
    v3 = get_preset("deepseek-v3")
    out: list[tuple[str, str, RoutingProblem]] = []

    def add(
        name: str, preset: str, config: RoutingConfig, scores: torch.Tensor, bias: Any, note: str
    ) -> None:
        out.append(
            (name, preset, RoutingProblem(config, scores, bias, seed=case_seed(seed, name), note=note))
        )

    def gen(name: str) -> torch.Generator:
        return torch.Generator().manual_seed(case_seed(seed, name))

    # Ties: logits on a coarse grid, so p (and b) collide within rows and group scores collide too.
    for preset, dtype in (("deepseek-v3", torch.float32), ("deepseek-v3", torch.bfloat16),
                          ("qwen3-moe", torch.float16), ("mixtral-8x7b", torch.float32)):  # fmt: skip
        name = f"edge-ties-{preset}-{dtype_name(dtype)}"
        cfg = get_preset(preset)
        g = gen(name)
        scores = (torch.randint(-2, 3, (32, cfg.num_experts), generator=g) * 0.5).to(dtype)
        scores[0] = 0.0  # a row of identical logits: the lowest indices (and groups) must win
        bias = None
        if PRESET_HAS_BIAS[preset]:
            bias = (torch.randint(-1, 2, (cfg.num_experts,), generator=g) * 0.125).to(torch.float32)
        add(name, preset, cfg, scores, bias, "exact ties: logits on a 0.5 grid, row 0 all equal")

    # Non-finite values in every score dtype, with a bias (sigmoid, groups) and without (softmax).
    for preset in ("deepseek-v3", "qwen3-moe", "llama-4-maverick"):
        for dtype in DTYPES.values():
            name = f"edge-nonfinite-{preset}-{dtype_name(dtype)}"
            cfg = get_preset(preset)
            g = gen(name)
            scores = torch.randn(24, cfg.num_experts, generator=g)
            nan, inf = float("nan"), float("inf")
            mask = torch.rand(scores.shape, generator=g)
            scores = torch.where(mask < 0.05, nan, scores)
            scores = torch.where((mask >= 0.05) & (mask < 0.08), inf, scores)
            scores = torch.where((mask >= 0.08) & (mask < 0.11), -inf, scores)
            scores[1] = nan  # all-NaN row
            scores[2] = -inf  # all -inf row
            scores[3] = inf  # all +inf row
            scores[4, :] = -inf
            scores[4, 5] = inf  # one +inf among -inf
            scores[5, :] = nan
            scores[5, -1] = 0.0  # one finite entry among NaN
            bias = None
            if PRESET_HAS_BIAS[preset]:
                bias = 0.1 * torch.randn(cfg.num_experts, generator=g)
                bias[7] = nan
                bias = bias.to(dtype)
            add(name, preset, cfg, scores.to(dtype), bias, "NaN/+-inf entries, all-NaN/-inf/+inf rows")

    # T = 0.
    for preset in ("deepseek-v3", "qwen3-moe"):
        cfg = get_preset(preset)
        bias = torch.zeros(cfg.num_experts) if PRESET_HAS_BIAS[preset] else None
        add(f"edge-empty-{preset}", preset, cfg, torch.empty(0, cfg.num_experts), bias, "T = 0")

    # Replica mode: one shared slot, id E + row % S.
    for preset, dtype in (("deepseek-v3", torch.bfloat16), ("moonlight-16b-a3b", torch.float32)):
        name = f"edge-replica-{preset}-{dtype_name(dtype)}"
        cfg = get_preset(preset).replace(shared_expert_mode="replica", num_fused_shared_experts=3)
        g = gen(name)
        scores = torch.randn(40, cfg.num_experts, generator=g).to(dtype)
        bias = (0.1 * torch.randn(cfg.num_experts, generator=g)).to(dtype)
        add(name, preset, cfg, scores, bias, "replica mode, S = 3")

    # Scaling applied on the output (renormalized and not).
    for preset in ("deepseek-v3", "deepseek-v2"):
        name = f"edge-scaling-on-output-{preset}"
        cfg = get_preset(preset).replace(apply_routed_scaling_factor_on_output=True)
        g = gen(name)
        scores = torch.randn(32, cfg.num_experts, generator=g)
        bias = (0.1 * torch.randn(cfg.num_experts, generator=g)) if PRESET_HAS_BIAS[preset] else None
        add(name, preset, cfg, scores, bias, "apply_routed_scaling_factor_on_output")

    # Row-strided input: the recorder sees the strided view; the file stores it contiguous.
    name = "edge-strided-deepseek-v3"
    g = gen(name)
    wide = torch.randn(32, v3.num_experts + 64, generator=g).to(torch.bfloat16)
    add(name, "deepseek-v3", v3, wide[:, : v3.num_experts], 0.1 * torch.randn(v3.num_experts, generator=g),
        "row stride E + 64 (stored contiguous)")  # fmt: skip

    # The bias in another dtype than the scores (a known kernel bug class).
    for sd, bd in (
        (torch.bfloat16, torch.float32),
        (torch.float32, torch.bfloat16),
        (torch.float16, torch.float32),
    ):
        name = f"edge-bias-dtype-deepseek-v3-{dtype_name(sd)}-bias-{dtype_name(bd)}"
        g = gen(name)
        scores = torch.randn(32, v3.num_experts, generator=g).to(sd)
        bias = (0.1 * torch.randn(v3.num_experts, generator=g)).to(bd)
        add(name, "deepseek-v3", v3, scores, bias, f"bias dtype {dtype_name(bd)}")

    # Awkward shapes: odd E, G, K; K = the whole kept set; one row.
    awkward = (
        ("edge-awkward-e72-g6", RoutingConfig(num_experts=72, topk=7, num_expert_group=6, topk_group=2,
                                              routed_scaling_factor=1.7, num_fused_shared_experts=2), 33),
        ("edge-awkward-k-max", RoutingConfig(num_experts=12, topk=6, num_expert_group=4, topk_group=2,
                                             scoring_func="softmax"), 17),
        ("edge-awkward-one-row", RoutingConfig(num_experts=5, topk=1, scoring_func="softmax",
                                               renormalize=False, num_fused_shared_experts=1), 1),
    )  # fmt: skip
    for name, cfg, rows in awkward:
        g = gen(name)
        scores = torch.randn(rows, cfg.num_experts, generator=g)
        bias = 0.1 * torch.randn(cfg.num_experts, generator=g) if cfg.scoring_func == "sigmoid" else None
        add(name, "", cfg, scores, bias, "awkward shape")
    return out


def record_problems(
    problems: Sequence[tuple[str, str, RoutingProblem]],
    impl: Impl,
    *,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
) -> list[FixtureCase]:
    """Record each (name, preset, problem) through `impl` on `device`; see `record_case`."""
    cases = []
    for i, (name, preset, problem) in enumerate(problems):
        cases.append(record_case(name, problem, impl, device=device, preset=preset))
        if progress is not None:
            progress("record", i + 1, len(problems))
    return cases
