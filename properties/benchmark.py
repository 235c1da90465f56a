"""The benchmark behind `moegate bench`: implementations of `route` timed over presets, dtypes and batch
sizes T, beside the floors measured in the same run.

A row is one (implementation, preset, dtype, T). Its status is
- "ok": timed; `us` is the median time per call (`benchmark_timers`: CUDA-graph replays over inputs
  rotated past L2 on a GPU, time.perf_counter on the CPU) and `method` says how;
- "rejects": the implementation's contract does not accept the configuration (a peer supports less than
  SPEC.md: FlashInfer's cake backend and Kimi-K2, say); `reason` says why;
- "error": the call raised; `reason` holds the message;
- "unavailable": the implementation could not be loaded here (no GPU, no sources, no nvcc); `reason`.

A peer declares a contract (`moegate.properties.peers.Contract`: `impl.contract`, else the function's
`contract` attribute; None means SPEC-complete). The implementation is called on the projected config
(`Contract.project`: the peer's fixed flags) with the bias in the first dtype it takes beside these scores,
a row is "rejects" with `Contract.rejects`' reasons, and its bytes are counted with its own output width and
weight dtype:

    bytes = T * E * sizeof(scores) + E * sizeof(bias)   (in; no bias term without a bias)
          + T * W * 4 + T * W * sizeof(weights)          (out: ids int32, weights)
    floor = max(bytes / copy bandwidth, launch floor)

`vs_peer` is `us` over the fastest peer's `us` at the same (preset, dtype, T) (the peers: FlashInfer's two
backends and vLLM, by default); `vs_floor` is `us` over the row's floor.

`run_benchmark(...) -> BenchResult`; `BenchResult.to_json()` is the document `moegate bench --json`
prints and `--out` writes (`benchmark_plot.plot_bench` draws it).
"""

from __future__ import annotations

import statistics
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from moegate.reference import RoutingConfig, get_preset, preset_has_bias

from . import fixtures as fx
from .benchmark_timers import (
    Floors,
    Timer,
    default_timer,
    environment,
    measure_floors,
    time_host,
    time_host_per_cpu,
)
from .impls import Impl, gpu_unavailable_reason, load_impl

PEER_NAMES = ("flashinfer-default", "flashinfer-cake", "vllm")
DEFAULT_GPU_IMPLS = ("optimized", *PEER_NAMES, "compile", "eager")
DEFAULT_CPU_IMPLS = ("reference",)
DEFAULT_PRESETS = ("deepseek-v3", "kimi-k2", "moonlight-16b-a3b")
GPU_ROWS = (1, 16, 256, 4096, 65536, 262144)
CPU_ROWS = (1, 16, 256)
STATUSES = ("ok", "rejects", "error", "unavailable")
HOST_CALLS = 1000
FORMAT = "moegate-bench"
FORMAT_VERSION = 1

ProgressFn = Callable[[str, int, int], None]
LoadFn = Callable[[str], Impl]


@dataclass(frozen=True)
class BenchRow:
    """One (impl, preset, dtype, T) of the sweep (module docstring). Times in µs; None where not timed.

    bytes: what one call must move (module docstring); floor_us: max(bytes / copy bandwidth, launch
    floor). width: the output width W the implementation writes; bias_dtype/weight_dtype: the dtypes it
    took and wrote ("none" without a bias). calls/sets: calls per timed batch, input sets rotated over.
    vs_peer/vs_floor: us over the fastest peer's us / over floor_us; fastest_peer names that peer.
    """

    impl: str
    preset: str
    dtype: str
    T: int
    status: str
    us: float | None
    bytes: int
    floor_us: float
    method: str = ""
    reason: str = ""
    width: int = 0
    bias_dtype: str = "none"
    weight_dtype: str = "float32"
    calls: int = 0
    sets: int = 0
    vs_peer: float | None = None
    vs_floor: float | None = None
    fastest_peer: str | None = None


