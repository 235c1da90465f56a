"""Compiling route.cu: the one list of compile options, and the lazily built, cached kernel modules.

`COMPILE_OPTIONS` are NVRTC's spellings; `nvcc_options()` translates them for nvcc (the CPU compile
test builds the same source with the same options and warnings as errors). CuPy is imported only when
a module is first built, so `import moegate.optimized` works with no GPU and no CuPy.
"""

from __future__ import annotations

import functools
import re
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

# Defines build_route accepts. MOEGATE_PLANT_REVIEW_BUG: the public review bug, for the property suite.
KNOWN_DEFINES: tuple[str, ...] = ("MOEGATE_PLANT_REVIEW_BUG",)

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
    """The options `cupy.RawModule` compiles with (CuPy adds the GPU's -arch itself)."""
    return COMPILE_OPTIONS + tuple(f"-D{d}" for d in defines)


def nvcc_options(defines: tuple[str, ...] = ()) -> list[str]:
    """The same options, spelled for nvcc."""
    return [_NVCC_SPELLING[o] for o in COMPILE_OPTIONS] + [f"-D{d}" for d in defines]


def kernel_source() -> str:
    """The text of optimized/kernels/route.cu."""
    return KERNEL_SOURCE.read_text()


@functools.cache
def load_module(defines: tuple[str, ...] = ()) -> tuple[Any, dict[str, str]]:
    """route.cu compiled with every name expression, once per process and defines, loaded on the current
    device: (cupy.cuda.function.Module, {name expression: lowered name}).

    Why not `cupy.RawModule(code=...)`: CuPy appends `-ftz=true` to the options of every RawModule, after
    ours, and NVRTC honours the last one. Flushing denormals changes p for |logits| > 87 (sigmoid) or
    softmax tails, which torch does not flush, so ids could differ from the reference's on such rows.
    `compile_using_nvrtc` compiles with exactly `nvrtc_options(defines)` (plus the device's -arch).
    """
    import cupy  # lazy: moegate.optimized imports without CuPy
    from cupy.cuda import compiler

    names = name_expressions()
    ptx, mapping = compiler.compile_using_nvrtc(
        kernel_source(), nvrtc_options(defines), name_expressions=names, cache_in_memory=True
    )
    module = cupy.cuda.function.Module()
    module.load(ptx)
    return module, dict(mapping)


@functools.cache
def get_kernel(name_expression: str, defines: tuple[str, ...] = ()) -> Any:
    """The compiled kernel `name_expression` (one of `name_expressions()`) for `defines`."""
    module, lowered = load_module(defines)
    if name_expression not in lowered:
        raise KeyError(f"{name_expression!r} is not compiled; compiled kernels: {sorted(lowered)}")
    return module.get_function(lowered[name_expression])
