"""The compiled launcher (optimized/kernels/launcher.cpp), checked on the CPU.

It is built here with this torch, like on a GPU machine, and driven in its test mode: CPU tensors (stream
0, device slot 0) and a recording callback in place of cuLaunchKernelEx. The Python launcher
(`moegate.optimized.launch`) runs on the same inputs with its driver call recorded the same way, so the
two are compared launch by launch: the same kernel, grid, block, shared memory, stream, programmatic
launch attribute and the same 96-byte parameter buffer, for every table row, the generic kernel, every
scores and bias dtype, T across both step-5 plans and the grid cap, padded rows, and caller buffers.

And the checks: for valid and invalid inputs alike, the compiled launcher launches exactly when
`check_inputs` (and `out`'s check) accept, and otherwise returns None without launching (the Python path
then raises check_inputs' own error). The same on the GPU: tests/test_native_gpu.py.
"""

from __future__ import annotations

import ctypes
import importlib
import itertools
import shutil
import types
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moegate.optimized import (
    PLAN_BOUND,
    PLAN_LATENCY,
    PLAN_THROUGHPUT,
    SPECIALIZATIONS,
    dispatch,
    dispatch_plan,
    name_expressions,
    native,
)
from moegate.optimized.dispatch import SCORE_DTYPE_CODES, SEGMENT_BOUND_MIN_BLOCKS_PER_SM
from moegate.optimized.launch import ROUTE_PARAMS, _LaunchConfig
from moegate.reference import PRESETS, RoutingConfig, check_inputs

route_module = importlib.import_module("moegate.optimized.route")

SM_COUNT = 132
FAKE_FUNCTIONS = {name: 0x10000 + 0x100 * i for i, name in enumerate(name_expressions())}
# The driver's resident blocks per SM, made up per fake kernel: 3 (capped at 3 blocks per SM: one wave), 4
# or 8 (capped at a full SM's threads: whole waves) and 0 (unknown: the same), so that both sides' grid
# caps are compared where they differ.
FAKE_RESIDENT = {function: (3, 4, 0, 8)[i % 4] for i, function in enumerate(FAKE_FUNCTIONS.values())}
LAUNCH_SIGNATURE = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.POINTER(_LaunchConfig),
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_void_p),
)