@dataclass(frozen=True)
class HostRow:
    """The host path of one implementation: an eager call from Python to launch (`time_host`), µs."""

    impl: str
    preset: str
    dtype: str
    T: int
    status: str
    us: float | None
    min_us: float | None = None
    p90_us: float | None = None
    calls: int = 0
    reason: str = ""
    # The same call with the thread pinned to each CPU it may use (time_host_per_cpu): each CPU's median
    # µs (keys: the CPU numbers, as strings), their median and the slowest CPU's; empty / None where no
    # thread can be pinned.
    cpu_us: dict[str, float] = field(default_factory=dict)
    cpu_median_us: float | None = None
    cpu_worst_us: float | None = None


@dataclass(frozen=True)
class ImplInfo:
    """An implementation asked for: whether it loaded (else why), whether it is a peer, its contract."""

    name: str
    available: bool
    reason: str
    peer: bool
    contract: str | None


@dataclass(frozen=True)
class BenchResult:
    """Everything one run measured; `to_json()` is `moegate bench --json`'s document."""

    card: str
    driver: str
    versions: dict[str, str | None]
    device: str
    floors: Floors
    impls: list[ImplInfo]
    presets: list[str]
    dtypes: list[str]
    row_counts: list[int]
    rows: list[BenchRow]
    host: list[HostRow] = field(default_factory=list)
    spec_floors: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """{"format", "card", "driver", "versions", "device", "copy_floor_tbps", "copy_method",
        "copy_bytes", "launch_floor_us", "launch_method", "peers", "impls", "presets", "dtypes", "T",
        "rows": [BenchRow fields], "host": [HostRow fields], "floors": [{"preset", "dtype", "T", "bytes",
        "floor_us"} of the SPEC-complete call]}."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "card": self.card,
            "driver": self.driver,
            "versions": self.versions,
            "device": self.device,
            "copy_floor_tbps": self.floors.copy_tbps,
            "copy_method": self.floors.copy_method,
            "copy_bytes": self.floors.copy_bytes,
            "launch_floor_us": self.floors.launch_us,
            "launch_method": self.floors.launch_method,
            "peers": [i.name for i in self.impls if i.peer],
            "impls": [asdict(i) for i in self.impls],
            "presets": self.presets,
            "dtypes": self.dtypes,
            "T": self.row_counts,
            "rows": [asdict(r) for r in self.rows],
            "host": [asdict(h) for h in self.host],
            "floors": self.spec_floors,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> BenchResult:
        """The result a document of `to_json()` (a saved bench.json) describes; ValueError naming the
        key where the document is not one (another format, a later format_version, a key missing or a row
        with fields this version does not know)."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise ValueError(f"format={found!r}: not a moegate bench document (format {FORMAT!r})")
        if doc.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"format_version={doc.get('format_version')!r}: this moegate reads version {FORMAT_VERSION}"
            )
        try:
            floors = Floors(
                copy_tbps=float(doc["copy_floor_tbps"]),
                copy_method=doc["copy_method"],
                copy_bytes=int(doc["copy_bytes"]),
                launch_us=float(doc["launch_floor_us"]),
                launch_method=doc["launch_method"],
            )
            return cls(
                card=doc["card"],
                driver=doc["driver"],
                versions=dict(doc["versions"]),
                device=doc["device"],
                floors=floors,
                impls=[ImplInfo(**i) for i in doc["impls"]],
                presets=list(doc["presets"]),
                dtypes=list(doc["dtypes"]),
                row_counts=[int(t) for t in doc["T"]],
                rows=[BenchRow(**r) for r in doc["rows"]],
                host=[HostRow(**h) for h in doc.get("host", [])],
                spec_floors=list(doc.get("floors", [])),
            )
        except KeyError as exc:
            raise ValueError(f"key {exc.args[0]!r} missing: not a complete moegate bench document") from None
        except TypeError as exc:  # a row with a field BenchRow/HostRow/ImplInfo does not have, or lacks
            raise ValueError(f"a row does not match this moegate's bench format: {exc}") from None

    @property
    def errors(self) -> list[BenchRow | HostRow]:
        """Rows (and host rows) whose call raised."""
        return [r for r in [*self.rows, *self.host] if r.status == "error"]


