"""moegate.optimized: the fused routing kernel, one launch per call (CUDA tensors only): route.cu built with
CuPy's NVRTC compile, loaded as a CuPy module on each device, launched on torch's stream.

- `route(scores, bias, config, *, out=None)`: the same signature and result as `moegate.reference.route`.
- `dispatch_plan(config, dtype) -> KernelPlan`: which kernel a call uses (the table: `SPECIALIZATIONS`).
- `build_route(defines)`: a `route` compiled with extra macros (`("MOEGATE_PLANT_REVIEW_BUG",)`).

Importing this package needs neither a GPU nor CuPy: CuPy is imported, and the kernel compiled, on the
first launch.
"""

from .build import COMPILE_OPTIONS, KERNEL_SOURCE, KNOWN_DEFINES, nvcc_options, nvrtc_options
from .dispatch import (
    MAX_EXPERTS,
    PLAN_BOUND,
    PLAN_LATENCY,
    PLAN_THROUGHPUT,
    SPECIALIZATIONS,
    KernelPlan,
    Specialization,
    dispatch_plan,
    generic_plan,
    name_expressions,
)
from .route import build_route, launch, route

__all__ = [
    "COMPILE_OPTIONS",
    "KERNEL_SOURCE",
    "KNOWN_DEFINES",
    "MAX_EXPERTS",
    "PLAN_BOUND",
    "PLAN_LATENCY",
    "PLAN_THROUGHPUT",
    "SPECIALIZATIONS",
    "KernelPlan",
    "Specialization",
    "build_route",
    "dispatch_plan",
    "generic_plan",
    "launch",
    "name_expressions",
    "nvcc_options",
    "nvrtc_options",
    "route",
]
