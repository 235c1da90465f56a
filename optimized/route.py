"""The launcher of the fused routing kernel: check, allocate, launch, return.

`route(scores, bias, config)` is a drop-in for `moegate.reference.route` on CUDA tensors: the same
arguments, the same errors (raised before any GPU work), the same outputs. `build_route(defines)` gives a
`route` compiled with extra macros (the planted review bug for the property suite).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import torch

from moegate.reference import RoutingConfig, check_inputs

from . import native
from .build import check_defines, get_kernel
from .dispatch import (
    BIAS_DTYPE_CODES,
    PLAN_BOUND,
    PLAN_LATENCY,
    PLAN_THROUGHPUT,
    KernelPlan,
    config_arguments,
    dispatch_plan,
)
from .launch import ROUTE_PARAMS, driver_launch_available, launch_route_kernel, resident_blocks_per_sm

RouteFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@functools.cache
def _device_info(device_index: int) -> tuple[int, bool]:
    """(SM count, whether programmatic dependent launch is available: compute capability >= 9.0)."""
    props = torch.cuda.get_device_properties(device_index)
    return int(props.multi_processor_count), props.major >= 9


def _current_stream(device_index: int) -> int:
    """torch's current stream on the device, as a CUstream handle."""
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # the fast path torch's own extensions use
    if raw is not None:
        return int(raw(device_index))
    return int(torch.cuda.current_stream(device_index).cuda_stream)


def _resident_blocks(kernel: Any, plan: KernelPlan, device_index: int, is_current: bool) -> int:
    """The driver's resident blocks per SM for `kernel` (a CuPy Function) at `plan`'s full block and
    dynamic shared memory (launch.resident_blocks_per_sm, cached), asked in the kernel's device's context
    (is_current: that device is the current one already); 0 if unknown."""
    if is_current:
        return resident_blocks_per_sm(kernel.ptr, plan.block, plan.shared_mem_bytes)
    with torch.cuda.device(device_index):
        return resident_blocks_per_sm(kernel.ptr, plan.block, plan.shared_mem_bytes)


def _check_cuda(scores: torch.Tensor) -> None:
    if scores.device.type != "cuda":
        raise TypeError(
            f"scores.device={scores.device}, but moegate.optimized.route needs CUDA tensors "
            f"(move scores and bias to a GPU, or use moegate.reference.route on the CPU)"
        )


def _check_out(
    out: object, num_rows: int, width: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """`out`, if given: (ids int32 [T, W], weights float32 [T, W]), contiguous, on the scores' device."""
    if out is None:
        return None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"out={out!r}, but out must be None or a pair (topk_ids, topk_weights)")
    for name, tensor, dtype in (("out[0]", out[0], torch.int32), ("out[1]", out[1], torch.float32)):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} is a {type(tensor).__name__}, but it must be a torch.Tensor")
        if tensor.dtype != dtype:
            raise TypeError(f"{name}.dtype={tensor.dtype}, but it must be {dtype}")
        if tensor.device != device:
            raise TypeError(f"{name}.device={tensor.device}, but it must be on the scores' device {device}")
        if tuple(tensor.shape) != (num_rows, width) or not tensor.is_contiguous():
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)} (contiguous={tensor.is_contiguous()}), but it must "
                f"be a contiguous [T, W] = [{num_rows}, {width}] tensor"
            )
    return out[0], out[1]


def launch(
    plan: KernelPlan,
    scores: torch.Tensor,
    bias: torch.Tensor | None,
    config: RoutingConfig,
    ids: torch.Tensor,
    weights: torch.Tensor,
    defines: tuple[str, ...] = (),
    selection: int | None = None,
) -> None:
    """Launch `plan`'s kernel on torch's current stream of the scores' device, writing ids and weights
    [T, W] in place: the kernel from CuPy's NVRTC compile of route.cu (loaded on that device), launched
    with the driver's cuLaunchKernelEx (optimized/launch.py), with programmatic dependent launch on sm_90+.
    `selection`: step 5's plan (dispatch.PLAN_LATENCY, PLAN_THROUGHPUT or PLAN_BOUND); None lets
    `plan.selection_plan` choose from T.

    The caller has validated everything (`route` does). Exposed for tests, which launch the generic
    kernel on a specialized configuration (`dispatch.generic_plan`) and force each selection plan.
    """
    num_rows = int(scores.shape[0])
    if num_rows == 0:
        return
    device_index = scores.device.index if scores.device.index is not None else torch.cuda.current_device()
    # T <= 1: the row stride is never used to step, and torch may report any stride there.
    row_stride = int(scores.stride(0)) if num_rows > 1 else config.num_experts
    sm_count, programmatic = _device_info(device_index)
    if selection is None:
        selection = plan.selection_plan(num_rows, sm_count)
    kernel = get_kernel(plan.kernel_name(selection), defines, device_index)
    is_current = device_index == torch.cuda.current_device()
    resident = _resident_blocks(kernel, plan, device_index, is_current)
    grid, block = plan.geometry(num_rows, sm_count, selection, resident)
    args = (
        grid,
        block,
        plan.shared_mem_bytes,
        _current_stream(device_index),
        programmatic,
        scores.data_ptr(),
        num_rows,
        row_stride,
        0 if bias is None else bias.data_ptr(),
        BIAS_DTYPE_CODES[None if bias is None else bias.dtype],
        *config_arguments(config),
        selection,
        ids.data_ptr(),
        weights.data_ptr(),
    )
    if not driver_launch_available():  # CuPy's own launch: no programmatic dependent launch
        _cupy_launch(kernel, device_index, *args)
    elif is_current:
        launch_route_kernel(kernel.ptr, *args)
    else:  # the driver launches in the calling thread's current context: the scores' device's
        with torch.cuda.device(device_index):
            launch_route_kernel(kernel.ptr, *args)