# ---- contracts and bytes -------------------------------------------------------------------------------


def impl_contract(impl: object) -> Any | None:
    """The implementation's declared contract: `impl.contract`, else its function's `contract`
    attribute (so a `module:function` can declare one), else None (SPEC-complete)."""
    contract = getattr(impl, "contract", None)
    if contract is None:
        contract = getattr(getattr(impl, "fn", None), "contract", None)
    return contract


@dataclass(frozen=True)
class CallPlan:
    """How an implementation is called for one preset and scores dtype.

    config: the projected config (the preset's for a SPEC-complete implementation); bias_dtype: None when
    the preset's model has no bias; weight_dtype: the dtype it writes weights in; rejects: the contract's
    reasons for refusing (empty: accepted).
    """

    config: RoutingConfig
    scores_dtype: torch.dtype
    bias_dtype: torch.dtype | None
    weight_dtype: torch.dtype
    rejects: tuple[str, ...] = ()


def plan_call(contract: Any | None, preset: str, scores_dtype: torch.dtype) -> CallPlan:
    """The CallPlan of `preset` at `scores_dtype` under `contract` (None: the preset as is, the bias in
    the scores' dtype, float32 weights). A `project` that raises ValueError/TypeError is a rejection with
    its message; anything else a contract raises propagates."""
    config = get_preset(preset)
    has_bias = preset_has_bias(preset)
    if contract is None:
        return CallPlan(config, scores_dtype, scores_dtype if has_bias else None, torch.float32)
    bias_dtype = contract.bias_dtype(scores_dtype)[0] if has_bias else None
    weight_dtype = contract.weight_dtype(scores_dtype)
    try:
        projected = contract.project(config)
    except (ValueError, TypeError) as exc:
        return CallPlan(config, scores_dtype, bias_dtype, weight_dtype, (str(exc),))
    reasons = tuple(str(r) for r in contract.rejects(projected, scores_dtype, bias_dtype))
    return CallPlan(projected, scores_dtype, bias_dtype, weight_dtype, reasons)


def call_bytes(
    config: RoutingConfig,
    num_rows: int,
    scores_dtype: torch.dtype,
    bias_dtype: torch.dtype | None,
    weight_dtype: torch.dtype = torch.float32,
) -> int:
    """Bytes one call must move: logits [T, E] and bias [E] in, ids int32 [T, W] and weights [T, W] out."""
    if isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 0:
        raise ValueError(f"num_rows={num_rows!r}, but num_rows must be an int >= 0")
    experts, width = config.num_experts, config.output_width
    bias = 0 if bias_dtype is None else experts * bias_dtype.itemsize
    return num_rows * experts * scores_dtype.itemsize + bias + num_rows * width * (4 + weight_dtype.itemsize)


def make_inputs(plan: CallPlan, preset: str, num_rows: int, device: torch.device, index: int) -> Any:
    """Input set `index` for `plan`: scores [T, E] ~ N(0, 1) in the scores' dtype and bias [E] ~ 0.1 N(0, 1)
    in the bias dtype (None without a bias), generated on `device` from a seed of (preset, dtype, T,
    index)."""
    seed = zlib.crc32(f"{preset}/{plan.scores_dtype}/{num_rows}/{index}".encode())
    gen = torch.Generator(device=device).manual_seed(seed)
    experts = plan.config.num_experts
    scores = torch.randn(num_rows, experts, generator=gen, device=device, dtype=plan.scores_dtype)
    bias = None
    if plan.bias_dtype is not None:
        bias = (0.1 * torch.randn(experts, generator=gen, device=device)).to(plan.bias_dtype)
    return scores, bias


# ---- ratios --------------------------------------------------------------------------------------------