class Recorder:
    """Stands in for cuLaunchKernelEx: records what the compiled launcher passes."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []
        self.status = 0

    def __call__(self, config_pointer, function, params, extra) -> int:
        config = config_pointer.contents
        assert params is None  # the arguments come in one buffer (CU_LAUNCH_PARAM_BUFFER_POINTER)
        assert (extra[0], extra[2], extra[4] or 0) == (1, 2, 0)
        size = ctypes.cast(extra[3], ctypes.POINTER(ctypes.c_size_t)).contents.value
        attribute = (config.attrs[0].id, config.attrs[0].value) if config.numAttrs else None
        self.calls.append(
            {
                "function": function,
                "grid": (config.gridDimX, config.gridDimY, config.gridDimZ),
                "block": (config.blockDimX, config.blockDimY, config.blockDimZ),
                "shared_mem": config.sharedMemBytes,
                "stream": config.hStream or 0,
                "programmatic": attribute == (6, 1),
                "num_attrs": config.numAttrs,
                "params": ctypes.string_at(extra[1], size),
            }
        )
        return self.status


def _compiler_missing() -> str | None:
    if shutil.which("c++") is None and shutil.which("g++") is None:
        return "no C++ compiler on this machine (the compiled launcher falls back to the Python one)"
    if shutil.which("ninja") is None:
        try:
            import ninja  # noqa: F401
        except ImportError:
            return "no ninja on this machine (torch's extension loader needs it)"
    return None


@pytest.fixture(scope="module")
def launcher():
    """The compiled module in test mode, with its recorder."""
    reason = _compiler_missing()
    if reason is not None:
        pytest.skip(reason)
    module = native.build_extension()  # the very module route() uses when it is already loaded
    recorder = Recorder()
    callback = LAUNCH_SIGNATURE(recorder)
    _KEEP_ALIVE.append(callback)  # the module may hold its address after this test file
    native.configure(module, allow_cpu=True, launch_address=ctypes.cast(callback, ctypes.c_void_p).value)
    yield types.SimpleNamespace(module=module, recorder=recorder, callback=callback)
    # Back to real launches for the tests after this file (a GPU machine's `pytest` runs both kinds).
    try:
        native.configure(module)
    except (OSError, AttributeError):  # no CUDA driver here: nothing can reach a launch anyway
        native.configure(module, allow_cpu=False, launch_address=ctypes.cast(callback, ctypes.c_void_p).value)


_KEEP_ALIVE: list[object] = []


def record_for(module, config: RoutingConfig, dtypes=tuple(SCORE_DTYPE_CODES), device: int = 0):
    """A record of `config` with fake kernels registered for `dtypes` on device slot `device`."""
    record = None
    for dtype in dtypes:
        plan = dispatch_plan(config, dtype)
        if record is None:
            record = native.make_record(module, config, plan)
        functions = [FAKE_FUNCTIONS[plan.kernel_name(p)] for p in (PLAN_THROUGHPUT, PLAN_LATENCY, PLAN_BOUND)]
        caps = [plan.cap_blocks_per_sm(FAKE_RESIDENT[f]) for f in functions]
        if plan.bound_name_expression is None:  # as route.py registers it: no bound kernel for this dtype
            functions[2] = 0
        module.set_kernels(record, device, SM_COUNT, 1, SCORE_DTYPE_CODES[dtype], *functions, *caps)
    return record


def python_launch(monkeypatch, config, scores, bias, ids, weights) -> dict[str, object] | None:
    """What the Python launcher passes to the driver for this call (its driver call recorded)."""
    seen: list[dict[str, object]] = []

    def record(function, grid, block, shared_mem, stream, programmatic, *params):
        seen.append(
            {
                "function": function,
                "grid": (grid, 1, 1),
                "block": (block, 1, 1),
                "shared_mem": shared_mem,
                "stream": stream,
                "programmatic": programmatic,
                "num_attrs": int(programmatic),
                "params": ROUTE_PARAMS.pack(*params),
            }
        )

    monkeypatch.setattr(route_module, "_device_info", lambda index: (SM_COUNT, True))
    monkeypatch.setattr(route_module, "_current_stream", lambda index: 0)
    monkeypatch.setattr(route_module, "driver_launch_available", lambda: True)
    monkeypatch.setattr(route_module, "launch_route_kernel", record)
    monkeypatch.setattr(
        route_module,
        "get_kernel",
        lambda name, defines, index: types.SimpleNamespace(ptr=FAKE_FUNCTIONS[name]),
    )
    monkeypatch.setattr(
        route_module, "resident_blocks_per_sm", lambda function, block, shared_mem: FAKE_RESIDENT[function]
    )
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    route_module.launch(dispatch_plan(config, scores.dtype), scores, bias, config, ids, weights)
    return seen[0] if seen else None


GENERIC = RoutingConfig(num_experts=96, topk=5, num_expert_group=4, topk_group=2, scoring_func="sigmoid")
CONFIGS = [s.config(num_fused_shared_experts=1) for s in SPECIALIZATIONS] + [
    GENERIC,
    SPECIALIZATIONS[0].config(
        num_fused_shared_experts=3,
        shared_expert_mode="replica",
        apply_routed_scaling_factor_on_output=True,
        routed_scaling_factor=2.5,
    ),
]
ROWS = (
    0,
    1,
    2,
    33,
    8 * SM_COUNT,
    8 * SM_COUNT + 1,
    128 * SM_COUNT - 8,
    128 * SM_COUNT,
    40_000,
    8 * SEGMENT_BOUND_MIN_BLOCKS_PER_SM * SM_COUNT - 8,
    8 * SEGMENT_BOUND_MIN_BLOCKS_PER_SM * SM_COUNT,
)


@pytest.mark.parametrize("block_rows", [None, 1], ids=["block-rows-default", "block-rows-1"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"E{c.num_experts}K{c.topk}G{c.num_expert_group}")
def test_every_launch_is_the_python_launchers_launch(launcher, monkeypatch, config, block_rows) -> None:
    # block_rows: dispatch.LOOP_BLOCK_ROWS for this run (None: as shipped). At 1 the looping grids of ROWS
    # grow past their cap (test_every_plan_and_the_grid_cap_are_reached), so both launchers' multiples meet.
    if block_rows is not None:
        monkeypatch.setattr(dispatch, "LOOP_BLOCK_ROWS", block_rows)
    module, recorder = launcher.module, launcher.recorder
    record = record_for(module, config)
    E, W = config.num_experts, config.output_width
    for dtype in SCORE_DTYPE_CODES:
        big = torch.empty((max(ROWS), E + 3), dtype=dtype)
        for bias_dtype in (None, torch.float32, torch.bfloat16, torch.float16):
            bias = None if bias_dtype is None else torch.zeros(E, dtype=bias_dtype)
            for num_rows in ROWS:
                for padded in (False, True):
                    scores = big[:num_rows, :E] if padded else big.view(-1)[: num_rows * E].view(num_rows, E)
                    ids = torch.empty((num_rows, W), dtype=torch.int32)
                    weights = torch.empty((num_rows, W), dtype=torch.float32)
                    expected = python_launch(monkeypatch, config, scores, bias, ids, weights)
                    # with the caller's buffers: the very same launch, byte for byte
                    recorder.calls.clear()
                    result = module.route(scores, bias, record, (ids, weights))
                    assert result is not None and result[0] is ids and result[1] is weights
                    assert recorder.calls == ([] if expected is None else [expected]), (
                        dtype,
                        bias_dtype,
                        num_rows,
                    )
                    # allocating: the same launch into the new tensors
                    recorder.calls.clear()
                    new_ids, new_weights = module.route(scores, bias, record, None)
                    assert new_ids.dtype == torch.int32 and new_weights.dtype == torch.float32
                    assert new_ids.shape == new_weights.shape == (num_rows, W)
                    assert new_ids.is_contiguous() and new_weights.is_contiguous()
                    if expected is None:
                        assert num_rows == 0 and recorder.calls == []
                        continue
                    (call,) = recorder.calls
                    pointers = ROUTE_PARAMS.unpack(call["params"])[-2:]
                    assert pointers == (new_ids.data_ptr(), new_weights.data_ptr())
                    assert call["params"][:80] == expected["params"][:80]
                    assert {k: v for k, v in call.items() if k != "params"} == {
                        k: v for k, v in expected.items() if k != "params"
                    }


def test_a_config_has_one_plan_geometry_for_every_scores_dtype() -> None:
    """A record fixes the plan geometry per config (native.Records refuses a second one): the dispatch gives
    every scores dtype of a config the same, on the table's rows and off them."""
    for config in CONFIGS:
        keys = {native.geometry_key(dispatch_plan(config, dtype)) for dtype in SCORE_DTYPE_CODES}
        assert len(keys) == 1, config


