"""How moegate.optimized compiles, loads and launches, checked on the CPU with a stand-in for CuPy:

- route.cu is compiled once per (defines, GPU architecture) and loaded once per device: a call on cuda:1
  after one on cuda:0 loads the module there, a device of another architecture gets its own build;
- concurrent first calls from several threads compile once and all get the kernel;
- the launch's parameter buffer (optimized/launch.py) matches the kernels' signature in route.cu;
- the driver's resident blocks per SM reach the grid, and 0 (no driver, or a refused query) means unknown.

The same on real GPUs: tests/test_optimized_devices.py.
"""

from __future__ import annotations

import re
import struct
import sys
import threading
import types

import pytest

from moegate.optimized import KERNEL_SOURCE, build
from moegate.optimized.launch import ROUTE_PARAMS


class _FakeCupy:
    """Just what build.py touches: Device(i).compute_capability and as a context, Module().load/get_function,
    cuda.compiler.compile_using_nvrtc."""

    def __init__(self, archs: dict[int, str]) -> None:
        self.archs = archs
        self.compiled: list[str] = []
        self.loaded: list[tuple[int, str]] = []
        self.current = [0]
        self.lock = threading.Lock()
        fake = self

        class Device:
            def __init__(self, index: int) -> None:
                self.index = index
                self.compute_capability = fake.archs[index]

            def __enter__(self) -> Device:
                fake.current.append(self.index)
                return self

            def __exit__(self, *exc: object) -> None:
                fake.current.pop()

        class Module:
            def load(self, binary: str) -> None:
                self.binary = binary
                fake.loaded.append((fake.current[-1], binary))

            def get_function(self, lowered: str) -> tuple[str, str]:
                return (self.binary, lowered)

        def compile_using_nvrtc(source, options, arch, name_expressions, cache_in_memory):
            with fake.lock:
                fake.compiled.append(arch)
            threading.Event().wait(0.05)  # a compile takes a while: let other threads pile up behind it
            return f"binary-sm{arch}", {n: f"lowered<{n}>" for n in name_expressions}

        self.cuda = types.SimpleNamespace(
            Device=Device,
            function=types.SimpleNamespace(Module=Module),
            compiler=types.SimpleNamespace(compile_using_nvrtc=compile_using_nvrtc),
        )


@pytest.fixture
def fake_cupy(monkeypatch: pytest.MonkeyPatch) -> _FakeCupy:
    fake = _FakeCupy({0: "90", 1: "90", 2: "80"})
    module = types.ModuleType("cupy")
    module.cuda = fake.cuda  # type: ignore[attr-defined]
    cuda = types.ModuleType("cupy.cuda")
    cuda.compiler = fake.cuda.compiler  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", module)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cuda)
    for cache in ("_binaries", "_modules", "_kernels", "compile_counts"):  # a fresh process's caches
        monkeypatch.setattr(build, cache, {})
    return fake


NAME = build.name_expressions()[0]


def test_a_second_device_loads_its_own_module_and_an_older_one_gets_its_own_build(
    fake_cupy: _FakeCupy,
) -> None:
    k0 = build.get_kernel(NAME, (), 0)
    k1 = build.get_kernel(NAME, (), 1)  # same architecture: no new compile, a load on device 1
    k2 = build.get_kernel(NAME, (), 2)  # sm_80: its own compile
    assert fake_cupy.compiled == ["90", "80"]
    assert fake_cupy.loaded == [(0, "binary-sm90"), (1, "binary-sm90"), (2, "binary-sm80")]
    assert k0[0] == k1[0] == "binary-sm90" and k2[0] == "binary-sm80"
    assert build.get_kernel(NAME, (), 1) is k1  # cached per (name, defines, device)
    # Defines are another build (the planted bugs).
    build.get_kernel(NAME, ("MOEGATE_PLANT_REVIEW_BUG",), 0)
    assert build.compile_counts == {((), "90"): 1, ((), "80"): 1, (("MOEGATE_PLANT_REVIEW_BUG",), "90"): 1}


