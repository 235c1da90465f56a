"""CPU tests of moegate.optimized that need no GPU: the dispatch table, the launcher's checks, the import.

Every table row must be reached by a preset (no unreachable specialization), the plan is a pure function
of (config, dtype), and `route` raises the reference's errors before any GPU work.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from moegate.optimized import (
    MAX_EXPERTS,
    PLAN_BOUND,
    PLAN_LATENCY,
    PLAN_THROUGHPUT,
    SPECIALIZATIONS,
    build_route,
    dispatch,
    dispatch_plan,
    generic_plan,
    name_expressions,
    route,
)
from moegate.optimized.dispatch import (
    BOUND_MIN_BLOCKS_PER_SM,
    LOOP_BLOCK_ROWS,
    SCORE_DTYPE_CODES,
    SEGMENT_BOUND_MIN_BLOCKS_PER_SM,
    KernelPlan,
    bound_plan_applies,
    grid_cap_blocks_per_sm,
    lazy_named_plan_applies,
    loop_cap_multiple,
    named_keys_apply,
    segment_bound_plan_applies,
)
from moegate.reference import PRESETS, RoutingConfig, check_inputs

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


# ---- the dispatch table ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_specialization_is_reached_by_a_preset(dtype: torch.dtype) -> None:
    reached = {dispatch_plan(config, dtype).specialization for config in PRESETS.values()}
    for spec in SPECIALIZATIONS:
        assert spec.name in reached, f"specialization {spec} is reached by no preset for {dtype}"


def test_hot_presets_are_specialized() -> None:
    for name in ("deepseek-v3", "kimi-k2"):
        for dtype in DTYPES:
            plan = dispatch_plan(PRESETS[name], dtype)
            assert plan.specialization is not None, f"{name} {dtype} runs the generic kernel: {plan}"


def test_bound_plan_rows() -> None:
    # route.cu's bound_plan_applies: sigmoid, E % 32 == 0, 64 <= E <= 256, K + 1 keys among the kept lanes'
    # first min(E / 32, 4) sorted ones. tests/test_optimized_compile.py checks route.cu's copy of the rule.
    for dtype in DTYPES:
        assert [s.name for s in SPECIALIZATIONS if s.has_bound_plan(dtype) and s.kernel == "warp"] == [
            "deepseek-v3",
            "glm-4.5",
        ]
    assert bound_plan_applies("sigmoid", 256, 8, 4, 8)
    assert not bound_plan_applies("softmax", 256, 8, 4, 8)
    assert not bound_plan_applies("sigmoid", 384, 1, 1, 8)  # an expert needs more than one byte
    assert not bound_plan_applies("sigmoid", 32, 1, 1, 4)  # one expert a lane
    assert bound_plan_applies("sigmoid", 96, 1, 1, 4)  # three experts a lane
    assert not bound_plan_applies("sigmoid", 80, 1, 1, 4)  # E % 32 != 0
    assert bound_plan_applies("sigmoid", 64, 8, 1, 7)  # 1 group of 4 lanes x 2 sorted keys = 8 >= K + 1
    assert not bound_plan_applies("sigmoid", 64, 8, 1, 8)  # 8 < K + 1


def test_named_keys_rows() -> None:
    # route.cu's select_by_named_keys: a segment throughput plan, E % 32 == 0, E <= 256, at most 10 experts
    # a lane, 1 < K <= L. tests/test_optimized_compile.py checks route.cu's copy of the rule.
    rows = [s.name for s in SPECIALIZATIONS if s.has_named_keys]
    assert rows == [
        "qwen3-moe",
        "deepseek-v2",
        "deepseek-v2-lite",
        "moonlight-16b-a3b",
        "glm-4.5-air",
        "gpt-oss-120b",
    ]
    assert named_keys_apply("softmax", 128, 1, 1, 8, 16)  # Qwen3-MoE
    assert named_keys_apply("sigmoid", 64, 1, 1, 6, 8)  # Moonlight
    assert named_keys_apply("sigmoid", 128, 2, 2, 8, 16)  # every group kept: no group step
    assert named_keys_apply("softmax", 160, 8, 3, 6, 16)  # DeepSeek-V2: groups first, 10 experts a lane
    assert not named_keys_apply("softmax", 192, 8, 3, 6, 16)  # 12 experts a lane
    assert not named_keys_apply("sigmoid", 128, 1, 1, 1, 16)  # K = 1 (Llama-4): one tree, no rounds
    assert not named_keys_apply("sigmoid", 128, 1, 1, 9, 8)  # K > L: no slot per lane
    assert not named_keys_apply("sigmoid", 128, 1, 1, 8, 8)  # 16 experts a lane
    assert not named_keys_apply("sigmoid", 288, 1, 1, 8, 16)  # an expert needs more than one byte
    assert not any(s.has_named_keys for s in SPECIALIZATIONS if s.kernel != "segment")


def test_segment_bound_plan_rows() -> None:
    # route.cu's route_segment_row_bound: sigmoid, no groups, E % 32 == 0, E <= 256, 2 to 8 experts a lane,
    # 1 < K <= L (a slot per lane). tests/test_optimized_compile.py checks route.cu's copy of the rule.
    sigmoid_rows = [s.name for s in SPECIALIZATIONS if segment_bound_plan_applies(*s.key, s.lanes)]
    assert sigmoid_rows == ["moonlight-16b-a3b"]
    assert segment_bound_plan_applies("sigmoid", 64, 1, 1, 6, 8)  # Moonlight
    assert not segment_bound_plan_applies("sigmoid", 128, 1, 1, 8, 16)  # GLM-4.5-Air: named keys faster
    assert not segment_bound_plan_applies("sigmoid", 128, 1, 1, 1, 16)  # K = 1 (Llama-4): no slot per lane
    assert not segment_bound_plan_applies("softmax", 128, 1, 1, 8, 16)  # Qwen3-MoE
    assert not segment_bound_plan_applies("sigmoid", 160, 8, 3, 6, 16)  # groups
    assert not segment_bound_plan_applies("sigmoid", 128, 1, 1, 9, 8)  # K > L
    assert not segment_bound_plan_applies("sigmoid", 160, 1, 1, 6, 16)  # 10 experts a lane
    assert segment_bound_plan_applies("sigmoid", 32, 1, 1, 2, 16)  # 2 experts a lane
    assert not segment_bound_plan_applies("sigmoid", 32, 1, 1, 2, 32)  # one expert a lane
    assert not segment_bound_plan_applies("sigmoid", 288, 1, 1, 8, 16)  # an expert needs more than one byte
    # Each segment row with a bound plan (either rule) compiles it as a segment kernel (PLAN = 2), never a
    # warp kernel, and takes it from SEGMENT_BOUND_MIN_BLOCKS_PER_SM blocks per SM on.
    for spec in SPECIALIZATIONS:
        for dtype in DTYPES:
            plan = dispatch_plan(spec.config(), dtype)
            if spec.kernel != "segment" or not spec.has_bound_plan(dtype):
                continue
            assert plan.bound_name_expression is not None
            assert plan.bound_name_expression.startswith("moegate::route_segment_kernel<")
            assert plan.bound_name_expression.endswith(f", {spec.lanes}, {PLAN_BOUND}>")
            assert plan.bound_min_blocks_per_sm == SEGMENT_BOUND_MIN_BLOCKS_PER_SM


def test_lazy_named_plan_rows() -> None:
    # route.cu's lazy_named_plan_applies: softmax rows with named keys and no groups, float32 logits at
    # K > 4 (docs/perf.md, sessions 20 to 23). tests/test_optimized_compile.py checks route.cu's copy of
    # the rule.
    lazy = {
        dtype: [s.name for s in SPECIALIZATIONS if lazy_named_plan_applies(*s.key, s.lanes, dtype)]
        for dtype in DTYPES
    }
    assert lazy[torch.float32] == ["qwen3-moe", "deepseek-v2-lite"]
    assert lazy[torch.bfloat16] == lazy[torch.float16] == []
    for dtype in DTYPES:
        for spec in SPECIALIZATIONS:
            bound = dispatch_plan(spec.config(), dtype).bound_name_expression
            if lazy_named_plan_applies(*spec.key, spec.lanes, dtype):
                assert spec.has_bound_plan(dtype) and bound is not None, (spec.name, dtype)
            if spec.kernel == "segment" and spec.has_bound_plan(dtype):
                # one bound plan per row: the sigmoid proof's or the lazy keys', never both
                assert segment_bound_plan_applies(*spec.key, spec.lanes) != lazy_named_plan_applies(
                    *spec.key, spec.lanes, dtype
                )
    assert lazy_named_plan_applies("softmax", 128, 1, 1, 8, 16, torch.float32)  # Qwen3-MoE
    assert not lazy_named_plan_applies("softmax", 128, 1, 1, 8, 16, torch.bfloat16)  # K > 4 in 16 bits
    assert not lazy_named_plan_applies("softmax", 128, 1, 1, 8, 16, torch.float16)  # 16 bits
    assert not lazy_named_plan_applies("softmax", 128, 1, 1, 4, 16, torch.float32)  # gpt-oss: K <= 4
    assert lazy_named_plan_applies("softmax", 64, 1, 1, 6, 8, torch.float32)  # DeepSeek-V2-Lite
    assert not lazy_named_plan_applies("softmax", 160, 8, 3, 6, 16, torch.float32)  # DeepSeek-V2: groups
    assert not lazy_named_plan_applies("softmax", 128, 2, 2, 4, 16, torch.float32)  # groups, all kept
    assert not lazy_named_plan_applies("sigmoid", 128, 1, 1, 4, 16, torch.float32)  # sigmoid
    assert not lazy_named_plan_applies("softmax", 128, 1, 1, 1, 16, torch.float32)  # K = 1: no named keys
    assert not lazy_named_plan_applies("softmax", 288, 1, 1, 4, 16, torch.float32)  # an expert needs 2 bytes


def test_every_plan_names_a_compiled_kernel() -> None:
    compiled = name_expressions()
    kernels = sum(
        sum(1 if s.kernel == "thread" else 3 if s.has_bound_plan(dtype) else 2 for s in SPECIALIZATIONS) + 1
        for dtype in SCORE_DTYPE_CODES
    )  # + generic, per dtype
    assert len(compiled) == len(set(compiled)) == kernels
    configs = [*PRESETS.values(), RoutingConfig(num_experts=72, topk=5, num_expert_group=3, topk_group=2)]
    for config in configs:
        for dtype in DTYPES:
            plan = dispatch_plan(config, dtype)
            assert plan.name_expression in compiled
            assert plan.kernel_name(PLAN_LATENCY) in compiled
            assert plan.kernel_name(PLAN_BOUND) in compiled
            assert plan.kernel_name(PLAN_THROUGHPUT) == plan.name_expression
            assert generic_plan(config, dtype).name_expression in compiled


def test_every_compiled_kernel_is_reached_by_a_preset_and_a_batch_size() -> None:
    # The dispatch bug class of the public attempt: a compiled specialization that no call can reach.
    # Every compiled kernel but the generic one is what some preset at some T launches.
    sm_count = 132
    reached = set()
    for config in PRESETS.values():
        for dtype in DTYPES:
            plan = dispatch_plan(config, dtype)
            for num_rows in (1, 16, 4096, 262144):
                reached.add(plan.kernel_name(plan.selection_plan(num_rows, sm_count)))
    generic = {generic_plan(PRESETS["deepseek-v3"], d).name_expression for d in DTYPES}
    assert set(name_expressions()) - generic <= reached
    assert set(name_expressions()) - generic == reached - generic


def test_specializations_satisfy_the_kernel_constraints() -> None:
    # route.cu's static_asserts, checked here so a bad table row fails on CPU too.
    for spec in SPECIALIZATIONS:
        scoring, e, g, kg, k = spec.key
        assert scoring in ("sigmoid", "softmax")
        assert spec.kernel in ("warp", "thread", "segment")
        if spec.kernel == "thread":
            assert 1 <= e <= 32 and g == 1 and kg == 1 and 1 <= k <= e and spec.lanes == 0
            continue
        if spec.kernel == "segment":  # and its latency plan is a warp kernel's: the constraints below too
            per_segment_lane = e // spec.lanes
            assert spec.lanes in (2, 4, 8, 16) and e % 32 == 0 and 1 <= per_segment_lane <= 32
            if g > 1:  # a group on a power-of-two number of whole segment lanes
                group_lanes = (e // g) // per_segment_lane
                assert (e // g) % per_segment_lane == 0 and group_lanes & (group_lanes - 1) == 0
                assert group_lanes <= spec.lanes
        else:
            assert spec.lanes == 0
        per_lane, per_group = e // 32, e // g
        assert e % 32 == 0 and e % g == 0 and 1 <= kg <= g
        if g > 1:
            lanes = per_group // per_lane
            assert per_group % per_lane == 0 and lanes & (lanes - 1) == 0 and lanes <= 32
        assert 1 <= k <= min(32, kg * per_group)
    assert len({s.key for s in SPECIALIZATIONS}) == len(SPECIALIZATIONS)


def test_a_table_row_names_a_known_kernel_kind() -> None:
    from moegate.optimized import Specialization

    with pytest.raises(ValueError, match=r"kernel='lane'.*'warp', 'thread', 'segment'"):
        Specialization("x", "softmax", num_experts=8, num_expert_group=1, topk_group=1, topk=2, kernel="lane")
    # 5 groups of 32 experts on lanes of 10: a group would end inside a lane.
    bad_shape = r"kernel='segment' with \(E, G, Kg, K\) = \(160, 5, 2, 8\) and lanes=16.*whole lanes"
    with pytest.raises(ValueError, match=bad_shape):
        Specialization("x", "sigmoid", num_experts=160, num_expert_group=5, topk_group=2, topk=8,
                       kernel="segment", lanes=16)  # fmt: skip
    with pytest.raises(ValueError, match=r"E % 32 == 0, E / lanes <= 32"):
        Specialization("x", "sigmoid", num_experts=128, num_expert_group=1, topk_group=1, topk=8,
                       kernel="segment", lanes=2)  # fmt: skip
    bad_lanes = r"lanes=3 for kernel='segment', but a segment is one of \(2, 4, 8, 16\)"
    with pytest.raises(ValueError, match=bad_lanes):
        Specialization("x", "sigmoid", num_experts=64, num_expert_group=1, topk_group=1, topk=6,
                       kernel="segment", lanes=3)  # fmt: skip
    with pytest.raises(ValueError, match=r"lanes=8 for kernel='warp', but only a 'segment' row has lanes"):
        Specialization("x", "sigmoid", num_experts=64, num_expert_group=1, topk_group=1, topk=6, lanes=8)


@pytest.mark.parametrize(("preset", "lanes"), [("moonlight-16b-a3b", 8), ("llama-4-maverick", 16)])
def test_segment_rows_route_32_over_l_rows_per_warp_in_the_throughput_plan(
    preset: str, lanes: int, monkeypatch
) -> None:
    # A segment row: 32 / L rows per warp at large T (route_segment_kernel), a warp per row at small T; the
    # warps are spread over the SMs until a full block (8 warps) per SM is needed, then the grid grows to
    # the cap (8 blocks of 256 threads per SM). The cap alone here: the grid's growth past LOOP_BLOCK_ROWS
    # rows a block is test_a_looping_grid_grows_in_whole_caps_past_its_block_rows'.
    monkeypatch.setattr(dispatch, "LOOP_BLOCK_ROWS", 0)
    plan = dispatch_plan(PRESETS[preset], torch.bfloat16)
    assert f"route_segment_kernel<1, 0, {PRESETS[preset].num_experts}," in plan.kernel_name(PLAN_THROUGHPUT)
    assert plan.kernel_name(PLAN_THROUGHPUT).endswith(f", {lanes}, {PLAN_THROUGHPUT}>")
    assert plan.rows_per_warp == 32 // lanes
    assert "route_warp_kernel" in plan.kernel_name(PLAN_LATENCY)
    sm = 132
    assert plan.selection_plan(8 * sm, sm) == PLAN_LATENCY
    assert plan.selection_plan(8 * sm + 1, sm) == PLAN_THROUGHPUT
    assert plan.geometry(8 * sm, sm, PLAN_LATENCY) == (sm, 256)
    # Fewer warps than a full block per SM: spread over the SMs (ceil(warps / SM) warps a block).
    rows_per_warp = 32 // lanes
    warps = -(-(8 * sm + 1) // rows_per_warp)  # 133 (Moonlight), 529 (Llama-4)
    per_block = -(-warps // sm)  # 2, 5
    assert plan.geometry(8 * sm + 1, sm, PLAN_THROUGHPUT) == (-(-warps // per_block), 32 * per_block)
    full = 8 * sm * rows_per_warp  # a full block per SM from here: 8 warps, 256 threads
    assert plan.geometry(full - rows_per_warp * sm, sm, PLAN_THROUGHPUT) == (sm, 32 * 7)
    assert plan.geometry(full, sm, PLAN_THROUGHPUT) == (sm, 256)
    assert plan.geometry(10**6, sm, PLAN_THROUGHPUT) == (8 * sm, 256)
    assert plan.geometry(10**9, sm, PLAN_THROUGHPUT) == (sm * 8, 256)  # capped; the kernel loops
    if plan.bound_name_expression is not None:  # Moonlight: the bound plan is a segment kernel too
        assert plan.geometry(10**6, sm, PLAN_BOUND) == plan.geometry(10**6, sm, PLAN_THROUGHPUT)
    # Where the blocks loop (more than 8 blocks' rows per SM), a kernel with 3 blocks resident per SM gets 3
    # blocks per SM (one wave); with 4, 8 or unknown (0), 8.
    assert plan.geometry(10**6, sm, PLAN_THROUGHPUT, 3) == (3 * sm, 256)
    for resident in (0, 1, 2, 4, 8):
        assert plan.geometry(10**6, sm, PLAN_THROUGHPUT, resident) == (8 * sm, 256)
    # Up to 8 blocks' rows per SM one block per 8 warps' rows, whatever the resident blocks: the hardware
    # runs them in waves; one row more and the blocks loop.
    last = 8 * full  # 8 full blocks per SM
    assert plan.geometry(last, sm, PLAN_THROUGHPUT, 3) == (8 * sm, 256)
    assert plan.geometry(last - 1, sm, PLAN_THROUGHPUT, 3) == (8 * sm, 256)
    assert plan.geometry(4 * full, sm, PLAN_THROUGHPUT, 3) == (4 * sm, 256)
    assert plan.geometry(last + 1, sm, PLAN_THROUGHPUT, 3) == (3 * sm, 256)
    assert plan.geometry(last + 1, sm, PLAN_THROUGHPUT, 4) == (8 * sm, 256)
    assert plan.geometry(full, sm, PLAN_THROUGHPUT, 3) == (sm, 256)
    assert plan.geometry(8 * sm + 1, sm, PLAN_THROUGHPUT, 3) == plan.geometry(8 * sm + 1, sm, PLAN_THROUGHPUT)


def test_the_grid_cap_is_a_full_sm_unless_the_resident_blocks_leave_a_partial_wave(monkeypatch) -> None:
    # The cap alone (the grid's growth past LOOP_BLOCK_ROWS rows a block: the test after this one).
    monkeypatch.setattr(dispatch, "LOOP_BLOCK_ROWS", 0)
    # 256-thread blocks: a full SM is 8; resident counts that divide 8 (or unknown, or 8 and more) keep it.
    assert [grid_cap_blocks_per_sm(256, r) for r in range(0, 10)] == [8, 8, 8, 3, 8, 5, 6, 7, 8, 8]
    # 128-thread blocks (the generic and row-per-thread kernels): a full SM is 16.
    assert [grid_cap_blocks_per_sm(128, r) for r in (0, 2, 4, 8, 16)] == [16] * 5
    assert [grid_cap_blocks_per_sm(128, r) for r in (3, 5, 6, 12, 15)] == [3, 5, 6, 12, 15]
    assert grid_cap_blocks_per_sm(2048, 1) == 1 and grid_cap_blocks_per_sm(32, 64) == 64
    for block, resident in ((0, 1), (4096, 1), (256, -1)):
        with pytest.raises(ValueError, match="block="):
            grid_cap_blocks_per_sm(block, resident)
    # The cap is per SM: where the blocks loop, the grid is the SM count times it; where they do not (a full
    # SM's threads on every SM hold the rows), one block per block's rows. The warp and segment kernels loop
    # in one wave of their resident blocks where those leave a partial wave; the row-per-thread and the
    # generic kernels at a full SM's threads, whatever reside.
    for preset in ("deepseek-v3", "glm-4.5-air", "mixtral-8x7b"):
        plan = dispatch_plan(PRESETS[preset], torch.bfloat16)
        assert plan.loops_at_resident_blocks == (preset != "mixtral-8x7b")
        rows_per_block = plan.warps_per_block * plan.rows_per_warp
        full = 132 * (2048 // plan.block)
        for resident in range(0, 17):
            cap = grid_cap_blocks_per_sm(plan.block, resident if plan.loops_at_resident_blocks else 0)
            assert plan.cap_blocks_per_sm(resident) == cap
            assert plan.geometry(10**9, 132, PLAN_THROUGHPUT, resident) == (132 * cap, plan.block)
            assert plan.grid(full * rows_per_block, 132, resident) == full
            assert plan.grid(full * rows_per_block - 1, 132, resident) == full
            assert plan.grid(full * rows_per_block + 1, 132, resident) == 132 * cap
    mixtral = dispatch_plan(PRESETS["mixtral-8x7b"], torch.bfloat16)
    assert mixtral.geometry(10**9, 132, PLAN_THROUGHPUT, 12) == (132 * 16, 128)
    generic = generic_plan(RoutingConfig(num_experts=96, topk=5), torch.float32)
    assert not generic.loops_at_resident_blocks
    assert generic.geometry(10**9, 132, PLAN_THROUGHPUT, 12) == (132 * 16, 128)
    assert generic.geometry(132 * 16 * 4, 132, PLAN_THROUGHPUT, 12) == (132 * 16, 128)


def test_a_looping_grid_grows_in_whole_caps_past_its_block_rows() -> None:
    # Where a warp or segment kernel's blocks loop and its cap is a full SM's threads (resident blocks that
    # divide it, or unknown), the grid is the smallest whole multiple of the cap's blocks (SM count times
    # cap_blocks_per_sm) that leaves each block at most LOOP_BLOCK_ROWS rows: the cap itself until the rows
    # outgrow that many a block of it. Checked by its definition on every T around the edges, against the
    # multiple below.
    assert LOOP_BLOCK_ROWS >= 1
    sm = 132
    for preset, resident in (("glm-4.5-air", 4), ("deepseek-v3", 4), ("deepseek-v3", 8), ("qwen3-moe", 0)):
        plan = dispatch_plan(PRESETS[preset], torch.bfloat16)
        assert plan.loops_at_resident_blocks and plan.loop_block_rows == LOOP_BLOCK_ROWS
        rows_per_block = plan.warps_per_block * plan.rows_per_warp
        assert plan.cap_blocks_per_sm(resident) == 2048 // plan.block
        capped = sm * plan.cap_blocks_per_sm(resident)
        edge = LOOP_BLOCK_ROWS * capped  # the capped grid at exactly that many rows a block
        assert edge > sm * (2048 // plan.block) * rows_per_block  # its blocks loop there
        multiples = set()
        for t in (edge - 1, edge, edge + 1, 2 * edge, 2 * edge + 1, 262144, 10**6, 10**9):
            grid = plan.grid(t, sm, resident)
            assert grid % capped == 0, (preset, t, grid)
            m = grid // capped
            multiples.add(m)
            assert -(-t // grid) <= LOOP_BLOCK_ROWS, (preset, t, grid)  # rows of the fullest block
            if m > 1:  # one multiple fewer would leave a block more rows
                assert -(-t // (grid - capped)) > LOOP_BLOCK_ROWS, (preset, t, grid)
            assert plan.geometry(t, sm, PLAN_THROUGHPUT, resident) == (grid, plan.block)
        assert plan.grid(edge, sm, resident) == capped
        assert plan.grid(edge + 1, sm, resident) == 2 * capped
        assert len(multiples) >= 4, multiples
    # A cap of one wave of its resident blocks (3 or 5 of 8) stays the grid at any T, with the rows a block
    # far past LOOP_BLOCK_ROWS.
    for preset, resident in (("deepseek-v3", 3), ("qwen3-next-80b-a3b", 3), ("glm-4.5", 5)):
        plan = dispatch_plan(PRESETS[preset], torch.bfloat16)
        assert plan.loop_block_rows == LOOP_BLOCK_ROWS and plan.cap_blocks_per_sm(resident) == resident
        for t in (262144, 10**6, 10**9):
            assert plan.grid(t, sm, resident) == sm * resident, (preset, t)
            assert -(-t // (sm * resident)) > LOOP_BLOCK_ROWS
    # The kernels whose blocks loop at a full SM (row-per-thread, generic) keep the cap at any T.
    mixtral = dispatch_plan(PRESETS["mixtral-8x7b"], torch.bfloat16)
    assert mixtral.loop_block_rows == 0 and mixtral.grid(10**9, sm) == sm * 16
    assert loop_cap_multiple(10**9, sm, 8, 0) == 1
    assert loop_cap_multiple(0, sm, 8, 128) == 1
    assert loop_cap_multiple(128 * sm * 8 * 3, sm, 8, 128) == 3  # three caps' worth of blocks exactly
    assert loop_cap_multiple(128 * sm * 8 * 3 + 1, sm, 8, 128) == 4
    for bad in ((-1, sm, 8, 8), (1, 0, 8, 8), (1, sm, 0, 8), (1, sm, 8, -1)):
        with pytest.raises(ValueError, match="num_rows="):
            loop_cap_multiple(*bad)


def test_small_e_rows_route_a_row_per_thread() -> None:
    # Mixtral (E = 8): one thread per row, 128 rows a block, one kernel for every T.
    plan = dispatch_plan(PRESETS["mixtral-8x7b"], torch.bfloat16)
    assert plan.specialization == "mixtral-8x7b" and "route_thread_kernel" in plan.name_expression
    assert plan.latency_name_expression is None and plan.rows_per_warp == 32
    assert plan.kernel_name(PLAN_LATENCY) == plan.kernel_name(PLAN_THROUGHPUT) == plan.name_expression
    sm = 132
    assert plan.geometry(1, sm, PLAN_LATENCY) == (1, 128)
    assert plan.geometry(128, sm, PLAN_THROUGHPUT) == (1, 128)
    assert plan.geometry(129, sm, PLAN_THROUGHPUT) == (2, 128)
    assert plan.geometry(10**9, sm, PLAN_THROUGHPUT) == (sm * 2048 // 128, 128)  # capped; the kernel loops


def test_dispatch_plan_is_a_pure_function_of_the_shape_and_dtype() -> None:
    base = PRESETS["deepseek-v3"]
    plan = dispatch_plan(base, torch.bfloat16)
    dispatch_plan.cache_clear()
    assert dispatch_plan(base, torch.bfloat16) == plan
    # Runtime arguments never change the kernel.
    for change in (
        {"renormalize": False},
        {"num_fused_shared_experts": 0},
        {"num_fused_shared_experts": 5, "shared_expert_mode": "replica"},
        {"apply_routed_scaling_factor_on_output": True},
        {"routed_scaling_factor": 7.0},
    ):
        assert dispatch_plan(base.replace(**change), torch.bfloat16) == plan, change
    # Anything off the table runs the generic kernel.
    assert dispatch_plan(base.replace(topk=9), torch.bfloat16).specialization is None
    assert dispatch_plan(base.replace(scoring_func="softmax"), torch.bfloat16).specialization is None
    assert dispatch_plan(base, torch.float32) != plan


def test_generic_plan_sizes_shared_memory() -> None:
    config = RoutingConfig(num_experts=MAX_EXPERTS, topk=8, num_expert_group=MAX_EXPERTS, topk_group=8)
    plan = generic_plan(config, torch.float32)
    assert plan.shared_mem_bytes == plan.warps_per_block * 2 * MAX_EXPERTS * 4 <= 48 * 1024


def test_more_experts_than_supported_raise() -> None:
    config = RoutingConfig(num_experts=MAX_EXPERTS + 1, topk=8)
    with pytest.raises(ValueError, match=rf"num_experts={MAX_EXPERTS + 1}.*<= {MAX_EXPERTS}"):
        dispatch_plan(config, torch.float32)


def test_grid_is_capped_and_never_empty() -> None:
    plan = KernelPlan("k", None, warps_per_block=8, shared_mem_bytes=0)
    assert plan.block == 256
    assert plan.grid(0, 132) == 1
    assert plan.grid(1, 132) == 1
    assert plan.grid(4096, 132) == 512
    assert plan.grid(2**24, 132) == 132 * 8  # capped: the kernel loops over rows
    assert plan.grid(2**40, 132) == 132 * 8
    with pytest.raises(ValueError):
        plan.grid(-1, 132)


# ---- the launcher on CPU -----------------------------------------------------------------------------
def _errors_of(fn, *args):
    try:
        fn(*args)
    except (TypeError, ValueError) as error:
        return type(error), str(error)
    return None


BAD_INPUTS = {
    "config not a RoutingConfig": lambda: (torch.zeros(2, 8), None, {"num_experts": 8}),
    "scores not a tensor": lambda: ([[0.0] * 8], None, PRESETS["mixtral-8x7b"]),
    "scores float64": lambda: (torch.zeros(2, 8, dtype=torch.float64), None, PRESETS["mixtral-8x7b"]),
    "scores 1-D": lambda: (torch.zeros(8), None, PRESETS["mixtral-8x7b"]),
    "scores wrong E": lambda: (torch.zeros(2, 9), None, PRESETS["mixtral-8x7b"]),
    "scores column-strided": lambda: (torch.zeros(8, 2).t(), None, PRESETS["mixtral-8x7b"]),
    "bias wrong shape": lambda: (torch.zeros(2, 8), torch.zeros(9), PRESETS["mixtral-8x7b"]),
    "bias int": lambda: (torch.zeros(2, 8), torch.zeros(8, dtype=torch.int32), PRESETS["mixtral-8x7b"]),
    "bias not a tensor": lambda: (torch.zeros(2, 8), [0.0] * 8, PRESETS["mixtral-8x7b"]),
    "bias strided": lambda: (torch.zeros(2, 8), torch.zeros(16)[::2], PRESETS["mixtral-8x7b"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_raise_the_reference_errors(case: str) -> None:
    args = BAD_INPUTS[case]()
    expected = _errors_of(check_inputs, *args)
    assert expected is not None, f"{case}: the reference accepts it"
    assert _errors_of(route, *args) == expected


def test_cpu_tensors_raise_type_error_naming_scores() -> None:
    scores = torch.randn(4, 256)
    with pytest.raises(TypeError, match=r"scores\.device=cpu.*CUDA"):
        route(scores, torch.zeros(256), PRESETS["deepseek-v3"])
    with pytest.raises(TypeError, match=r"scores\.device=cpu"):
        route(scores[:0], None, PRESETS["deepseek-v3"])  # even with nothing to compute


def test_build_route_checks_defines_and_caches() -> None:
    assert build_route() is route
    bugged = build_route(("MOEGATE_PLANT_REVIEW_BUG",))
    assert bugged is build_route(["MOEGATE_PLANT_REVIEW_BUG"])
    assert bugged is not route
    with pytest.raises(ValueError, match="only reads"):
        build_route(("SOMETHING_ELSE",))
    with pytest.raises(TypeError):
        build_route("MOEGATE_PLANT_REVIEW_BUG")
    with pytest.raises(TypeError, match=r"scores\.device=cpu"):
        bugged(torch.zeros(2, 8), None, PRESETS["mixtral-8x7b"])


def test_import_needs_no_cupy() -> None:
    code = (
        "import sys; sys.modules['cupy'] = None  # any 'import cupy' now fails\n"
        "import torch\n"
        "import moegate.optimized as o\n"
        "from moegate.reference import PRESETS\n"
        "print(o.dispatch_plan(PRESETS['deepseek-v3'], torch.bfloat16).name_expression)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "route_warp_kernel<1, 0, 256, 8, 4, 8, 0>" in result.stdout


def test_selection_plan_is_latency_up_to_one_block_per_sm() -> None:

    plan = dispatch_plan(PRESETS["deepseek-v3"], torch.bfloat16)
    rows_per_block = plan.warps_per_block  # one warp per row
    for sm_count in (1, 78, 132):
        assert plan.selection_plan(1, sm_count) == PLAN_LATENCY
        assert plan.selection_plan(sm_count * rows_per_block, sm_count) == PLAN_LATENCY
        assert plan.selection_plan(sm_count * rows_per_block + 1, sm_count) == PLAN_THROUGHPUT
        first_bound = BOUND_MIN_BLOCKS_PER_SM * sm_count * rows_per_block  # full blocks of one row a warp
        assert plan.selection_plan(first_bound - rows_per_block, sm_count) == PLAN_THROUGHPUT
        assert plan.selection_plan(first_bound - rows_per_block + 1, sm_count) == PLAN_BOUND
        assert plan.selection_plan(first_bound, sm_count) == PLAN_BOUND
        assert plan.selection_plan(10**12, sm_count) == PLAN_BOUND
    # A row without a bound plan stays in the throughput plan at every T past the latency plan's.
    kimi = dispatch_plan(PRESETS["kimi-k2"], torch.bfloat16)
    assert kimi.bound_name_expression is None
    assert kimi.selection_plan(10**12, 132) == PLAN_THROUGHPUT
    assert kimi.kernel_name(PLAN_BOUND) == kimi.name_expression
    with pytest.raises(ValueError, match="sm_count=0"):
        plan.selection_plan(1, 0)


def test_segment_rows_switch_to_their_bound_plan_at_their_own_threshold() -> None:
    # The segment kernel's bound plan pays later than the warp kernel's (docs/perf.md, sessions 14, 15): from
    # SEGMENT_BOUND_MIN_BLOCKS_PER_SM blocks of 8 rows per SM, not BOUND_MIN_BLOCKS_PER_SM.
    assert SEGMENT_BOUND_MIN_BLOCKS_PER_SM > BOUND_MIN_BLOCKS_PER_SM
    # Moonlight's sigmoid proof in every dtype, Qwen3-MoE's and DeepSeek-V2-Lite's lazy named keys in
    # float32.
    for name, dtype in (
        ("moonlight-16b-a3b", torch.bfloat16),
        ("qwen3-moe", torch.float32),
        ("deepseek-v2-lite", torch.float32),
    ):
        plan = dispatch_plan(PRESETS[name], dtype)
        rows_per_block = plan.warps_per_block
        for sm_count in (1, 78, 132):
            assert plan.selection_plan(sm_count * rows_per_block, sm_count) == PLAN_LATENCY
            assert plan.selection_plan(sm_count * rows_per_block + 1, sm_count) == PLAN_THROUGHPUT
            warp_kernels_first = BOUND_MIN_BLOCKS_PER_SM * sm_count * rows_per_block
            assert plan.selection_plan(warp_kernels_first, sm_count) == PLAN_THROUGHPUT
            first_bound = SEGMENT_BOUND_MIN_BLOCKS_PER_SM * sm_count * rows_per_block
            assert plan.selection_plan(first_bound - rows_per_block, sm_count) == PLAN_THROUGHPUT
            assert plan.selection_plan(first_bound - rows_per_block + 1, sm_count) == PLAN_BOUND
            assert plan.selection_plan(10**12, sm_count) == PLAN_BOUND
    # Llama-4 (K = 1), the 16-bit softmax segment rows and GLM-4.5-Air (E = 128: named keys were faster)
    # have none, nor gpt-oss (K = 4) in float32.
    for name, dtype in (
        *((name, torch.bfloat16) for name in ("llama-4-maverick", "qwen3-moe", "deepseek-v2")),
        *((name, torch.bfloat16) for name in ("deepseek-v2-lite", "glm-4.5-air", "gpt-oss-120b")),
        ("gpt-oss-120b", torch.float32),
    ):
        plan = dispatch_plan(PRESETS[name], dtype)
        assert plan.bound_name_expression is None, (name, dtype)
        assert plan.selection_plan(10**12, 132) == PLAN_THROUGHPUT


def test_latency_geometry_spreads_rows_over_the_sms() -> None:

    plan = dispatch_plan(PRESETS["deepseek-v3"], torch.bfloat16)
    sm = 132
    assert plan.geometry(1, sm, PLAN_LATENCY) == (1, 32)
    assert plan.geometry(132, sm, PLAN_LATENCY) == (132, 32)  # one warp per SM
    assert plan.geometry(133, sm, PLAN_LATENCY) == (67, 64)
    assert plan.geometry(1056, sm, PLAN_LATENCY) == (132, 256)
    for rows in (1, 7, 133, 500, 1056, 5000):  # every row gets a warp, no block is empty
        blocks, threads = plan.geometry(rows, sm, PLAN_LATENCY)
        warps = threads // 32
        assert 1 <= warps <= plan.warps_per_block and blocks * warps >= rows > (blocks - 1) * warps
    assert plan.geometry(5000, sm, PLAN_THROUGHPUT) == (plan.grid(5000, sm), plan.block)
    generic = generic_plan(RoutingConfig(num_experts=8, topk=2), torch.float32)
    assert generic.geometry(1, sm, PLAN_LATENCY) == (1, generic.block)  # the generic kernel: one shape
