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
    peer_ids      [T, W] int32   (optional) what a peer kernel returned on these inputs, beside the
    peer_weights  [T, W] float32 expected outputs in ids/weights (a finding pinned: tests/peer_findings)

and string metadata: `config` (RoutingConfig as JSON), `preset`, `dtype`, `bias_dtype`, `seed`, `note`,
`num_rows`, `row_stride` (the recorded input's row stride where it steps, T > 1, else E: inputs are
stored contiguous, and a replay lays the rows out at that stride again), `moegate_version`,
`torch_version`, `impl`, `device`, `device_name`, `format`, `format_version`, and optionally
`weight_dtype` (the dtype the recording implementation wrote its weights in, for a kernel whose contract
writes them narrower than float32: a replay then allows one ulp of it).

No pickle: the case files are safetensors (a JSON header and raw tensor bytes) and the manifest is JSON;
nothing here or elsewhere in moegate calls `torch.load` or imports pickle, so a fixture set from anyone
can be loaded without running code from it (tests/test_fixture_files.py checks this).

Nothing lost: `write_fixture_set` writes each file atomically into a temporary sibling directory and
swaps the whole set in at the end; an existing set is replaced only with `force`
(`fixture_files.write_set_directory` says how).

Nothing trusted: `read_manifest`, `load_case` and `load_fixture_set` check every field, tensor dtype and
shape, the metadata and the sha256 of every file, and raise `FixtureError` (a ValueError naming the file
and the problem) for anything damaged, never another exception.

`check_fixture_set` replays every case on a device through an implementation and compares with
`differential.compare`: ids exact except in flagged tie rows, weights within the differential's
tolerances. The inputs recorded (preset batches, the golden edge sets) come from `fixture_inputs`,
whose names this module re-exports.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from moegate.reference import BIAS_DTYPES, SCORE_DTYPES, RoutingConfig

from . import fixture_files as files
from .fixture_files import CASE_SUFFIX, MANIFEST_NAME, FixtureError, FixtureSetExistsError, check_target
from .fixture_inputs import (
    DTYPES,
    case_seed,
    dtype_name,
    edge_problems,
    parse_dtype,
    preset_cases_problems,
    preset_problem,
    resolve_presets,
)
from .impls import Impl
from .problem import RoutingProblem

__all__ = [
    "DTYPES",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "CaseResult",
    "FixtureCase",
    "FixtureCheckReport",
    "FixtureError",
    "FixtureSetExistsError",
    "case_seed",
    "check_case",
    "check_device",
    "check_fixture_set",
    "check_target",
    "device_name",
    "dtype_name",
    "edge_problems",
    "load_case",
    "load_fixture_set",
    "moegate_version",
    "parse_dtype",
    "preset_cases_problems",
    "preset_problem",
    "read_manifest",
    "record_case",
    "record_problems",
    "resolve_presets",
    "write_fixture_set",
]

FORMAT = "moegate-fixtures"
FORMAT_VERSION = 1

ProgressFn = Callable[[str, int, int], None]


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
    peer_ids, peer_weights: [T, W] int32 / float32, what a peer kernel returned on these inputs when the
        case pins a finding about it (ids/weights then hold the expected, SPEC outputs); else None.
    """

    name: str
    problem: RoutingProblem
    ids: torch.Tensor
    weights: torch.Tensor
    tie_rows: torch.Tensor
    preset: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    peer_ids: torch.Tensor | None = None
    peer_weights: torch.Tensor | None = None

    @property
    def weight_dtype(self) -> torch.dtype:
        """The dtype the recorded weights were written in (metadata `weight_dtype`, default float32)."""
        return DTYPES[self.meta.get("weight_dtype", "float32")]

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
        # The row stride only means something where it steps (T > 1); else E, whatever torch reports.
        "row_stride": str(problem.scores.stride(0) if problem.num_rows > 1 else problem.config.num_experts),
        **_weight_dtype_meta(impl, problem),
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


def fit_to_contract(
    problems: Sequence[tuple[str, str, RoutingProblem]], contract: Any
) -> tuple[list[tuple[str, str, RoutingProblem]], list[str]]:
    """The (name, preset, problem) cases an implementation with `contract` (a peers.Contract, or None: all)
    can be recorded on: each config projected onto the contract (`Contract.project`: FlashInfer's fixed
    flags, say), the bias cast to the dtype it takes; and one line for each case it does not accept.
    This is how `fixtures record --impl flashinfer-default` records what an engine's kernel computes."""
    if contract is None:
        return list(problems), []
    kept, skipped = [], []
    for name, preset, problem in problems:
        config = contract.project(problem.config)
        bias = problem.bias
        if bias is not None:
            bias = bias.to(contract.bias_dtype(problem.dtype)[0])
        dense = problem.num_rows < 2 or problem.scores.stride(0) == config.num_experts
        reasons = contract.rejects(
            config,
            problem.dtype,
            None if bias is None else bias.dtype,
            num_rows=problem.num_rows,
            dense_rows=dense,
        )
        if reasons:
            skipped.append(f"{name}: {contract.name} does not accept it ({'; '.join(reasons)})")
            continue
        kept.append(
            (name, preset, RoutingProblem(config, problem.scores, bias, seed=problem.seed, note=problem.note))
        )
    return kept, skipped


