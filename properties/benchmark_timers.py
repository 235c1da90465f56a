"""How `moegate bench` measures: per-call timers, the copy and launch floors, the host path, and the card.

GPU (every function here imports on a machine without a GPU or CuPy; CuPy is imported on first use):

- `CudaTimer`: time per call from CUDA-graph replays. Enough input sets that their bytes exceed twice the
  L2 cache (`rotation_set_count`), one graph that calls the implementation once per set and rotates over
  them, replayed several times; the median of (replay time / calls). Each implementation is warmed up
  eagerly on a side stream first (compilation happens on the first call). An implementation that cannot
  be captured (it synchronizes, say) is timed by CUDA events around eager calls instead, and the timing's
  method says so ("graph" or "events").
- `measure_floors`: the copy floor, the device-to-device bandwidth of a *kernel* copy of a large float32
  buffer (CuPy float4 kernel, else `torch.mul(src, 1, out=dst)`), read plus write bytes, timed with
  events and never inside a graph (a graph turns a copy into a slower copy-engine node); and the launch
  floor, an empty kernel replayed in a CUDA graph, per launch.

CPU: `CpuTimer` (time.perf_counter over repeated calls) and CPU stand-ins for the floors, so the whole
benchmark runs in CI on the reference at tiny sizes.

`time_host` is the host path: Python to launch, timed on the CPU side, no synchronize inside the timed
region; `time_host_per_cpu` the same with the calling thread pinned to each CPU it may use in turn (on an
H200 machine the same call took 5.1 µs on most CPUs and 7.4 to 7.7 on three: docs/perf.md, session 15).
`environment` names the card, the driver and the versions.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
import platform
import shutil
import statistics
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from . import fixtures as fx

Inputs = tuple[torch.Tensor, "torch.Tensor | None"]
CallFn = Callable[[torch.Tensor, "torch.Tensor | None"], object]
MakeSet = Callable[[int], Inputs]

L2_FACTOR = 2  # input sets whose bytes exceed this many times the L2 cache
MAX_SETS = 64  # at most this many input sets ...
MAX_SET_BYTES = 4 << 30  # ... and at most this many bytes of them
COPY_BYTES = 1 << 30  # the copy floor's buffer (each of source and destination), when memory allows
LAUNCH_FLOOR_KERNELS = 1000  # empty kernels in the launch floor's graph

FLOOR_KERNELS = r"""
// The copy floor: one float4 (16 bytes) per thread, read once and written once.
extern "C" __global__ void moegate_copy_float4(const float4* __restrict__ src, float4* __restrict__ dst,
                                               unsigned long long n) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = src[i];
}
// The launch floor: a kernel that does nothing.
extern "C" __global__ void moegate_empty() {}
"""


@dataclass(frozen=True)
class Timing:
    """One implementation's time per call at one input size.

    seconds: median time per call. method: "graph" (CUDA-graph replays), "events" (CUDA events around
    eager calls, where capture failed) or "perf_counter" (CPU). calls: calls per timed batch (per graph).
    sets: distinct input sets the calls rotated over. note: why the method fell back, else "".
    """

    seconds: float
    method: str
    calls: int
    sets: int
    note: str = ""


class Timer(Protocol):
    """Times `call(scores, bias)` over input sets `make_set(i)` of `set_bytes` bytes each."""

    def time(self, call: CallFn, make_set: MakeSet, set_bytes: int) -> Timing: ...


@dataclass(frozen=True)
class Floors:
    """The floors measured in this run.

    copy_tbps: device-to-device bandwidth in TB/s (1e12 bytes/s, read plus write) of a kernel copy.
    copy_method: what copied ("CuPy float4 kernel", "torch.mul", ...); copy_bytes: the buffer's size.
    launch_us: time per launch of an empty kernel replayed in a CUDA graph, µs; launch_method: how.
    """

    copy_tbps: float
    copy_method: str
    copy_bytes: int
    launch_us: float
    launch_method: str

    def floor_us(self, num_bytes: int) -> float:
        """max(bytes / copy bandwidth, launch floor) in µs: no call can be faster."""
        return max(num_bytes / (self.copy_tbps * 1e12) * 1e6, self.launch_us)


# ---- sizing (pure arithmetic, unit-tested) -----------------------------------------------------------


def rotation_set_count(
    set_bytes: int, l2_bytes: int, *, max_sets: int = MAX_SETS, max_bytes: int = MAX_SET_BYTES
) -> int:
    """Input sets to rotate over so that their bytes exceed L2_FACTOR x the L2 cache, in [1, max_sets]
    and at most max_bytes in all (never fewer than one set)."""
    if set_bytes <= 0:
        raise ValueError(f"set_bytes={set_bytes}, but set_bytes must be > 0")
    wanted = L2_FACTOR * max(l2_bytes, 0) // set_bytes + 1  # the fewest sets with more bytes than that
    return max(1, min(wanted, max_sets, max_bytes // set_bytes))


def plan_calls(seconds_per_call: float, *, target_s: float, max_calls: int) -> int:
    """Calls per timed batch: enough that a batch lasts about target_s, in [1, max_calls]. Slow
    implementations (eager PyTorch at T = 262144) get one call, so a sweep's time stays bounded."""
    if max_calls < 1:
        raise ValueError(f"max_calls={max_calls}, but max_calls must be >= 1")
    estimate = max(seconds_per_call, 1e-9)
    return max(1, min(max_calls, math.ceil(target_s / estimate)))


