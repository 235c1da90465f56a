"""The compiled launcher on the GPU (marker `gpu`): the same outputs as the Python launcher, bitwise, and
the same errors as check_inputs.

`route`'s first call with a config object takes the Python launcher and registers the kernels with the
compiled one; later calls go through C++ (optimized/native.py). Each test here checks that the C++ path
really served the call (the Python path is made to fail for it), with fresh random inputs and poisoned
output buffers, and compares with the Python launcher (`route._route`, ctypes into the driver) on the same
inputs: the same kernels with the same arguments, so the same bits. The CPU side of the same comparison,
launch by launch: tests/test_native_launcher.py.
"""

from __future__ import annotations

import dataclasses
import importlib
import zlib

import pytest
import torch

from moegate.optimized import route
from moegate.reference import PRESET_HAS_BIAS, PRESETS, RoutingConfig, check_inputs

pytestmark = pytest.mark.gpu

route_module = importlib.import_module("moegate.optimized.route")
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
POISON_ID = -123456789


def _python_path_fails(*args, **kwargs):
    raise AssertionError("the compiled launcher should have served this call")


@pytest.fixture
def native_only(monkeypatch):
    """While active, a call that the compiled launcher hands back to the Python path fails the test."""
    if route_module._native_module() is None:
        pytest.fail(f"the compiled launcher is not available: {route_module.native.build_error()}")
    return lambda: monkeypatch.setattr(route_module, "_route", _python_path_fails)