def _weight_dtype_meta(impl: Impl, problem: RoutingProblem) -> dict[str, str]:
    """{"weight_dtype": ...} when impl's contract writes weights narrower than float32, else {}."""
    contract = getattr(impl, "contract", None)
    weight_dtype = torch.float32 if contract is None else contract.weight_dtype(problem.dtype)
    return {} if weight_dtype == torch.float32 else {"weight_dtype": dtype_name(weight_dtype)}


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


# ---- writing -------------------------------------------------------------------------------------------


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
    out_dir: str | Path, cases: Sequence[FixtureCase], *, description: str = "", force: bool = False
) -> Path:
    """Write `cases` as a fixture set into the directory `out_dir`; return the manifest's path.

    Nothing is lost (fixture_files.write_set_directory): the whole set is written into a temporary
    sibling directory, each file atomically (a temporary file, then `os.replace`), and swapped in at the
    end by renames, so an exception or Ctrl-C half way leaves what was at `out_dir` as it was.
    Without `force`, a directory that already holds a fixture set is refused; with `force`, the old set
    (its manifest.json and every *.safetensors file) is replaced as a whole, and any other file there (a
    README) is kept. A non-empty directory that holds no fixture set is never replaced.

    Raises:
        ValueError: duplicate or invalid case names (before anything is written).
        FixtureSetExistsError (a ValueError): `out_dir` holds a fixture set and `force` is False, or is
            a non-empty directory that holds none, or is a file.
    """
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"cases hold duplicate names {dup}, but case names must be unique")
    for name in names:
        _check_name(name)

    def write_files(tmp: Path) -> None:
        entries = []
        for case in cases:
            tensors = {"scores": case.problem.scores, "ids": case.ids, "weights": case.weights,
                       "tie_rows": case.tie_rows}  # fmt: skip
            if case.problem.bias is not None:
                tensors["bias"] = case.problem.bias
            if (case.peer_ids is None) != (case.peer_weights is None):
                raise ValueError(f"case {case.name!r} has one of peer_ids and peer_weights, but needs both")
            if case.peer_ids is not None:
                tensors["peer_ids"], tensors["peer_weights"] = case.peer_ids, case.peer_weights
            meta = _case_metadata(case)
            data = files.safetensors_bytes(tensors, meta)
            files.atomic_write_bytes(tmp / case.file_name, data)
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
                    "sha256": files.sha256_hex(data),
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
        text = json.dumps(manifest, indent=1, sort_keys=False) + "\n"
        files.atomic_write_bytes(tmp / MANIFEST_NAME, text.encode())

    out = files.write_set_directory(out_dir, write_files, force=force)
    return out / MANIFEST_NAME


# ---- reading: nothing trusted ----------------------------------------------------------------------------

_CASE_TENSORS = ("scores", "ids", "weights", "tie_rows")
_PEER_TENSORS = ("peer_ids", "peer_weights")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A replay allocates T x row_stride elements: a file may not claim a row stride past this.
_MAX_ROW_STRIDE_FACTOR, _MAX_ROW_STRIDE_PAD = 64, 4096