# ---- CPU ---------------------------------------------------------------------------------------------


@dataclass
class CpuTimer:
    """time.perf_counter over batches of calls on one input set (no caches to defeat on a CPU run)."""

    replays: int = 5
    target_s: float = 0.01
    max_calls: int = 100

    def time(self, call: CallFn, make_set: MakeSet, set_bytes: int) -> Timing:
        inputs = make_set(0)
        call(*inputs)  # warm-up
        start = time.perf_counter()
        call(*inputs)
        calls = plan_calls(time.perf_counter() - start, target_s=self.target_s, max_calls=self.max_calls)
        samples = []
        for _ in range(self.replays):
            start = time.perf_counter()
            for _ in range(calls):
                call(*inputs)
            samples.append((time.perf_counter() - start) / calls)
        return Timing(statistics.median(samples), "perf_counter", calls, 1)


def measure_cpu_floors(copy_bytes: int = 64 << 20, repeats: int = 5) -> Floors:
    """CPU stand-ins for the floors: a torch copy_ of a float32 buffer (read plus write bytes) and the
    overhead of one torch op on one element. Only so that a CPU run fills every column."""
    numel = max(1, copy_bytes // 4)
    src, dst = torch.ones(numel), torch.empty(numel)
    dst.copy_(src)
    copies = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        copies.append(time.perf_counter() - start)
    x, y = torch.zeros(1), torch.empty(1)
    ops = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(100):
            torch.add(x, 1, out=y)
        ops.append((time.perf_counter() - start) / 100)
    return Floors(
        copy_tbps=2 * numel * 4 / statistics.median(copies) / 1e12,
        copy_method="torch copy_ on the CPU",
        copy_bytes=numel * 4,
        launch_us=statistics.median(ops) * 1e6,
        launch_method="one torch.add on one element (CPU op overhead)",
    )


# ---- GPU ---------------------------------------------------------------------------------------------


def _cupy() -> Any:
    """CuPy, or None where it is not installed."""
    if importlib.util.find_spec("cupy") is None:
        return None
    import cupy

    return cupy


def _cupy_stream(cupy: Any, device: torch.device) -> Any:
    """A CuPy handle on torch's current stream of `device` (the capture stream inside torch.cuda.graph)."""
    with warnings.catch_warnings():
        # CuPy 14 deprecates ExternalStream for Stream.from_external(obj with __cuda_stream__); torch gives
        # a raw pointer on every version.
        warnings.simplefilter("ignore", DeprecationWarning)
        return cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream, _index(device))


def _index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def _events() -> tuple[torch.cuda.Event, torch.cuda.Event]:
    return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)


