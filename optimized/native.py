"""The compiled launcher (optimized/kernels/launcher.cpp): building it, loading it, and its records.

An eager `route` call through the Python launcher costs ~20 µs on the host (two `torch.empty` from Python,
packing the arguments, the ctypes call into the driver); the compiled launcher does the checks, the two
allocations, the plan, the geometry and `cuLaunchKernelEx` in one C++ call. It is built on first use with
torch's C++ extension loader (a C++ compiler and ninja; a few tens of seconds, once per source, torch and
Python version) into `$MOEGATE_CACHE_DIR/launcher/`, else `$XDG_CACHE_HOME/moegate/launcher/`, else
`~/.cache/moegate/launcher/`.

$MOEGATE_LAUNCH selects the launcher: unset or "native": the compiled launcher, and the Python one where it
cannot be built (a warning says why, once); "python": the Python launcher (ctypes into the driver); "cupy":
CuPy's own kernel call (no programmatic dependent launch). Every launcher launches the same kernels with
the same arguments, so the outputs are bitwise the same (tests/test_native_gpu.py checks that).

The first call of a (config, device, scores dtype) takes the Python path, which checks, compiles and
loads the kernels, and registers them in the config's record; later calls go through C++ alone. Anything
the C++ checks do not accept (every input `check_inputs` rejects among them) goes back to the Python path,
which raises `check_inputs`' own error: the same checks, the same messages, all before any launch.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import torch

from moegate.reference import RoutingConfig

from .dispatch import SCORE_DTYPE_CODES, KernelPlan, config_arguments

LAUNCHER_SOURCE = Path(__file__).resolve().parent / "kernels" / "launcher.cpp"
CACHE_ENV = "MOEGATE_CACHE_DIR"
LAUNCH_ENV = "MOEGATE_LAUNCH"  # "native" (default), "python" or "cupy"
LAUNCHERS: tuple[str, ...] = ("native", "python", "cupy")
# Records kept for this many distinct config objects; beyond, they are dropped and rebuilt on demand.
MAX_RECORDS = 1024


def launcher_choice() -> str:
    """$MOEGATE_LAUNCH as one of LAUNCHERS (unset or empty: "native"); raises ValueError otherwise."""
    value = os.environ.get(LAUNCH_ENV, "").strip().lower() or "native"
    if value not in LAUNCHERS:
        raise ValueError(f"${LAUNCH_ENV}={value!r}, but it must be one of {LAUNCHERS} (or unset)")
    return value


def cache_dir() -> Path:
    """$MOEGATE_CACHE_DIR, else $XDG_CACHE_HOME/moegate, else ~/.cache/moegate."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "moegate"


def extension_name() -> str:
    """The module name of this build: the source's digest, torch's and Python's versions (a changed source
    or another torch never loads a stale build)."""
    digest = hashlib.sha256()
    digest.update(LAUNCHER_SOURCE.read_bytes())
    digest.update(torch.__version__.encode())
    digest.update(sys.version.encode())
    return f"moegate_launcher_{digest.hexdigest()[:16]}"


_build_lock = threading.Lock()
_module: Any = None
_build_error: str | None = None


def build_extension(verbose: bool = False) -> Any:
    """Compile (or load the cached build of) launcher.cpp and return the module. Raises what the compile
    raises (no compiler, no ninja, a compile error)."""
    from torch.utils import cpp_extension

    name = extension_name()
    directory = cache_dir() / "launcher" / name
    directory.mkdir(parents=True, exist_ok=True)
    return cpp_extension.load(
        name=name,
        sources=[str(LAUNCHER_SOURCE)],
        extra_cflags=["-O2", "-std=c++17"],
        build_directory=str(directory),
        with_cuda=False,
        verbose=verbose,
    )