def with_ratios(rows: Sequence[BenchRow], peers: Sequence[str]) -> list[BenchRow]:
    """`rows` with vs_peer (us over the fastest timed peer at the same preset, dtype and T; None where no
    peer was timed) and vs_floor (us over floor_us) filled in for every "ok" row."""
    fastest: dict[tuple[str, str, int], BenchRow] = {}
    for r in rows:
        key = (r.preset, r.dtype, r.T)
        if r.impl in peers and r.status == "ok" and r.us is not None:
            if key not in fastest or r.us < fastest[key].us:  # type: ignore[operator]
                fastest[key] = r
    out = []
    for r in rows:
        if r.status != "ok" or r.us is None:
            out.append(r)
            continue
        peer = fastest.get((r.preset, r.dtype, r.T))
        out.append(
            replace(
                r,
                vs_peer=None if peer is None or not peer.us else r.us / peer.us,
                fastest_peer=None if peer is None else peer.impl,
                vs_floor=r.us / r.floor_us if r.floor_us > 0 else None,
            )
        )
    return out


# ---- the sweep -----------------------------------------------------------------------------------------


def _load(spec: str | Impl, device: torch.device, load: LoadFn) -> tuple[str, Impl | None, str]:
    """(name, impl or None, reason it cannot run here)."""
    if not isinstance(spec, str):
        impl = spec
    else:
        try:
            impl = load(spec)
        except Exception as exc:  # ValueError by contract; anything else is reported, never a crash
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            return spec.strip(), None, reason
    if impl.default_device == "cuda":
        if device.type != "cuda":
            return impl.name, None, f"it runs on CUDA tensors, but this run is on {device}"
        if impl.name == "optimized":
            reason = gpu_unavailable_reason()
            if reason is not None:
                return impl.name, None, reason
    return impl.name, impl, ""


def _check_args(
    presets: Sequence[str], dtypes: Sequence[torch.dtype], row_counts: Sequence[int]
) -> tuple[list[str], list[torch.dtype], list[int]]:
    names = fx.resolve_presets(presets)
    if not names:
        raise ValueError("presets=[], but at least one preset is needed")
    dts = list(dict.fromkeys(dtypes))
    for d in dts:
        if d not in fx.DTYPES.values():
            raise TypeError(f"dtype={d!r}, but dtypes must be among {', '.join(fx.DTYPES)}")
    if not dts:
        raise ValueError("dtypes=[], but at least one scores dtype is needed")
    counts = list(dict.fromkeys(row_counts))
    for t in counts:
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise ValueError(f"T={t!r}, but every T must be an int >= 1")
    if not counts:
        raise ValueError("rows=[], but at least one T is needed")
    return names, dts, counts


def _describe(contract: Any | None) -> str | None:
    if contract is None:
        return None
    return str(getattr(contract, "summary", None) or type(contract).__name__)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _time_row(
    impl: Impl, preset: str, plan: CallPlan, num_rows: int, device: torch.device, timer: Timer
) -> tuple[str, float | None, str, str, int, int]:
    """(status, us, method, reason, calls, sets) of one timed row."""
    config = plan.config

    def call(scores: torch.Tensor, bias: torch.Tensor | None) -> object:
        return impl(scores, bias, config)

    try:
        scores, bias = make_inputs(plan, preset, num_rows, device, 0)
        ids, weights = call(scores, bias)  # type: ignore[misc]
        expected = (num_rows, config.output_width)
        if tuple(ids.shape) != expected or tuple(weights.shape) != expected:
            shapes = f"ids {tuple(ids.shape)} and weights {tuple(weights.shape)}"
            return "error", None, "", f"returned {shapes}, but [T, W] = {list(expected)}", 0, 0
        del scores, bias, ids, weights
        set_bytes = call_bytes(config, num_rows, plan.scores_dtype, plan.bias_dtype)
        timing = timer.time(call, lambda i: make_inputs(plan, preset, num_rows, device, i), set_bytes)
    except Exception as exc:
        return "error", None, "", _error(exc), 0, 0
    return "ok", timing.seconds * 1e6, timing.method, timing.note, timing.calls, timing.sets