def test_concurrent_first_calls_compile_once(fake_cupy: _FakeCupy) -> None:
    results: list[object] = []
    errors: list[BaseException] = []

    def first_call(device: int) -> None:
        try:
            results.append(build.get_kernel(NAME, (), device))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_call, args=(i % 2,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 16
    assert fake_cupy.compiled == ["90"] and build.compile_counts == {((), "90"): 1}
    assert sorted(fake_cupy.loaded) == [(0, "binary-sm90"), (1, "binary-sm90")]  # once per device


def test_the_launch_parameters_follow_the_kernels_signature() -> None:
    source = KERNEL_SOURCE.read_text()
    signatures = re.findall(r"__global__ void __launch_bounds__\([^)]*\) route_\w+_kernel\(([^)]*)\)", source)
    assert len(signatures) == 4 and len(set(signatures)) == 1  # warp, segment, thread, generic
    formats = {"const void*": "Q", "i64": "q", "int": "i", "float": "f", "int*": "Q", "float*": "Q"}
    expected = ""
    for parameter in signatures[0].replace("\n", " ").split(","):
        kind = re.sub(r"\s*__restrict__\s*", " ", parameter).strip().rsplit(" ", 1)[0].replace(" *", "*")
        expected += formats[kind]
    # struct's own alignment ("<" has none): every field must sit at its natural offset, as the kernel's
    # parameter layout has it, with no padding needed (the float and the plan fill one 8-byte word).
    assert ROUTE_PARAMS.format == "<" + expected
    assert ROUTE_PARAMS.size == 96
    assert struct.calcsize("@" + expected) == ROUTE_PARAMS.size  # native alignment adds nothing
    values = ROUTE_PARAMS.unpack(ROUTE_PARAMS.pack(1, 2, 3, 4, *range(5, 15), 2.5, 1, 16, 17))
    assert values[-4:] == (2.5, 1, 16, 17)


def test_the_cupy_fallback_launch_passes_every_parameter_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    """$MOEGATE_LAUNCH=cupy: `_cupy_launch` turns the launch arguments into NumPy scalars of the kernel's
    parameter types (ROUTE_PARAMS), in order, and launches on the device and stream given."""
    import importlib

    import numpy as np

    route_module = importlib.import_module("moegate.optimized.route")  # the module, not the function

    calls = []

    class _Device:
        def __init__(self, index: int) -> None:
            calls.append(("device", index))

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(Device=_Device)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", module)
    monkeypatch.setattr(route_module, "_cupy_stream", lambda stream, device: ("stream", stream, device))

    def kernel(grid, block, args, shared_mem, stream):  # CuPy Function.__call__ signature
        calls.append(("launch", grid, block, args, shared_mem, stream))

    params = (11, 1, 256, 22, 2, 256, 8, 4, 8, 0, 1, 1, 0, 0, 2.5, 1, 33, 44)
    route_module._cupy_launch(kernel, 1, 7, 64, 0, 99, True, *params)
    assert calls[0] == ("device", 1)
    _, grid, block, args, shared_mem, stream = calls[1]
    assert (grid, block, shared_mem, stream) == ((7,), (64,), 0, ("stream", 99, 1))
    kinds = ROUTE_PARAMS.format.lstrip("<")
    assert len(args) == len(kinds) == len(params)
    expected = {"Q": np.uint64, "q": np.int64, "i": np.int32, "f": np.float32}
    assert [type(a) for a in args] == [expected[k] for k in kinds]
    assert [a.item() for a in args] == list(params)


def test_an_unknown_resident_count_leaves_the_grid_at_a_full_sm(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a driver (this CPU machine) or for a handle the driver refuses, the resident count is 0, which
    # the dispatch reads as "unknown": a full SM's threads per SM, the geometry before session 15.
    import ctypes
    import importlib

    from moegate.optimized.dispatch import grid_cap_blocks_per_sm

    launch_module = importlib.import_module("moegate.optimized.launch")  # the module, not route's launch()

    class NoDriver:
        def __call__(self) -> None:
            raise OSError("libcuda.so.1: cannot open shared object file")

    monkeypatch.setattr(launch_module, "_driver", NoDriver())
    launch_module.resident_blocks_per_sm.cache_clear()
    assert launch_module.resident_blocks_per_sm(0x1234, 256, 0) == 0

    class RefusingDriver:  # cuOccupancyMaxActiveBlocksPerMultiprocessor returns CUDA_ERROR_INVALID_VALUE
        def cuOccupancyMaxActiveBlocksPerMultiprocessor(self, count, function, block, shared_mem) -> int:
            ctypes.cast(count, ctypes.POINTER(ctypes.c_int)).contents.value = 7
            return 1

    monkeypatch.setattr(launch_module, "_driver", lambda: RefusingDriver())
    launch_module.resident_blocks_per_sm.cache_clear()
    assert launch_module.resident_blocks_per_sm(0x1234, 256, 0) == 0

    class AnsweringDriver:
        def cuOccupancyMaxActiveBlocksPerMultiprocessor(self, count, function, block, shared_mem) -> int:
            assert (function, block, shared_mem) == (0x1234, 256, 512)
            ctypes.cast(count, ctypes.POINTER(ctypes.c_int)).contents.value = 3
            return 0

    monkeypatch.setattr(launch_module, "_driver", lambda: AnsweringDriver())
    launch_module.resident_blocks_per_sm.cache_clear()
    assert launch_module.resident_blocks_per_sm(0x1234, 256, 512) == 3
    launch_module.resident_blocks_per_sm.cache_clear()
    assert grid_cap_blocks_per_sm(256, 0) == 8 and grid_cap_blocks_per_sm(256, 3) == 3