def load_extension() -> Any:
    """The compiled launcher module, built once per process (None if it cannot be built: the reason is
    warned once and kept in `build_error()`)."""
    global _module, _build_error
    if _module is not None or _build_error is not None:
        return _module
    with _build_lock:
        if _module is None and _build_error is None:
            try:
                _module = build_extension()
            except Exception as error:  # no compiler, no ninja, headers missing: the Python launcher
                lines = str(error).strip().splitlines()
                _build_error = f"{type(error).__name__}: {lines[-1] if lines else ''}"
                warnings.warn(
                    f"moegate: the compiled launcher could not be built ({_build_error}); eager route calls "
                    f"take the Python launcher (~20 us of host time instead of a few). "
                    f"${LAUNCH_ENV}=python silences this.",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _module


def build_error() -> str | None:
    """Why the compiled launcher is not available in this process (None if it is, or was not tried)."""
    return _build_error


def configure(module: Any, allow_cpu: bool = False, launch_address: int | None = None) -> None:
    """Point `module` at the driver's cuLaunchKernelEx (or `launch_address`: a test's recording callback),
    torch's current-stream function and LaunchError; `allow_cpu` lets CPU tensors through (tests)."""
    from .launch import LaunchError, _driver

    if launch_address is None:
        launch_address = ctypes.cast(_driver().cuLaunchKernelEx, ctypes.c_void_p).value
    stream_function = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if stream_function is None:  # torch without CUDA: only the CPU test mode reaches the launcher

        def stream_function(device_index: int) -> int:
            return int(torch.cuda.current_stream(device_index).cuda_stream)

    module.configure(launch_address, stream_function, LaunchError, allow_cpu)


def make_record_arguments(config: RoutingConfig, plan: KernelPlan) -> tuple[int | float, ...]:
    """launcher.cpp's make_record arguments for `config` and `plan`, in its order."""
    return (
        *config_arguments(config),
        config.output_width,
        plan.warps_per_block,
        plan.rows_per_warp,
        int(plan.latency_name_expression is not None),
        plan.shared_mem_bytes,
        plan.bound_min_blocks_per_sm,
        plan.loop_block_rows,
    )


def make_record(module: Any, config: RoutingConfig, plan: KernelPlan) -> Any:
    """A record (capsule) of `config`'s kernel arguments and `plan`'s geometry; no kernels yet."""
    return module.make_record(*make_record_arguments(config, plan))


def geometry_key(plan: KernelPlan) -> tuple[int, int, bool, int, int, int]:
    """What a record fixes of a plan: the same for every scores dtype of a config (checked on registering).
    Whether the plan has a bound kernel is not among it: that is per scores dtype (a segment row's lazy
    named keys, dispatch.py lazy_named_plan_applies), and set_kernels takes it as a bound function of 0."""
    return (
        plan.warps_per_block,
        plan.rows_per_warp,
        plan.latency_name_expression is not None,
        plan.shared_mem_bytes,
        plan.bound_min_blocks_per_sm,
        plan.loop_block_rows,
    )


class Records:
    """Per config object: (config, record, geometry, registered (device, dtype) pairs). Looked up by
    id(config) on the fast path (a strong reference to the config keeps its id from being reused)."""

    def __init__(self) -> None:
        self.by_id: dict[
            int, tuple[RoutingConfig, Any, tuple[int, int, bool, int, int], set[tuple[int, int]]]
        ] = {}
        self.lock = threading.Lock()

    def register(
        self,
        module: Any,
        config: RoutingConfig,
        plan: KernelPlan,
        dtype: torch.dtype,
        device_index: int,
        sm_count: int,
        programmatic: bool,
        functions: tuple[int, int, int],
        caps: tuple[int, int, int],
    ) -> None:
        """Store the kernels of (config, scores dtype, device) so that later calls take the C++ path.

        functions: the CUfunction handles of step 5's plans (throughput, latency, bound: `plan.kernel_name`
        of each; the bound one 0 where `plan` has no bound kernel for this dtype); caps: the grid's cap in
        blocks per SM for each (KernelPlan.cap_blocks_per_sm of the driver's resident blocks), which the
        launcher multiplies by `sm_count`.
        """
        with self.lock:
            entry = self.by_id.get(id(config))
            if entry is None or entry[0] is not config:
                if len(self.by_id) >= MAX_RECORDS:
                    self.by_id.clear()
                entry = (config, make_record(module, config, plan), geometry_key(plan), set())
                self.by_id[id(config)] = entry
            if entry[2] != geometry_key(plan):  # dispatch gave another geometry for another dtype
                raise RuntimeError(
                    f"plan geometry {geometry_key(plan)} for {dtype} differs from {entry[2]} for the same "
                    f"config: the compiled launcher assumes one geometry per config"
                )
            code = SCORE_DTYPE_CODES[dtype]
            module.set_kernels(
                entry[1],
                device_index,
                sm_count,
                int(programmatic),
                code,
                *functions,
                *caps,
            )
            entry[3].add((device_index, code))

    def registered(self, config: RoutingConfig, dtype: torch.dtype, device_index: int) -> bool:
        entry = self.by_id.get(id(config))
        return (
            entry is not None and entry[0] is config and (device_index, SCORE_DTYPE_CODES[dtype]) in entry[3]
        )

    def clear(self) -> None:
        with self.lock:
            self.by_id.clear()