def test_every_plan_and_the_grid_cap_are_reached(launcher) -> None:
    """The comparison above spans the latency plan (T <= 8 * SMs), the throughput plan, the bound plan
    (from 16 blocks of 8 rows per SM on; a segment row's from SEGMENT_BOUND_MIN_BLOCKS_PER_SM) and the
    capped grid: checked here so that a change of ROWS cannot quietly lose one."""
    plan = dispatch_plan(SPECIALIZATIONS[0].config(), torch.bfloat16)
    assert plan.bound_name_expression is not None
    selections = {plan.selection_plan(t, SM_COUNT) for t in ROWS if t}
    assert selections == {PLAN_LATENCY, PLAN_THROUGHPUT, PLAN_BOUND}
    assert plan.selection_plan(128 * SM_COUNT - 8, SM_COUNT) == PLAN_THROUGHPUT
    assert plan.selection_plan(128 * SM_COUNT, SM_COUNT) == PLAN_BOUND
    assert any(plan.grid(t, SM_COUNT) < -(-t // plan.warps_per_block) for t in ROWS)
    # A segment row's bound plan starts later (SEGMENT_BOUND_MIN_BLOCKS_PER_SM): reached on both sides too.
    segment = dispatch_plan(PRESETS["moonlight-16b-a3b"], torch.bfloat16)
    assert segment.bound_name_expression is not None
    selections = {segment.selection_plan(t, SM_COUNT) for t in ROWS if t}
    assert selections == {PLAN_LATENCY, PLAN_THROUGHPUT, PLAN_BOUND}
    first = 8 * SEGMENT_BOUND_MIN_BLOCKS_PER_SM * SM_COUNT
    assert segment.selection_plan(first - 8, SM_COUNT) == PLAN_THROUGHPUT
    assert segment.selection_plan(first, SM_COUNT) == PLAN_BOUND
    # Both kinds of grid cap bind somewhere in the comparison: a kernel's resident blocks (3, one wave) and
    # a full SM's threads (8 blocks of 256, 16 of the generic kernel's 128).
    binding = set()
    for config in CONFIGS:
        for dtype in SCORE_DTYPE_CODES:
            p = dispatch_plan(config, dtype)
            for t in ROWS[1:]:
                selection = p.selection_plan(t, SM_COUNT)
                resident = FAKE_RESIDENT[FAKE_FUNCTIONS[p.kernel_name(selection)]]
                cap = p.cap_blocks_per_sm(resident)
                wanted = -(-t // (p.warps_per_block * p.rows_per_warp))
                if p.geometry(t, SM_COUNT, selection, resident) == (SM_COUNT * cap, p.block) < (wanted, 0):
                    binding.add(cap)
    assert {3, 8, 16} <= binding, binding
    # With one row a block (the comparison's second run), the looping grids whose cap is a full SM grow to
    # whole multiples of their cap past it, at several multiples; those capped at one wave of 3 stay there.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dispatch, "LOOP_BLOCK_ROWS", 1)
        multiples = set()
        one_wave = set()
        for config, dtype in itertools.product(CONFIGS, SCORE_DTYPE_CODES):
            p = dispatch_plan(config, dtype)
            if not p.loops_at_resident_blocks:
                continue
            for t in ROWS[1:]:
                selection = p.selection_plan(t, SM_COUNT)
                resident = FAKE_RESIDENT[FAKE_FUNCTIONS[p.kernel_name(selection)]]
                capped = SM_COUNT * p.cap_blocks_per_sm(resident)
                wanted = -(-t // (p.warps_per_block * p.rows_per_warp))
                grid, _ = p.geometry(t, SM_COUNT, selection, resident)
                if wanted > SM_COUNT * (2048 // p.block):  # the blocks loop
                    if p.cap_blocks_per_sm(resident) == 2048 // p.block:
                        multiples.add(grid // capped)
                    else:
                        assert grid == capped, (config, dtype, t, grid)
                        one_wave.add(p.cap_blocks_per_sm(resident))
        assert len(multiples - {1}) >= 2, multiples
        assert 3 in one_wave, one_wave


def test_a_device_or_dtype_without_kernels_takes_the_python_path(launcher) -> None:
    module, recorder = launcher.module, launcher.recorder
    config = SPECIALIZATIONS[0].config()
    recorder.calls.clear()
    only_bf16 = record_for(module, config, dtypes=(torch.bfloat16,))
    assert module.route(torch.zeros(4, 256, dtype=torch.float32), None, only_bf16, None) is None
    other_device = record_for(module, config, device=1)  # CPU tensors use slot 0
    assert module.route(torch.zeros(4, 256, dtype=torch.bfloat16), None, other_device, None) is None
    assert recorder.calls == []
    assert module.route(torch.zeros(4, 256, dtype=torch.bfloat16), None, only_bf16, None) is not None


def test_outside_test_mode_cpu_tensors_take_the_python_path(launcher) -> None:
    module = launcher.module
    record = record_for(module, SPECIALIZATIONS[0].config())
    address = ctypes.cast(launcher.callback, ctypes.c_void_p).value
    native.configure(module, allow_cpu=False, launch_address=address)
    try:
        assert module.route(torch.zeros(2, 256), None, record, None) is None
    finally:
        native.configure(module, allow_cpu=True, launch_address=address)


def test_a_refused_launch_raises_launch_error(launcher) -> None:
    from moegate.optimized.launch import LaunchError

    module, recorder = launcher.module, launcher.recorder
    record = record_for(module, SPECIALIZATIONS[0].config())
    recorder.status = 98  # CUDA_ERROR_INVALID_HANDLE
    try:
        with pytest.raises(LaunchError, match="CUDA error 98"):
            module.route(torch.zeros(2, 256), None, record, None)
    finally:
        recorder.status = 0


def test_records_and_kernels_reject_bad_arguments(launcher) -> None:
    module = launcher.module
    record = record_for(module, SPECIALIZATIONS[0].config())
    with pytest.raises(ValueError, match="device=64"):
        module.set_kernels(record, 64, SM_COUNT, 1, 0, 1, 2, 3, 8, 8, 8)
    with pytest.raises(ValueError, match="dtype_code=3"):
        module.set_kernels(record, 0, SM_COUNT, 1, 3, 1, 2, 3, 8, 8, 8)
    with pytest.raises(ValueError, match="sm_count=0"):
        module.set_kernels(record, 0, 0, 1, 0, 1, 2, 3, 8, 8, 8)
    for caps in ((0, 8, 8), (8, 65, 8), (8, 8, -1)):
        with pytest.raises(ValueError, match="blocks per SM"):
            module.set_kernels(record, 0, SM_COUNT, 1, 0, 1, 2, 3, *caps)
    with pytest.raises(TypeError):
        module.set_kernels(record, 0, SM_COUNT, 1, 0, 1, 2, 3)  # no caps
    with pytest.raises(TypeError):
        module.route(torch.zeros(2, 256), None, "not a record", None)
    with pytest.raises(TypeError, match=r"4 arguments|got 3"):
        module.route(torch.zeros(2, 256), None, record)


# ---- the checks: launch exactly when check_inputs accepts ------------------------------------------------
E = 64
CHECK_CONFIG = RoutingConfig(num_experts=E, topk=6)


@st.composite
def call_arguments(draw):
    """Valid and invalid (scores, bias, out) for CHECK_CONFIG, one departure from valid at a time or none."""
    num_rows = draw(st.sampled_from([0, 1, 2, 5]))
    dtype = draw(st.sampled_from([torch.float32, torch.bfloat16, torch.float16]))
    scores: object = torch.zeros(num_rows, E, dtype=dtype)
    bias: object = draw(st.sampled_from([None, torch.float32, torch.bfloat16, torch.float16]))
    bias = None if bias is None else torch.zeros(E, dtype=bias)
    out: object = None
    if draw(st.booleans()):
        out = (torch.zeros(num_rows, 7, dtype=torch.int32), torch.zeros(num_rows, 7, dtype=torch.float32))
    fault = draw(
        st.sampled_from(
            [
                None,
                "scores_dtype",
                "scores_not_tensor",
                "scores_1d",
                "scores_3d",
                "scores_width",
                "column_stride",
                "row_overlap",
                "row_stride_zero",
                "padded_rows",
                "bias_dtype",
                "bias_not_tensor",
                "bias_shape",
                "bias_2d",
                "bias_stride",
                "bias_view",
                "out_dtype",
                "out_shape",
                "out_not_pair",
                "out_list",
                "out_noncontiguous",
                "out_not_tensor",
                "out_weights_dtype",
            ]
        )
    )
    if fault == "scores_dtype":
        scores = torch.zeros(
            num_rows, E, dtype=draw(st.sampled_from([torch.float64, torch.int32, torch.uint8]))
        )
    elif fault == "scores_not_tensor":
        scores = [[0.0] * E] * num_rows
    elif fault == "scores_1d":
        scores = torch.zeros(E, dtype=dtype)
    elif fault == "scores_3d":
        scores = torch.zeros(1, num_rows, E, dtype=dtype)
    elif fault == "scores_width":
        scores = torch.zeros(num_rows, E + draw(st.sampled_from([-1, 1, 32])), dtype=dtype)
    elif fault == "column_stride":
        scores = torch.zeros(E, num_rows, dtype=dtype).t()
    elif fault == "row_overlap":
        scores = torch.zeros(num_rows * E, dtype=dtype).as_strided((num_rows, E), (E - 1, 1))
    elif fault == "row_stride_zero":
        scores = torch.zeros(E, dtype=dtype).as_strided((num_rows, E), (0, 1))
    elif fault == "padded_rows":
        scores = torch.zeros(num_rows, E + 5, dtype=dtype)[:, :E]
    elif fault == "bias_dtype":
        bias = torch.zeros(E, dtype=draw(st.sampled_from([torch.float64, torch.int64])))
    elif fault == "bias_not_tensor":
        bias = [0.0] * E
    elif fault == "bias_shape":
        bias = torch.zeros(E + 1)
    elif fault == "bias_2d":
        bias = torch.zeros(1, E)
    elif fault == "bias_stride":
        bias = torch.zeros(2 * E)[::2]
    elif fault == "bias_view":
        bias = torch.zeros(E + 8)[8:]
    elif fault == "out_dtype" and out is not None:
        out = (out[0].float(), out[1])
    elif fault == "out_weights_dtype" and out is not None:
        out = (out[0], out[1].double())
    elif fault == "out_shape" and out is not None:
        out = (torch.zeros(num_rows, 6, dtype=torch.int32), torch.zeros(num_rows, 6))
    elif fault == "out_not_pair" and out is not None:
        out = (*out, out[0])
    elif fault == "out_list" and out is not None:
        out = list(out)
    elif fault == "out_noncontiguous" and out is not None:
        out = (torch.zeros(7, num_rows, dtype=torch.int32).t(), out[1])
    elif fault == "out_not_tensor" and out is not None:
        out = (out[0], 0.0)
    return scores, bias, out


def python_accepts(scores, bias, out) -> bool:
    try:
        check_inputs(scores, bias, CHECK_CONFIG)
        route_module._check_out(out, int(scores.shape[0]), CHECK_CONFIG.output_width, scores.device)
    except (TypeError, ValueError):
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=call_arguments())
def test_it_launches_exactly_when_check_inputs_accepts(launcher, arguments) -> None:
    module, recorder = launcher.module, launcher.recorder
    scores, bias, out = arguments
    record = record_for(module, CHECK_CONFIG)
    recorder.calls.clear()
    result = module.route(scores, bias, record, out)
    accepted = python_accepts(scores, bias, out)
    assert (result is not None) == accepted
    if not accepted:
        assert recorder.calls == []
    else:
        assert len(recorder.calls) == (1 if scores.shape[0] > 0 else 0)


def test_empty_rows_with_any_strides_are_accepted(launcher) -> None:
    module = launcher.module
    record = record_for(module, CHECK_CONFIG)
    scores = torch.zeros(0, E).as_strided((0, E), (0, 0))
    ids, weights = module.route(scores, None, record, None)
    assert ids.shape == weights.shape == (0, CHECK_CONFIG.output_width)


# ---- building, choosing and falling back ---------------------------------------------------------------
def test_the_launcher_choice_reads_the_environment(monkeypatch) -> None:
    for value, expected in (("", "native"), ("native", "native"), (" Python ", "python"), ("cupy", "cupy")):
        monkeypatch.setenv(native.LAUNCH_ENV, value)
        assert native.launcher_choice() == expected
    monkeypatch.setenv(native.LAUNCH_ENV, "fast")
    with pytest.raises(ValueError, match=r"MOEGATE_LAUNCH='fast'.*'native', 'python', 'cupy'"):
        native.launcher_choice()


def test_a_failed_build_warns_once_and_leaves_the_python_launcher(monkeypatch) -> None:
    calls = []

    def failing_build(verbose: bool = False):
        calls.append(1)
        raise RuntimeError("Error building extension 'moegate_launcher'\nc++: not found")

    monkeypatch.setattr(native, "build_extension", failing_build)
    monkeypatch.setattr(native, "_module", None)
    monkeypatch.setattr(native, "_build_error", None)
    with pytest.warns(RuntimeWarning, match="could not be built.*c\\+\\+: not found"):
        assert native.load_extension() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.load_extension() is None  # no second build, no second warning
    assert calls == [1]
    assert "c++: not found" in (native.build_error() or "")


def test_the_build_is_named_by_the_source_and_cached_under_moegate_cache_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path))
    assert native.cache_dir() == tmp_path
    name = native.extension_name()
    assert name.startswith("moegate_launcher_") and name == native.extension_name()
    assert "TORCH_EXTENSION_NAME" in native.LAUNCHER_SOURCE.read_text()


def test_records_are_per_config_object_and_bounded(launcher, monkeypatch) -> None:
    module = launcher.module
    records = native.Records()
    config = SPECIALIZATIONS[0].config()
    equal_but_other = SPECIALIZATIONS[0].config()
    plan = dispatch_plan(config, torch.bfloat16)
    records.register(module, config, plan, torch.bfloat16, 0, SM_COUNT, True, (1, 2, 3), (8, 8, 8))
    assert records.registered(config, torch.bfloat16, 0)
    assert not records.registered(config, torch.float16, 0) and not records.registered(
        config, torch.bfloat16, 1
    )
    assert not records.registered(equal_but_other, torch.bfloat16, 0)
    monkeypatch.setattr(native, "MAX_RECORDS", 2)
    others = [SPECIALIZATIONS[i].config() for i in (1, 2)]
    for other in others:
        records.register(
            module,
            other,
            dispatch_plan(other, torch.bfloat16),
            torch.bfloat16,
            0,
            SM_COUNT,
            True,
            (1, 2, 3),
            (8, 8, 8),
        )
    assert len(records.by_id) <= 2


def test_a_bad_launcher_choice_raises_before_any_launch(monkeypatch) -> None:
    """The Python path registers with the compiled launcher before it launches, so that what registering
    raises (here a bad $MOEGATE_LAUNCH) comes before any GPU work."""
    launched: list[object] = []
    monkeypatch.setenv(native.LAUNCH_ENV, "fastest")
    monkeypatch.setattr(route_module, "_native_tried", False)
    monkeypatch.setattr(route_module, "_records", native.Records())
    monkeypatch.setattr(route_module, "_check_cuda", lambda scores: None)  # CPU tensors stand in
    monkeypatch.setattr(route_module, "driver_launch_available", lambda: True)
    monkeypatch.setattr(route_module, "launch", lambda *args, **kwargs: launched.append(args))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    config = SPECIALIZATIONS[0].config()
    with pytest.raises(ValueError, match="MOEGATE_LAUNCH='fastest'"):
        route_module._route(torch.zeros(2, 256), None, config, None, ())
    assert launched == []
    route_module._route(torch.zeros(0, 256), None, config, None, ())  # T = 0: nothing to register or launch
    assert len(launched) == 1  # launch() itself returns at once for T = 0
