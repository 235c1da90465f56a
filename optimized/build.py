"""Compiling route.cu: the one list of compile options, and the lazily built, cached kernel modules.

`COMPILE_OPTIONS` are NVRTC's spellings; `nvcc_options()` translates them for nvcc (the CPU compile
test builds the same source with the same options and warnings as errors). route.cu is compiled with
CuPy's NVRTC compile once per process, defines and GPU architecture, and loaded as a CuPy module once per
device. CuPy is imported only when a module is first built, so `import moegate.optimized` works with no
GPU and no CuPy.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from .dispatch import name_expressions

KERNEL_SOURCE = Path(__file__).resolve().parent / "kernels" / "route.cu"

# Never -use_fast_math: sigmoid and softmax must round like torch's CUDA kernels (precise expf, IEEE
# division, denormals kept), and no multiply-add contraction may change a sum.
COMPILE_OPTIONS: tuple[str, ...] = (
    "--std=c++17",
    "--fmad=false",
    "--ftz=false",
    "--prec-div=true",
    "--prec-sqrt=true",
)

# NVRTC option -> nvcc option.
_NVCC_SPELLING: dict[str, str] = {
    "--std=c++17": "-std=c++17",
    "--fmad=false": "-fmad=false",
    "--ftz=false": "-ftz=false",
    "--prec-div=true": "-prec-div=true",
    "--prec-sqrt=true": "-prec-sqrt=true",
}

# Defines build_route accepts, bugs planted for the property suite to kill: MOEGATE_PLANT_REVIEW_BUG, the
# public review bug; MOEGATE_PLANT_ROW_OFFSET_32, a row offset computed in 32 bits (the scale property).
KNOWN_DEFINES: tuple[str, ...] = ("MOEGATE_PLANT_REVIEW_BUG", "MOEGATE_PLANT_ROW_OFFSET_32")

_DEFINE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(=[A-Za-z0-9_.+-]*)?$")


def check_defines(defines: Any) -> tuple[str, ...]:
    """`defines` as a sorted tuple of macro definitions ("NAME" or "NAME=VALUE"); raises on bad input."""
    if isinstance(defines, str) or not isinstance(defines, (tuple, list)):
        raise TypeError(
            f"defines={defines!r}, but defines must be a tuple of macro names such as {KNOWN_DEFINES}"
        )
    for d in defines:
        if not isinstance(d, str) or not _DEFINE_PATTERN.match(d):
            raise ValueError(f"defines contains {d!r}, but each define must look like NAME or NAME=VALUE")
        if d.split("=", 1)[0] not in KNOWN_DEFINES:
            raise ValueError(f"defines contains {d!r}, but route.cu only reads {KNOWN_DEFINES}")
    return tuple(sorted(set(defines)))


def nvrtc_options(defines: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The options CuPy's NVRTC compile of route.cu gets (`compile_binary` adds the GPU's architecture)."""
    return COMPILE_OPTIONS + tuple(f"-D{d}" for d in defines)


def nvcc_options(defines: tuple[str, ...] = ()) -> list[str]:
    """The same options, spelled for nvcc."""
    return [_NVCC_SPELLING[o] for o in COMPILE_OPTIONS] + [f"-D{d}" for d in defines]


def instantiation_unit(names: list[str], source: Path = KERNEL_SOURCE) -> str:
    """A .cu text that #includes `source` and takes the address of each kernel name expression in `names`,
    which instantiates each exactly as NVRTC's name expressions do: what nvcc compiles where NVRTC is not
    used (tests/test_optimized_compile.py, tools/sass_report.py)."""
    lines = [f'#include "{Path(source).resolve()}"', "extern void* const kInstantiated[];"]
    lines += ["void* const kInstantiated[] = {"]
    lines += [f"    reinterpret_cast<void*>(&{name})," for name in names] + ["};"]
    return "\n".join(lines) + "\n"


def kernel_source() -> str:
    """The text of optimized/kernels/route.cu."""
    return KERNEL_SOURCE.read_text()


# Compiled binaries per (defines, architecture), loaded modules per (defines, device): a call on cuda:1
# after one on cuda:0 loads the module there, and a device of another architecture gets its own build.
# One lock makes concurrent first calls from several threads compile once and load once.
_lock = threading.RLock()
_binaries: dict[tuple[tuple[str, ...], str], tuple[Any, dict[str, str]]] = {}
_modules: dict[tuple[tuple[str, ...], int], tuple[Any, dict[str, str]]] = {}
_kernels: dict[tuple[str, tuple[str, ...], int], Any] = {}
# How many times route.cu was compiled in this process, per (defines, architecture) (tests read it).
compile_counts: dict[tuple[tuple[str, ...], str], int] = {}


def device_arch(device_index: int) -> str:
    """The compute capability of CUDA device `device_index` as NVRTC's architecture digits ("90")."""
    import cupy

    return str(cupy.cuda.Device(device_index).compute_capability)


def compile_binary(defines: tuple[str, ...], arch: str) -> tuple[Any, dict[str, str]]:
    """route.cu compiled with every name expression for architecture `arch` (CuPy's NVRTC compile, with
    exactly `nvrtc_options(defines)` plus the architecture), once per process: (binary, {name expression:
    lowered name}).

    Why not `cupy.RawModule(code=...)`: CuPy appends `-ftz=true` to the options of every RawModule, after
    ours, and NVRTC honours the last one. Flushing denormals changes p for |logits| > 87 (sigmoid) or
    softmax tails, which torch does not flush, so ids could differ from the reference's on such rows.
    """
    from cupy.cuda import compiler  # lazy: moegate.optimized imports without CuPy

    key = (defines, arch)
    with _lock:
        if key not in _binaries:
            binary, mapping = compiler.compile_using_nvrtc(
                kernel_source(),
                nvrtc_options(defines),
                arch=arch,
                name_expressions=name_expressions(),
                cache_in_memory=True,
            )
            compile_counts[key] = compile_counts.get(key, 0) + 1
            _binaries[key] = (binary, dict(mapping))
        return _binaries[key]


def load_module(defines: tuple[str, ...] = (), device_index: int = 0) -> tuple[Any, dict[str, str]]:
    """The module of route.cu for `defines`, loaded on CUDA device `device_index` (compiled for that
    device's architecture): (cupy.cuda.function.Module, {name expression: lowered name})."""
    import cupy

    key = (defines, device_index)
    with _lock:
        if key not in _modules:
            binary, mapping = compile_binary(defines, device_arch(device_index))
            with cupy.cuda.Device(device_index):
                module = cupy.cuda.function.Module()
                module.load(binary)
            _modules[key] = (module, mapping)
        return _modules[key]


def get_kernel(name_expression: str, defines: tuple[str, ...] = (), device_index: int = 0) -> Any:
    """The compiled kernel `name_expression` (one of `name_expressions()`) for `defines`, loaded on CUDA
    device `device_index` (a cupy.cuda.function.Function; `.ptr` is its CUfunction handle)."""
    key = (name_expression, defines, device_index)
    kernel = _kernels.get(key)
    if kernel is None:
        with _lock:
            module, lowered = load_module(defines, device_index)
            if name_expression not in lowered:
                raise KeyError(f"{name_expression!r} is not compiled; compiled kernels: {sorted(lowered)}")
            kernel = _kernels[key] = module.get_function(lowered[name_expression])
    return kernel