def _cell_rows(
    name: str,
    impl: Impl | None,
    reason: str,
    preset: str,
    dtype: torch.dtype,
    counts: Sequence[int],
    device: torch.device,
    timer: Timer,
    floors: Floors,
) -> Iterator[BenchRow]:
    """The rows of one (impl, preset, dtype), one per T, each yielded once it is measured."""
    plan, plan_error = None, ""
    if impl is not None:
        try:
            plan = plan_call(impl_contract(impl), preset, dtype)
        except Exception as exc:
            plan_error = f"its contract raised {_error(exc)}"
    shape = plan or plan_call(None, preset, dtype)  # bytes and width of what it would be called with
    for t in counts:
        nbytes = call_bytes(shape.config, t, dtype, shape.bias_dtype, shape.weight_dtype)
        row = BenchRow(
            impl=name,
            preset=preset,
            dtype=fx.dtype_name(dtype),
            T=t,
            status="unavailable",
            us=None,
            bytes=nbytes,
            floor_us=floors.floor_us(nbytes),
            reason=reason,
            width=shape.config.output_width,
            bias_dtype="none" if shape.bias_dtype is None else fx.dtype_name(shape.bias_dtype),
            weight_dtype=fx.dtype_name(shape.weight_dtype),
        )
        if impl is None:
            yield row
        elif plan is None:
            yield replace(row, status="error", reason=plan_error)
        elif plan.rejects:
            yield replace(row, status="rejects", reason="; ".join(plan.rejects))
        else:
            status, us, method, note, calls, sets = _time_row(impl, preset, plan, t, device, timer)
            yield replace(row, status=status, us=us, method=method, reason=note, calls=calls, sets=sets)


def run_benchmark(
    impls: Sequence[str | Impl],
    presets: Sequence[str] = DEFAULT_PRESETS,
    dtypes: Sequence[torch.dtype] = (torch.bfloat16,),
    rows: Sequence[int] | None = None,
    *,
    device: str | torch.device | None = None,
    peers: Sequence[str] = PEER_NAMES,
    host: bool = False,
    host_calls: int = HOST_CALLS,
    timer: Timer | None = None,
    floors: Floors | None = None,
    progress: ProgressFn | None = None,
    announce: Callable[[str], None] | None = None,
    load: LoadFn = load_impl,
) -> BenchResult:
    """Time every implementation over presets x dtypes x T (module docstring) and return the result.

    impls: names for `load_impl` ("optimized", "flashinfer-default", "compile", "eager", "module:fn") or
        Impl objects; a name that fails to load gives "unavailable" rows, never an exception.
    presets: preset names ("all" for every preset); dtypes: scores dtypes (the bias follows the scores'
        dtype unless a contract says otherwise); rows: the T values (default GPU_ROWS on a GPU,
        CPU_ROWS on the CPU).
    device: "cuda" or "cpu" (default: cuda when a GPU is visible); peers: the names `vs_peer` compares to.
    host: also time the host path (`time_host`, `host_calls` calls) of each implementation at T = 1 for
        the first preset and dtype, then the same with the thread pinned to each CPU it may use in turn
        (`time_host_per_cpu`, `host_calls` calls per CPU).
    timer, floors: injected in tests; default `default_timer(device)` and `measure_floors(device)`.
    progress: called as progress("<impl> <preset>", done, total) after each row.
    announce: called with one line saying what runs, once the implementations are loaded.

    Raises:
        ValueError, TypeError: unknown preset, a dtype that is not a scores dtype, T < 1, a bad device, or
            no implementation that can run here.
    """
    dev = fx.check_device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    preset_list, dtype_list, counts = _check_args(
        presets, dtypes, rows if rows is not None else (GPU_ROWS if dev.type == "cuda" else CPU_ROWS)
    )
    loaded = [_load(spec, dev, load) for spec in impls]
    loaded = list({name: (name, impl, reason) for name, impl, reason in loaded}.values())  # drop repeats
    if not any(impl is not None for _, impl, _ in loaded):
        why = "; ".join(f"{name}: {reason}" for name, _, reason in loaded)
        raise ValueError(f"impls={[n for n, _, _ in loaded]}, but none can run here ({why})")
    infos = [
        ImplInfo(name, impl is not None, reason, name in peers, _describe(impl_contract(impl)))
        for name, impl, reason in loaded
    ]
    if announce is not None:
        runnable = [name for name, impl, _ in loaded if impl is not None]
        announce(
            f"timing {', '.join(runnable)} on {', '.join(preset_list)}, "
            f"{', '.join(fx.dtype_name(d) for d in dtype_list)}, T = {', '.join(map(str, counts))}, "
            f"on {fx.device_name(dev)}" + ("" if floors is not None else "; measuring the floors first")
        )
    timer = timer if timer is not None else default_timer(dev)
    card, driver, versions = environment(dev)
    floors = floors if floors is not None else measure_floors(dev)

    out: list[BenchRow] = []
    for name, impl, reason in loaded:
        total = len(dtype_list) * len(counts)
        for preset in preset_list:
            for j, dtype in enumerate(dtype_list):
                cell = _cell_rows(name, impl, reason, preset, dtype, counts, dev, timer, floors)
                for k, row in enumerate(cell):
                    out.append(row)
                    if progress is not None and impl is not None:
                        progress(f"{name} {preset}", j * len(counts) + k + 1, total)
    impl_order = {name: i for i, (name, _, _) in enumerate(loaded)}
    dtype_order = [fx.dtype_name(d) for d in dtype_list]
    out.sort(key=lambda r: (preset_list.index(r.preset), dtype_order.index(r.dtype), r.T, impl_order[r.impl]))
    host_rows = []
    if host:
        for name, impl, reason in loaded:
            host_rows.append(
                _host_row(name, impl, reason, preset_list[0], dtype_list[0], dev, host_calls, progress)
            )
    spec_floors = []
    for preset in preset_list:
        for dtype in dtype_list:
            spec = plan_call(None, preset, dtype)
            for t in counts:
                nbytes = call_bytes(spec.config, t, dtype, spec.bias_dtype, spec.weight_dtype)
                spec_floors.append(
                    {
                        "preset": preset,
                        "dtype": fx.dtype_name(dtype),
                        "T": t,
                        "bytes": nbytes,
                        "floor_us": floors.floor_us(nbytes),
                    }
                )
    return BenchResult(
        card=card,
        driver=driver,
        versions=versions,
        device=str(dev),
        floors=floors,
        impls=infos,
        presets=preset_list,
        dtypes=[fx.dtype_name(d) for d in dtype_list],
        row_counts=counts,
        rows=with_ratios(out, peers),
        host=host_rows,
        spec_floors=spec_floors,
    )


