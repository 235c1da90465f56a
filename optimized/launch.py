"""Launching a compiled kernel: the CUDA driver's cuLaunchKernelEx through ctypes, on torch's stream.

CuPy compiles route.cu (NVRTC) and loads the module on each device; the launch itself goes straight to
the driver, for two reasons that CuPy's `Function.__call__` cannot serve:

- programmatic dependent launch (Hopper and newer): the launch carries the programmatic stream
  serialization attribute, so a routing call starts while the kernel before it on the stream finishes
  (route.cu waits with griddepcontrol.wait before it touches memory, so this is always safe);
- the host path: the arguments are packed into one buffer with `struct` (CU_LAUNCH_PARAM_BUFFER_POINTER)
  instead of one Python object per argument, which keeps an eager call within a few microseconds.

With $MOEGATE_LAUNCH=cupy (or a driver without cuLaunchKernelEx) the launcher falls back to CuPy's own
`Function.__call__`, without programmatic dependent launch. Calls after a config's first one normally go
through the compiled launcher instead (optimized/native.py: the same driver call, made from C++);
$MOEGATE_LAUNCH=python keeps them here.

The parameter buffer follows the kernels' signature (route.cu), each field at its natural alignment:

    const void* scores, i64 num_rows, i64 row_stride, const void* bias, int bias_dtype, int num_experts,
    int num_groups, int topk_group, int topk, int scoring, int renormalize, int num_shared, int replica,
    int apply_scaling, float r, int plan, int* out_ids, float* out_weights
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import threading

# Offsets 0, 8, 16, 24 (pointers and i64), ten ints from 32, the float at 72, the plan at 76, then the
# two output pointers at 80 and 88: 96 bytes.
ROUTE_PARAMS = struct.Struct("<QqqQiiiiiiiiiifiQQ")

CU_LAUNCH_PARAM_END = 0
CU_LAUNCH_PARAM_BUFFER_POINTER = 1
CU_LAUNCH_PARAM_BUFFER_SIZE = 2
CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6


class _LaunchAttribute(ctypes.Structure):
    # CUlaunchAttribute: a 4-byte id, padding to 8, a 64-byte value union (its first int is the flag).
    _fields_ = [
        ("id", ctypes.c_int),
        ("pad", ctypes.c_int),
        ("value", ctypes.c_int),
        ("rest", ctypes.c_byte * 60),
    ]


class _LaunchConfig(ctypes.Structure):
    # CUlaunchConfig.
    _fields_ = [
        ("gridDimX", ctypes.c_uint),
        ("gridDimY", ctypes.c_uint),
        ("gridDimZ", ctypes.c_uint),
        ("blockDimX", ctypes.c_uint),
        ("blockDimY", ctypes.c_uint),
        ("blockDimZ", ctypes.c_uint),
        ("sharedMemBytes", ctypes.c_uint),
        ("hStream", ctypes.c_void_p),
        ("attrs", ctypes.POINTER(_LaunchAttribute)),
        ("numAttrs", ctypes.c_uint),
    ]


@functools.cache
def _driver() -> ctypes.CDLL:
    lib = ctypes.CDLL("libcuda.so.1")
    lib.cuLaunchKernelEx.restype = ctypes.c_int
    lib.cuLaunchKernelEx.argtypes = [
        ctypes.POINTER(_LaunchConfig),
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.cuGetErrorString.restype = ctypes.c_int
    lib.cuGetErrorString.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    lib.cuOccupancyMaxActiveBlocksPerMultiprocessor.restype = ctypes.c_int
    lib.cuOccupancyMaxActiveBlocksPerMultiprocessor.argtypes = [
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_size_t,
    ]
    return lib


@functools.cache
def resident_blocks_per_sm(function: int, block: int, shared_mem: int) -> int:
    """How many blocks of `block` threads with `shared_mem` bytes of dynamic shared memory the driver lets
    reside on one SM for the kernel `function` (a CUfunction handle, CuPy's `Function.ptr`; its module stays
    loaded for the process): cuOccupancyMaxActiveBlocksPerMultiprocessor, asked once per triple. 0 where
    the driver cannot tell (no libcuda, or an error), which leaves the grid's cap at a full SM's threads
    (KernelPlan.cap_blocks_per_sm)."""
    try:
        lib = _driver()
    except (OSError, AttributeError):
        return 0
    count = ctypes.c_int(0)
    status = lib.cuOccupancyMaxActiveBlocksPerMultiprocessor(ctypes.byref(count), function, block, shared_mem)
    return count.value if status == 0 and count.value > 0 else 0


class _ThreadState(threading.local):
    """Per thread: the launch structures and the parameter buffer, reused from call to call (the driver
    copies the parameters when the launch is enqueued)."""

    def __init__(self) -> None:
        self.params = ctypes.create_string_buffer(ROUTE_PARAMS.size)
        self.size = ctypes.c_size_t(ROUTE_PARAMS.size)
        self.extra = (ctypes.c_void_p * 5)(
            CU_LAUNCH_PARAM_BUFFER_POINTER,
            ctypes.addressof(self.params),
            CU_LAUNCH_PARAM_BUFFER_SIZE,
            ctypes.addressof(self.size),
            CU_LAUNCH_PARAM_END,
        )
        self.attribute = _LaunchAttribute(id=CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, value=1)
        self.attribute_pointer = ctypes.pointer(self.attribute)
        self.config = _LaunchConfig(gridDimY=1, gridDimZ=1, blockDimY=1, blockDimZ=1)


_state = _ThreadState()


LAUNCH_ENV = "MOEGATE_LAUNCH"  # "cupy": launch through CuPy's Function call instead (a fallback)


@functools.cache
def driver_launch_available() -> bool:
    """Whether launches go through the driver's cuLaunchKernelEx: yes unless $MOEGATE_LAUNCH is "cupy" or
    the driver has no such entry point (CUDA < 12)."""
    if os.environ.get(LAUNCH_ENV, "").strip().lower() == "cupy":
        return False
    try:
        _driver()
    except (OSError, AttributeError):
        return False
    return True


class LaunchError(RuntimeError):
    """The driver refused a launch."""


def launch_route_kernel(
    function: int, grid: int, block: int, shared_mem: int, stream: int, programmatic: bool, *params: object
) -> None:
    """Enqueue one kernel of route.cu on `stream` (a CUstream handle, as torch gives it).

    function: the CUfunction handle (CuPy's `Function.ptr`); params: the kernel's arguments, in order
    (`ROUTE_PARAMS`); programmatic: launch with programmatic stream serialization (sm_90+ only).
    """
    state = _state
    ROUTE_PARAMS.pack_into(state.params, 0, *params)
    config = state.config
    config.gridDimX = grid
    config.blockDimX = block
    config.sharedMemBytes = shared_mem
    config.hStream = stream
    config.attrs = state.attribute_pointer
    config.numAttrs = 1 if programmatic else 0
    status = _driver().cuLaunchKernelEx(ctypes.byref(config), function, None, state.extra)
    if status != 0:
        message = ctypes.c_char_p()
        _driver().cuGetErrorString(status, ctypes.byref(message))
        text = (message.value or b"unknown").decode(errors="replace")
        raise LaunchError(f"cuLaunchKernelEx failed with CUDA error {status}: {text}")