def fresh_inputs(config: RoutingConfig, num_rows: int, dtype, bias_dtype, layout: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    E = config.num_experts
    width = E + (5 if layout == "padded" else 0) + (1 if layout == "misaligned" else 0)
    buffer = (torch.randn(num_rows, width, generator=g) * 2.0).to(dtype).cuda()
    scores = buffer[:, 1 : E + 1] if layout == "misaligned" else buffer[:, :E]
    bias = None if bias_dtype is None else (torch.randn(E, generator=g) * 0.3).to(bias_dtype).cuda()
    return scores, bias


def poisoned(num_rows: int, width: int):
    return (
        torch.full((num_rows, width), POISON_ID, dtype=torch.int32, device="cuda"),
        torch.full((num_rows, width), float("nan"), device="cuda"),
    )


CONFIGS = {
    **{name: PRESETS[name] for name in PRESETS},
    "generic": RoutingConfig(
        num_experts=96, topk=5, num_expert_group=4, topk_group=2, routed_scaling_factor=2.0
    ),
    "replica": dataclasses.replace(
        PRESETS["deepseek-v3"],
        num_fused_shared_experts=3,
        shared_expert_mode="replica",
        apply_routed_scaling_factor_on_output=True,
    ),
}


@pytest.mark.parametrize("layout", ["contiguous", "padded", "misaligned"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_compiled_launcher_returns_the_python_launchers_bits(native_only, name, dtype, layout) -> None:
    config = CONFIGS[name]
    bias_dtype = torch.float32 if PRESET_HAS_BIAS.get(name, True) else None
    W = config.output_width
    warm, warm_bias = fresh_inputs(config, 1, dtype, bias_dtype, layout, 0)
    route(warm, warm_bias, config)  # the Python path; registers this (config, device, dtype)
    cases = []
    for num_rows in (1, 7, 1500, 70_000):
        seed = zlib.crc32(repr((name, str(dtype), layout, num_rows)).encode())
        scores, bias = fresh_inputs(config, num_rows, dtype, bias_dtype, layout, seed)
        expected = poisoned(num_rows, W)
        route_module._route(scores, bias, config, expected, ())  # the Python launcher
        cases.append((scores, bias, expected))
    native_only()
    for scores, bias, expected in cases:
        out = poisoned(scores.shape[0], W)
        got = route(scores, bias, config, out=out)
        assert got[0] is out[0] and got[1] is out[1]
        allocated = route(scores, bias, config)
        for ids, weights in (got, allocated):
            assert ids.min() >= 0 and ids.max() < config.num_experts + max(1, config.num_fused_shared_experts)
            assert torch.equal(ids, expected[0])
            assert torch.equal(weights.view(torch.int32), expected[1].view(torch.int32))


def test_zero_rows_launch_nothing_and_keep_any_strides(native_only) -> None:
    config = PRESETS["deepseek-v3"]
    route(torch.zeros(1, 256, device="cuda"), None, config)
    native_only()
    scores = torch.zeros(0, 256, device="cuda").as_strided((0, 256), (0, 0))
    ids, weights = route(scores, None, config)
    assert ids.shape == weights.shape == (0, config.output_width) and ids.is_cuda


def _error_of(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError) as error:
        return type(error), str(error)
    return None


def test_invalid_input_after_registration_raises_check_inputs_own_error() -> None:
    config = PRESETS["deepseek-v3"]
    good = torch.randn(4, 256, device="cuda")
    bias = torch.zeros(256, device="cuda")
    route(good, bias, config)  # registered
    cases = [
        (good.double(), bias),
        (good.int(), bias),
        (good[:, :255], bias),
        (good.t().contiguous().t(), bias),
        (torch.randn(256, 4, device="cuda").t(), bias),
        (good, bias.cpu()),
        (good, bias.double()),
        (good, bias[:255]),
        (good, torch.zeros(512, device="cuda")[::2]),
        (good[0], bias),
    ]
    for scores, b in cases:
        expected = _error_of(check_inputs, scores, b, config)
        got = _error_of(route, scores, b, config)
        if expected is None:  # valid after all (e.g. a transposed copy that is contiguous): must route
            assert got is None, (tuple(scores.shape), scores.stride())
            continue
        assert got == expected, (got, expected)
    error = _error_of(route, good.cpu(), bias.cpu(), config)  # valid, but not on a GPU
    assert error is not None and error[0] is TypeError and "CUDA tensors" in error[1]
    # out= checked as before
    wrong_out = (torch.empty(4, 9, dtype=torch.int64, device="cuda"), torch.empty(4, 9, device="cuda"))
    error = _error_of(route, good, bias, config, out=wrong_out)
    assert error is not None and error[0] is TypeError and "out[0].dtype" in error[1]


def test_cuda_graph_capture_through_the_compiled_launcher(native_only) -> None:
    config = PRESETS["deepseek-v3"]
    scores = torch.randn(64, 256, device="cuda").to(torch.bfloat16)
    bias = (torch.randn(256, device="cuda") * 0.1).to(torch.bfloat16)
    route(scores, bias, config)  # compile, load, register
    native_only()
    out = poisoned(64, config.output_width)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        route(scores, bias, config, out=out)  # warm on the side stream
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        route(scores, bias, config, out=out)
    for seed in range(3):
        scores.copy_((torch.randn(64, 256, generator=torch.Generator().manual_seed(seed))).to(torch.bfloat16))
        out[0].fill_(POISON_ID)
        out[1].fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        expected = route(scores, bias, config)
        assert torch.equal(out[0], expected[0]) and torch.equal(out[1], expected[1])


def test_outputs_allocated_during_a_capture_are_the_graphs(native_only) -> None:
    """route without out= inside a CUDA graph capture: the compiled launcher allocates from the allocator
    at::empty uses (torch's caching allocator, whose capture-aware pools give the graph its own outputs),
    so every replay writes the tensors the capture returned, and eager calls never hand them out again."""
    config = PRESETS["glm-4.5-air"]
    scores = torch.randn(512, 128, device="cuda").to(torch.bfloat16)
    bias = (torch.randn(128, device="cuda") * 0.1).to(torch.bfloat16)
    route(scores, bias, config)  # compile, load, register
    native_only()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        route(scores, bias, config)  # warm on the side stream
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ids, weights = route(scores, bias, config)
    for seed in range(3):
        fresh = torch.randn(512, 128, generator=torch.Generator().manual_seed(seed))
        scores.copy_(fresh.to(torch.bfloat16))
        ids.fill_(POISON_ID)
        weights.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        expected = route(scores, bias, config)
        assert expected[0].data_ptr() not in (ids.data_ptr(), weights.data_ptr())
        assert expected[1].data_ptr() not in (ids.data_ptr(), weights.data_ptr())
        assert torch.equal(ids, expected[0]) and torch.equal(weights, expected[1])


def test_eager_outputs_come_from_torchs_caching_allocator(native_only) -> None:
    """The compiled launcher's outputs are counted by torch's allocator statistics like torch.empty's (the
    same allocator), are distinct tensors on distinct storage, and are freed back to it."""
    config = PRESETS["deepseek-v3"]
    scores = torch.randn(4096, 256, device="cuda").to(torch.bfloat16)
    bias = (torch.randn(256, device="cuda") * 0.1).to(torch.bfloat16)
    route(scores, bias, config)  # compile, load, register
    route(scores, bias, config)  # the compiled launcher's first call (it reads at::empty's allocator)
    native_only()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    ids, weights = route(scores, bias, config)
    grown = torch.cuda.memory_allocated() - before
    assert grown >= 2 * 4096 * config.output_width * 4, grown
    assert ids.untyped_storage().data_ptr() != weights.untyped_storage().data_ptr()
    assert ids.device == weights.device == scores.device
    assert ids.is_contiguous() and weights.is_contiguous()
    del ids, weights
    assert torch.cuda.memory_allocated() == before


def test_a_side_stream_is_the_stream_launched_on(native_only) -> None:
    config = PRESETS["kimi-k2"]
    scores = torch.randn(3000, 384, device="cuda")
    bias = torch.randn(384, device="cuda") * 0.1
    expected = route(scores, bias, config)
    native_only()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        torch.cuda._sleep(20_000_000)  # keeps the side stream busy: a launch elsewhere would finish first
        ids, weights = route(scores, bias, config)
        done = torch.cuda.Event()
        done.record(stream)
    assert not done.query()  # the routing call is queued behind the sleep on the side stream
    stream.synchronize()
    assert torch.equal(ids, expected[0]) and torch.equal(weights, expected[1])