def _elapsed_s(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds `fn` takes on the GPU: CUDA events on torch's current stream around it."""
    begin, end = _events()
    begin.record(torch.cuda.current_stream(device))
    fn()
    end.record(torch.cuda.current_stream(device))
    end.synchronize()
    return begin.elapsed_time(end) * 1e-3


@dataclass
class CudaTimer:
    """CUDA-graph replays over input sets rotated past L2 (module docstring); events where capture fails."""

    device: torch.device
    replays: int = 5
    target_s: float = 0.02  # aimed-at length of one graph replay (or one batch of eager calls)
    max_calls: int = 256
    max_sets: int = MAX_SETS
    max_set_bytes: int = MAX_SET_BYTES

    def l2_bytes(self) -> int:
        props = torch.cuda.get_device_properties(self.device)
        return int(getattr(props, "L2_cache_size", 50 << 20))

    def time(self, call: CallFn, make_set: MakeSet, set_bytes: int) -> Timing:
        dev = self.device
        num_sets = rotation_set_count(
            set_bytes, self.l2_bytes(), max_sets=self.max_sets, max_bytes=self.max_set_bytes
        )
        sets = [make_set(i) for i in range(num_sets)]
        # Warm up eagerly on a side stream (the pattern torch.cuda.graph documents): compilation, module
        # loads, allocator growth and library workspaces happen here, not during capture.
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            for inputs in sets:
                call(*inputs)
        torch.cuda.current_stream(dev).wait_stream(side)
        torch.cuda.synchronize(dev)
        estimate = _elapsed_s(lambda: [call(*sets[i % num_sets]) for i in range(3)], dev) / 3
        calls = plan_calls(estimate, target_s=self.target_s, max_calls=self.max_calls)
        used = min(num_sets, calls)

        def batch() -> None:
            for i in range(calls):
                call(*sets[i % used])

        stream = torch.cuda.current_stream(dev)
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                batch()
        except Exception as exc:  # the implementation cannot be captured: time eager calls with events
            first_line = (str(exc).splitlines() or [""])[0]
            note = f"graph capture failed ({type(exc).__name__}: {first_line})"
            # torch.cuda.graph's __exit__ skips restoring the stream when capture_end raises
            torch.cuda.set_stream(stream)
            _settle(dev)
            batch()
            samples = [_elapsed_s(batch, dev) / calls for _ in range(self.replays)]
            return Timing(statistics.median(samples), "events", calls, used, note)
        graph.replay()
        torch.cuda.synchronize(dev)
        samples = [_elapsed_s(graph.replay, dev) / calls for _ in range(self.replays)]
        del graph
        return Timing(statistics.median(samples), "graph", calls, used)


def _settle(device: torch.device) -> None:
    """After a failed capture: wait for the device; a capture error is not sticky, so this normally passes."""
    try:
        torch.cuda.synchronize(device)
    except Exception:  # pragma: no cover - depends on the driver's state
        pass


def _copy_floor(device: torch.device, nbytes: int, kernel: Any, repeats: int) -> tuple[float, int]:
    """(seconds per copy, bytes) of a device-to-device copy of nbytes of float32 by `kernel` (a CuPy
    float4 copy kernel, or None: torch.mul(src, 1, out=dst)), the median of `repeats` event-timed copies."""
    nbytes = max(16, nbytes // 16 * 16)
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    if kernel is not None:
        cupy = _cupy()
        num_vec, block = nbytes // 16, 256
        args = (np.uint64(src.data_ptr()), np.uint64(dst.data_ptr()), np.uint64(num_vec))

        def copy() -> None:
            with cupy.cuda.Device(_index(device)):
                grid = (num_vec + block - 1) // block
                kernel((grid,), (block,), args, stream=_cupy_stream(cupy, device))

    else:

        def copy() -> None:
            torch.mul(src, 1, out=dst)

    for _ in range(2):
        copy()
    torch.cuda.synchronize(device)
    return statistics.median(_elapsed_s(copy, device) for _ in range(repeats)), nbytes


def _launch_floor(device: torch.device, kernel: Any) -> float:
    """Seconds per launch of an empty kernel (`kernel`, a CuPy kernel, or None: an add_ on one element),
    LAUNCH_FLOOR_KERNELS launches captured in one CUDA graph, the median of 5 replays."""
    if kernel is not None:
        cupy = _cupy()

        def launch() -> None:
            with cupy.cuda.Device(_index(device)):
                kernel((1,), (1,), (), stream=_cupy_stream(cupy, device))

    else:
        one = torch.zeros(1, device=device)

        def launch() -> None:
            one.add_(1)

    launch()  # loads the module before capture
    torch.cuda.synchronize(device)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(LAUNCH_FLOOR_KERNELS):
            launch()
    graph.replay()
    torch.cuda.synchronize(device)
    return statistics.median(_elapsed_s(graph.replay, device) for _ in range(5)) / LAUNCH_FLOOR_KERNELS


def measure_cuda_floors(device: torch.device, *, copy_bytes: int = COPY_BYTES, repeats: int = 10) -> Floors:
    """The copy floor and the launch floor on `device` (module docstring). The copy allocates 2 x
    copy_bytes (less when free memory is short: at most a quarter of it each) and frees it afterwards."""
    cupy = _cupy()
    copy_kernel = empty_kernel = None
    if cupy is not None:
        with cupy.cuda.Device(_index(device)):
            module = cupy.RawModule(code=FLOOR_KERNELS)
            copy_kernel = module.get_function("moegate_copy_float4")
            empty_kernel = module.get_function("moegate_empty")
        copy_method = "CuPy float4 kernel, timed with CUDA events"
        launch_method = f"empty CuPy kernel, {LAUNCH_FLOOR_KERNELS} launches in a CUDA graph"
    else:
        copy_method = "torch.mul(src, 1, out=dst) (CuPy is not installed), timed with CUDA events"
        launch_method = f"add_ on one element (CuPy is not installed), {LAUNCH_FLOOR_KERNELS} in a CUDA graph"
    free, _total = torch.cuda.mem_get_info(device)
    copy_s, nbytes = _copy_floor(device, min(copy_bytes, free // 4), copy_kernel, repeats)
    torch.cuda.empty_cache()
    launch_s = _launch_floor(device, empty_kernel)
    return Floors(
        copy_tbps=2 * nbytes / copy_s / 1e12,
        copy_method=copy_method,
        copy_bytes=nbytes,
        launch_us=launch_s * 1e6,
        launch_method=launch_method,
    )


def measure_floors(device: torch.device) -> Floors:
    """The floors of `device`: measured on the GPU for CUDA, CPU stand-ins otherwise."""
    return measure_cuda_floors(device) if device.type == "cuda" else measure_cpu_floors()


def default_timer(device: torch.device, replays: int = 5) -> Timer:
    """CudaTimer on a GPU, CpuTimer on the CPU."""
    return CudaTimer(device, replays=replays) if device.type == "cuda" else CpuTimer(replays=replays)


# ---- the host path -----------------------------------------------------------------------------------


def time_host(
    call: CallFn,
    inputs: Inputs,
    device: torch.device,
    *,
    calls: int = 1000,
    warmup: int = 20,
    sync_every: int = 50,
) -> list[float]:
    """Seconds from Python to launch for each of `calls` eager calls: time.perf_counter around the call
    alone, no synchronize inside the timed region; the device is synchronized every `sync_every` calls,
    outside it, so the launch queue never fills (a full queue would block the launch and be timed)."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        call(*inputs)
    sync()
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        call(*inputs)
        samples.append(time.perf_counter() - start)
        if (i + 1) % sync_every == 0:
            sync()
    sync()
    return samples


def pinnable_cpus() -> list[int]:
    """The CPUs the calling thread may run on (os.sched_getaffinity), where the platform can pin a thread
    to one of them; [] elsewhere (macOS, Windows) or with a single CPU."""
    if not (hasattr(os, "sched_getaffinity") and hasattr(os, "sched_setaffinity")):
        return []
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except OSError:
        return []
    return cpus if len(cpus) > 1 else []


def time_host_per_cpu(
    call: CallFn,
    inputs: Inputs,
    device: torch.device,
    *,
    calls: int = 1000,
    rounds: int = 2,
) -> dict[int, list[float]]:
    """`time_host` on each CPU of `pinnable_cpus()`: the calling thread pinned to one CPU at a time, in
    `rounds` passes over the CPUs (so a CPU that is slow for a moment is not taken for a slow CPU) of
    calls // rounds calls each; seconds per call, per CPU. The thread's affinity is restored afterwards,
    whatever happens. {} where no thread can be pinned."""
    if calls < 1 or rounds < 1:
        raise ValueError(f"calls={calls}, rounds={rounds}, but need calls >= 1 and rounds >= 1")
    cpus = pinnable_cpus()
    if not cpus:
        return {}
    allowed = os.sched_getaffinity(0)
    samples: dict[int, list[float]] = {cpu: [] for cpu in cpus}
    per_round = max(1, calls // rounds)
    try:
        for _ in range(rounds):
            for cpu in cpus:
                os.sched_setaffinity(0, {cpu})
                samples[cpu].extend(time_host(call, inputs, device, calls=per_round, warmup=5))
    finally:
        os.sched_setaffinity(0, allowed)
    return samples


# ---- the card and the versions -----------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def driver_version() -> str:
    """The NVIDIA driver's version: pynvml, else nvidia-smi, else "unknown"."""
    if importlib.util.find_spec("pynvml") is not None:
        try:
            import pynvml

            pynvml.nvmlInit()
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else str(version)
        except Exception:  # fall through to nvidia-smi
            pass
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        try:
            done = subprocess.run(
                [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            lines = done.stdout.strip().splitlines()
            if done.returncode == 0 and lines:
                return lines[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return "unknown"


def environment(device: torch.device) -> tuple[str, str, dict[str, str | None]]:
    """(card, driver, versions) for the report: the GPU's name (or "cpu (<machine>)"), the driver's
    version ("none" on a CPU run) and the versions of python, moegate, torch, CUDA, CuPy and Triton."""
    cupy_version = None
    if device.type == "cuda":
        cupy = _cupy()
        cupy_version = None if cupy is None else str(cupy.__version__)
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "moegate": fx.moegate_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cupy": cupy_version,
        "triton": _version("triton"),
    }
    driver = driver_version() if device.type == "cuda" else "none"
    return fx.device_name(device), driver, versions