def _cupy_launch(kernel: Any, device_index: int, grid: int, block: int, shared_mem: int, stream: int,
                 programmatic: bool, *params: object) -> None:  # fmt: skip
    """The same launch through CuPy's `Function.__call__` (route.cu's griddepcontrol.wait is then a no-op
    wait on a normally serialized stream)."""
    import cupy
    import numpy as np

    del programmatic
    kinds = ROUTE_PARAMS.format.replace("<", "")
    numpy_types = {"Q": np.uint64, "q": np.int64, "i": np.int32, "f": np.float32}
    args = tuple(numpy_types[k](v) for k, v in zip(kinds, params, strict=True))
    with cupy.cuda.Device(device_index):
        kernel((grid,), (block,), args, shared_mem=shared_mem, stream=_cupy_stream(stream, device_index))


@functools.cache
def _cupy_stream(stream_ptr: int, device_index: int) -> object:
    """A CuPy handle on torch's stream `stream_ptr` (cached: the handle only wraps the pointer)."""
    import warnings

    import cupy

    with warnings.catch_warnings():
        # CuPy 14 deprecates ExternalStream in favour of Stream.from_external(obj), which needs an object
        # implementing __cuda_stream__; a raw pointer from torch is what every torch version gives.
        warnings.simplefilter("ignore", DeprecationWarning)
        return cupy.cuda.ExternalStream(stream_ptr, device_index)


# The compiled launcher (optimized/native.py): its `route` once built and configured, and the records of the
# (config, device, scores dtype) triples the Python path has registered with it.
_records = native.Records()
_native_route: Callable[..., tuple[torch.Tensor, torch.Tensor] | None] | None = None
_native_mod: Any = None
_native_lock = threading.Lock()
_native_tried = False


def _native_module() -> Any:
    """The compiled launcher, built and configured once per process; None with $MOEGATE_LAUNCH=python or
    cupy, or where it cannot be built (native.load_extension warns why)."""
    global _native_mod, _native_route, _native_tried
    if not _native_tried:
        with _native_lock:
            if not _native_tried:
                if native.launcher_choice() == "native" and driver_launch_available():
                    module = native.load_extension()
                    if module is not None:
                        native.configure(module)
                        _native_mod = module
                        _native_route = module.route
                _native_tried = True
    return _native_mod


def _register_native(config: RoutingConfig, plan: KernelPlan, scores: torch.Tensor) -> None:
    """After a Python-path call of `route`: hand (config, device, scores dtype)'s kernels to the compiled
    launcher, so that the next such call takes it."""
    device_index = scores.device.index if scores.device.index is not None else torch.cuda.current_device()
    if _records.registered(config, scores.dtype, device_index):
        return
    module = _native_module()
    if module is None:
        return
    sm_count, programmatic = _device_info(device_index)
    plans = (PLAN_THROUGHPUT, PLAN_LATENCY, PLAN_BOUND)
    kernels = [get_kernel(plan.kernel_name(selection), (), device_index) for selection in plans]
    is_current = device_index == torch.cuda.current_device()
    caps = [plan.cap_blocks_per_sm(_resident_blocks(k, plan, device_index, is_current)) for k in kernels]
    bound_function = kernels[2].ptr if plan.bound_name_expression is not None else 0  # none for this dtype
    _records.register(
        module,
        config,
        plan,
        scores.dtype,
        device_index,
        sm_count,
        programmatic,
        (kernels[0].ptr, kernels[1].ptr, bound_function),
        (caps[0], caps[1], caps[2]),
    )