def _host_row(
    name: str,
    impl: Impl | None,
    reason: str,
    preset: str,
    dtype: torch.dtype,
    device: torch.device,
    calls: int,
    progress: ProgressFn | None,
) -> HostRow:
    row = HostRow(name, preset, fx.dtype_name(dtype), 1, "unavailable", None, reason=reason)
    if impl is None:
        return row
    try:
        plan = plan_call(impl_contract(impl), preset, dtype)
        if plan.rejects:
            return replace(row, status="rejects", reason="; ".join(plan.rejects))
        config = plan.config

        def call(s: torch.Tensor, b: torch.Tensor | None) -> object:
            return impl(s, b, config)

        inputs = make_inputs(plan, preset, 1, device, 0)
        samples = time_host(call, inputs, device, calls=calls)
        pinned = time_host_per_cpu(call, inputs, device, calls=calls)
    except Exception as exc:
        return replace(row, status="error", reason=_error(exc))
    finally:
        if progress is not None:
            progress(f"host path {name}", 1, 1)
    samples_us = sorted(s * 1e6 for s in samples)
    cpu_us = {str(cpu): statistics.median(values) * 1e6 for cpu, values in pinned.items()}
    return replace(
        row,
        status="ok",
        us=statistics.median(samples_us),
        min_us=samples_us[0],
        p90_us=samples_us[min(len(samples_us) - 1, (9 * len(samples_us)) // 10)],
        calls=len(samples_us),
        cpu_us=cpu_us,
        cpu_median_us=statistics.median(cpu_us.values()) if cpu_us else None,
        cpu_worst_us=max(cpu_us.values()) if cpu_us else None,
    )