def _json_kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_json(path: Path, what: str, text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except UnicodeDecodeError:
        raise FixtureError(path, f"{what} is not UTF-8 text") from None
    except ValueError as exc:  # json.JSONDecodeError, or an integer of too many digits
        raise FixtureError(path, f"{what} is not valid JSON ({exc})") from None
    except RecursionError:
        raise FixtureError(path, f"{what} is not valid JSON (nested too deep)") from None


def _plain_case_file(name: str) -> bool:
    return (
        len(name) > len(CASE_SUFFIX)
        and name.endswith(CASE_SUFFIX)
        and not name.startswith(".")
        and not any(c in name for c in "/\\:\x00")
    )


def read_manifest(fixture_dir: str | Path) -> dict[str, Any]:
    """The manifest of the fixture set in `fixture_dir`, checked: format and version, and a `cases` list
    whose entries each name a plain case file (`<name>.safetensors`, no directory part), its `name` and
    its `sha256` (64 hex digits), no file or name twice.

    Raises:
        FixtureError (a ValueError): no such directory, no manifest, or a manifest that is not such JSON;
            the message names the file and the problem.
    """
    d = Path(fixture_dir)
    if not d.is_dir():
        raise FixtureError(d, "is not a directory (no fixture set there)")
    path = d / MANIFEST_NAME
    if not path.is_file():
        raise FixtureError(d, f"holds no {MANIFEST_NAME} (not a fixture set)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FixtureError(path, f"cannot be read ({exc.strerror or exc})") from None
    manifest = _parse_json(path, "the manifest", data)
    if not isinstance(manifest, dict):
        raise FixtureError(path, f"holds a JSON {_json_kind(manifest)}, but a manifest is a JSON object")
    if manifest.get("format") != FORMAT:
        raise FixtureError(
            path, f"format={_short(manifest.get('format'))}, but a manifest has format {FORMAT!r}"
        )
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise FixtureError(
            path, f"format_version={_short(version)}, but this moegate reads version {FORMAT_VERSION}"
        )
    cases = manifest.get("cases")
    if not isinstance(cases, list):
        raise FixtureError(path, f"cases={_short(cases)}, but the manifest needs a 'cases' list")
    files_seen: set[str] = set()
    names_seen: set[str] = set()
    for i, entry in enumerate(cases):
        if not isinstance(entry, dict):
            raise FixtureError(path, f"cases[{i}]={_short(entry)}, but each case entry is a JSON object")
        for key in ("name", "file", "sha256"):
            if not isinstance(entry.get(key), str):
                raise FixtureError(
                    path, f"cases[{i}].{key}={_short(entry.get(key))}, but it must be a string"
                )
        if not _plain_case_file(entry["file"]):
            raise FixtureError(
                path,
                f"cases[{i}].file={_short(entry['file'])}, but a case file is a plain file name ending in "
                f"{CASE_SUFFIX} (no directory part)",
            )
        if not _SHA256_HEX.fullmatch(entry["sha256"]):
            raise FixtureError(
                path, f"cases[{i}].sha256={_short(entry['sha256'])}, but it must be 64 lowercase hex digits"
            )
        for label, value, seen in (("file", entry["file"], files_seen), ("name", entry["name"], names_seen)):
            if value in seen:
                raise FixtureError(path, f"cases[{i}].{label}={_short(value)} appears twice")
            seen.add(value)
    return manifest


def _read_safetensors(p: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # safetensors' Rust side may raise a PanicException (a BaseException)
        raise FixtureError(
            p, f"is not a readable safetensors file (truncated or damaged?): {type(exc).__name__}: {exc}"
        ) from None
    return meta, tensors


def _check_tensor(p: Path, name: str, t: torch.Tensor, dtypes: tuple[torch.dtype, ...],
                  shape: tuple[int, ...], rule: str) -> None:  # fmt: skip
    if t.dtype not in dtypes:
        raise FixtureError(p, f"{name}.dtype={t.dtype}, but {name} must be {rule}")
    if tuple(t.shape) != shape:
        raise FixtureError(p, f"{name}.shape={tuple(t.shape)}, but {name} must be {rule}")


def load_case(path: str | Path, *, sha256: str | None = None) -> FixtureCase:
    """Read one case file and check everything in it: the format, the metadata (config accepted by
    RoutingConfig, seed, dtype, num_rows, row_stride), and every tensor's dtype and shape against the
    config (scores [T, E] float32/float16/bfloat16, bias [E] float32/bfloat16/float16 or absent, ids
    [T, W] int32, weights [T, W] float32, tie_rows [T] bool). With `sha256`, the file's bytes must hash
    to it. Returns a FixtureCase on the CPU.

    Raises:
        FixtureError (a ValueError): anything missing, damaged or inconsistent; the message names the
            file and the problem.
    """
    p = Path(path)
    if not p.is_file():
        raise FixtureError(p, "does not exist" if not p.exists() else "is not a file")
    if sha256 is not None:
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise FixtureError(p, f"cannot be read ({exc.strerror or exc})") from None
        if files.sha256_hex(data) != sha256:
            raise FixtureError(
                p, "does not match the manifest's sha256 (damaged, or edited by hand? re-record the set)"
            )
    meta, tensors = _read_safetensors(p)
    if meta.get("format") != FORMAT or meta.get("format_version") != str(FORMAT_VERSION):
        raise FixtureError(
            p,
            f"metadata format={_short(meta.get('format'))} format_version="
            f"{_short(meta.get('format_version'))}, but a moegate fixture file has {FORMAT!r} version "
            f"{FORMAT_VERSION}",
        )
    missing = [k for k in _CASE_TENSORS if k not in tensors]
    unexpected = sorted(set(tensors) - {*_CASE_TENSORS, "bias", *_PEER_TENSORS})
    if missing or unexpected or (("peer_ids" in tensors) != ("peer_weights" in tensors)):
        raise FixtureError(
            p,
            f"holds tensors {sorted(tensors)}, but a case holds {list(_CASE_TENSORS)}, optionally bias, "
            f"and optionally both of {list(_PEER_TENSORS)}",
        )
    if "config" not in meta:
        raise FixtureError(p, "metadata lacks 'config'")
    fields = _parse_json(p, "metadata 'config'", meta.pop("config"))
    if not isinstance(fields, dict):
        raise FixtureError(p, f"metadata 'config' holds a JSON {_json_kind(fields)}, not an object")
    try:
        config = RoutingConfig(**fields)
    except (TypeError, ValueError) as exc:
        raise FixtureError(p, f"metadata 'config' is rejected by RoutingConfig: {exc}") from None
    E, W = config.num_experts, config.output_width
    scores, bias = tensors["scores"], tensors.get("bias")
    if scores.dtype not in SCORE_DTYPES or scores.dim() != 2 or scores.shape[1] != E:
        raise FixtureError(
            p,
            f"scores is {scores.dtype} {tuple(scores.shape)}, but scores must be float32, float16 or "
            f"bfloat16 [T, E] with E = {E} (the config's num_experts)",
        )
    T = int(scores.shape[0])
    if bias is not None:
        _check_tensor(p, "bias", bias, BIAS_DTYPES, (E,), f"float32, bfloat16 or float16 [E] = [{E}]")
    _check_tensor(p, "ids", tensors["ids"], (torch.int32,), (T, W), f"int32 [T, W] = [{T}, {W}]")
    _check_tensor(p, "weights", tensors["weights"], (torch.float32,), (T, W), f"float32 [T, W] = [{T}, {W}]")
    _check_tensor(p, "tie_rows", tensors["tie_rows"], (torch.bool,), (T,), f"bool [T] = [{T}]")
    if "peer_ids" in tensors:
        shape = f"[T, W] = [{T}, {W}]"
        _check_tensor(p, "peer_ids", tensors["peer_ids"], (torch.int32,), (T, W), f"int32 {shape}")
        peer_weights = tensors["peer_weights"]
        _check_tensor(p, "peer_weights", peer_weights, (torch.float32,), (T, W), f"float32 {shape}")
    _check_metadata(p, meta, config, scores, bias)
    seed = meta.pop("seed", "")
    name = meta.pop("name", p.stem)
    try:
        _check_name(name)
        problem = RoutingProblem(
            config, scores, bias, seed=int(seed) if seed else None, note=meta.pop("note", "")
        )
    except (TypeError, ValueError) as exc:
        raise FixtureError(p, f"its inputs are not valid: {exc}") from None
    return FixtureCase(
        name=name,
        problem=problem,
        ids=tensors["ids"],
        weights=tensors["weights"],
        tie_rows=tensors["tie_rows"].view(torch.uint8) != 0,  # a damaged bool byte reads as True
        preset=meta.pop("preset", ""),
        meta=meta,
        peer_ids=tensors.get("peer_ids"),
        peer_weights=tensors.get("peer_weights"),
    )


def _check_metadata(
    p: Path, meta: dict[str, str], config: RoutingConfig, scores: torch.Tensor, bias: torch.Tensor | None
) -> None:
    """The string metadata that describes the tensors must agree with them and parse."""
    T, E = int(scores.shape[0]), config.num_experts
    expected = {
        "dtype": dtype_name(scores.dtype),
        "bias_dtype": "none" if bias is None else dtype_name(bias.dtype),
        "num_rows": str(T),
    }
    for key, value in expected.items():
        if key in meta and meta[key] != value:
            raise FixtureError(p, f"metadata {key}={_short(meta[key])}, but the tensors say {value!r}")
    if meta.get("weight_dtype", "float32") not in DTYPES:
        wrong = _short(meta["weight_dtype"])
        raise FixtureError(p, f"metadata weight_dtype={wrong}, but it must be one of {list(DTYPES)}")
    seed = meta.get("seed", "")
    if seed and not re.fullmatch(r"-?[0-9]{1,30}", seed):
        raise FixtureError(p, f"metadata seed={_short(seed)}, but it must be empty or an integer")
    stride = meta.get("row_stride", "")
    if stride:
        limit = _MAX_ROW_STRIDE_FACTOR * E + _MAX_ROW_STRIDE_PAD
        if not re.fullmatch(r"[0-9]{1,30}", stride) or (T > 1 and not E <= int(stride) <= limit):
            raise FixtureError(
                p,
                f"metadata row_stride={_short(stride)}, but it must be an integer, in [E, "
                f"{_MAX_ROW_STRIDE_FACTOR} * E + {_MAX_ROW_STRIDE_PAD}] = [{E}, {limit}] when T > 1",
            )


def load_fixture_set(fixture_dir: str | Path) -> list[FixtureCase]:
    """Every case of the fixture set in `fixture_dir`, in manifest order, each file checked against the
    manifest's sha256 and by `load_case`, and named as the manifest names it.

    Raises:
        FixtureError (a ValueError): see `read_manifest` and `load_case`.
    """
    manifest = read_manifest(fixture_dir)
    d = Path(fixture_dir)
    cases = []
    for entry in manifest["cases"]:
        case = load_case(d / entry["file"], sha256=entry["sha256"])
        if case.name != entry["name"]:
            raise FixtureError(
                d / entry["file"], f"holds case {case.name!r}, but the manifest names it {entry['name']!r}"
            )
        cases.append(case)
    return cases


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
    tolerances (`differential.compare`), at the precision of the impl's contract (a kernel that writes
    bfloat16 weights is judged on their rounding) and with one ulp of slack where the recorded weights
    were themselves written narrower (`weight_dtype` metadata). An exception from the impl, or outputs of
    the wrong shape or dtype, is a failed case, not a crash.
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
    contract = getattr(impl, "contract", None)
    weight_dtype = torch.float32 if contract is None else contract.weight_dtype(p.dtype)
    diff = differential.compare(
        p,
        (case.ids, case.weights),
        actual,
        tie_rows=case.tie_rows,
        seed=p.seed,
        weight_dtype=weight_dtype,
        expected_rounded=case.weight_dtype != torch.float32,
    )
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

    Every case is loaded (and checked, see `load_fixture_set`) before the first replay.

    Raises:
        FixtureError (a ValueError): not a fixture set, or a damaged file; the message names the file.
        ValueError: a device that cannot run here.
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