def _route(
    scores: torch.Tensor,
    bias: torch.Tensor | None,
    config: RoutingConfig,
    out: tuple[torch.Tensor, torch.Tensor] | None,
    defines: tuple[str, ...],
) -> tuple[torch.Tensor, torch.Tensor]:
    # check
    check_inputs(scores, bias, config)
    _check_cuda(scores)
    plan = dispatch_plan(config, scores.dtype)
    num_rows, width = int(scores.shape[0]), config.output_width
    given = _check_out(out, num_rows, width, scores.device)
    # allocate
    if given is None:
        ids = torch.empty((num_rows, width), dtype=torch.int32, device=scores.device)
        weights = torch.empty((num_rows, width), dtype=torch.float32, device=scores.device)
    else:
        ids, weights = given
    # register: the next such call takes the compiled launcher (before the launch, so that anything
    # raised here, such as a bad $MOEGATE_LAUNCH, is raised before any GPU work)
    if not defines and num_rows > 0:
        _register_native(config, plan, scores)
    # launch (none for T = 0)
    launch(plan, scores, bias, config, ids, weights, defines)
    # return
    return ids, weights


def route(
    scores: torch.Tensor,
    bias: torch.Tensor | None,
    config: RoutingConfig,
    *,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Biased grouped top-k routing with fused shared experts (SPEC.md steps 1-8) in one kernel launch.

    Args:
        scores: router logits [T, E], float32/float16/bfloat16, on a CUDA device. T >= 0; the last dim is
            contiguous, the row stride may exceed E. Read only.
        bias: e_score_correction_bias [E], float32/bfloat16/float16 (read as float32 whatever the scores'
            dtype), or None; on the scores' device. Read only.
        config: the RoutingConfig. E <= MAX_EXPERTS (1024).
        out: optional (topk_ids int32 [T, W], topk_weights float32 [T, W]), contiguous, on the scores'
            device: written in place and returned (tests pass poisoned buffers here).

    Returns:
        topk_ids [T, W] int32 and topk_weights [T, W] float32 on the scores' device, W =
        config.output_width; the reference's result (weights within a few float32 ulp).

    Algorithm (float32; one warp per row, optimized/kernels/route.cu):
        1. probabilities: p = sigmoid(x) or softmax(x); a NaN logit is read as -inf.
        2. biased_scores: b = p + bias (NaN read as -inf).
        3. group_scores: sum of the top-2 b in the group (with a bias) or the top b (without).
        4. group_selection: the Kg best groups, lower group index first on ties.
        5. expert_selection: the K best b of the kept groups, descending, lower index first on ties.
        6. routed_weights: p of those experts, divided by (sum + 1e-20) if `renormalize`.
        7. shared_slots: weight 1 / r (split: ids E..E+S-1; replica: E + row % S).
        8. output_scaling: every weight times r if `apply_routed_scaling_factor_on_output`.

    Runs on torch's current CUDA stream of the scores' device (so it can be captured in a CUDA graph once
    compiled: call it once before capturing), with programmatic dependent launch on sm_90+ (it may start
    while the previous kernel on the stream finishes; it waits for it before touching memory). The kernel
    is compiled on the first call per architecture (CuPy's NVRTC compile, a few seconds) and loaded once
    per device; concurrent first calls from several threads compile once.

    Host path: the first call of a (config object, device, scores dtype) takes the Python launcher, which
    registers the kernels with the compiled launcher (optimized/native.py, built once per source and torch
    version); later calls with the same config object check, allocate and launch in one C++ call. Input
    the C++ checks do not accept goes back to the Python path, so errors are check_inputs' own.

    Raises:
        TypeError, ValueError: as `moegate.reference.check_inputs` for invalid arguments; TypeError for
            CPU tensors; ValueError for E > MAX_EXPERTS; all before any GPU work.
    """
    fast = _native_route
    if fast is not None:
        entry = _records.by_id.get(id(config))
        if entry is not None and entry[0] is config:
            result = fast(scores, bias, entry[1], out)  # None: anything unusual, which the Python path takes
            if result is not None:
                return result
    return _route(scores, bias, config, out, ())


@functools.cache
def _build_route(defines: tuple[str, ...]) -> RouteFn:
    if not defines:
        return route

    def route_with_defines(
        scores: torch.Tensor,
        bias: torch.Tensor | None,
        config: RoutingConfig,
        *,
        out: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _route(scores, bias, config, out, defines)

    route_with_defines.__name__ = "route_" + "_".join(d.lower() for d in defines)
    route_with_defines.__doc__ = f"`moegate.optimized.route` compiled with {defines} (a separate module)."
    return route_with_defines


def build_route(defines: tuple[str, ...] = ()) -> RouteFn:
    """A `route` function whose kernels are compiled with the macros `defines` (cached per set).

    `build_route(("MOEGATE_PLANT_REVIEW_BUG",))` reintroduces the public review bug (the shared weight
    sum(routed) / r, every weight divided by the routed sum, no output scaling), so the property suite
    can check that its oracle kills it on the GPU. `build_route()` is `route`.
    """
    return _build_route(check_defines(defines))
