"""Which kernel a call uses: the dispatch table (data) and `dispatch_plan(config, dtype) -> KernelPlan`.

Pure Python: no GPU, no CuPy. The compiled name expressions (`name_expressions()`) are generated from
`SPECIALIZATIONS` and `SCORE_DTYPE_CODES`, so a specialization exists in exactly one place, and a test
checks that every one of them is reached by a preset.

Kernels (optimized/kernels/route.cu):
    route_warp_kernel<DT, SCORING, E, G, KG, K, PLAN>: one warp per row, the row in registers; the
        scoring function, E, G, Kg and K are compile-time constants; each table row is compiled once per
        step-5 plan (PLAN: PLAN_THROUGHPUT, PLAN_LATENCY, and PLAN_BOUND where `bound_plan_applies`), and
        the dispatch picks the plan from T (`KernelPlan.selection_plan`).
    route_thread_kernel<DT, SCORING, E, K>: one thread per row, the whole row in its registers, for the
        table rows with E <= 32 and no groups (kernel="thread"); one plan.
    route_segment_kernel<DT, SCORING, E, G, KG, K, L, PLAN>: one row per aligned segment of L lanes (32 / L
        rows per warp), for table rows with E / L <= 32 experts per lane and each group on whole lanes
        (kernel="segment", lanes=L): their throughput plan, and their bound plan where
        `segment_bound_plan_applies` (sigmoid) or `lazy_named_plan_applies` (softmax; per dtype); their
        latency plan is route_warp_kernel's. Where `named_keys_apply`, the throughput plan selects by keys
        that name their expert (route.cu: select_by_named_keys), and the lazy bound plan selects so on the
        softmax numerators.
    route_generic_kernel<DT>: one warp per row, the row's keys in shared memory; any E <= MAX_EXPERTS.
DT is the scores' dtype code (`SCORE_DTYPE_CODES`), SCORING the scoring function's (`SCORING_CODES`).
Everything else (renormalize, S, shared mode, output scaling, r, bias dtype; and for the generic kernel
the scoring function and the shape) is a runtime argument.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

from moegate.reference import RoutingConfig

# The largest E the generic kernel takes: its shared memory is 4 warps * (E + G) * 4 bytes <= 32 KiB,
# under the 48 KiB a block gets without opting in.
MAX_EXPERTS = 1024

WARP_SIZE = 32

# The kernels' template parameter DT (route.cu: enum ScoreDtype).
SCORE_DTYPE_CODES: dict[torch.dtype, int] = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}
# The specialized kernel's template parameter SCORING and both kernels' runtime argument `scoring`
# (route.cu: enum ScoringFunc).
SCORING_CODES: dict[str, int] = {"sigmoid": 0, "softmax": 1}
# The kernels' runtime argument bias_dtype (route.cu: enum BiasDtype); None = no bias.
BIAS_DTYPE_CODES: dict[torch.dtype | None, int] = {
    None: 0,
    torch.float32: 1,
    torch.bfloat16: 2,
    torch.float16: 3,
}


@dataclass(frozen=True)
class Specialization:
    """A routing shape compiled with the scoring function, E, G, Kg, K as constants.

    kernel "warp" (`route_warp_kernel`, one warp per row, two plans, three with the bound plan:
    `has_bound_plan(dtype)`); constraints (route.cu's static_asserts): E % 32 == 0; G == 1, or each group
    spans a power-of-two number of whole lanes ((E / G) % (E / 32) == 0); K <= 32.
    kernel "thread" (`route_thread_kernel`, one thread per row, for small E): E <= 32, G == Kg == 1,
    K <= E.
    kernel "segment" (`route_segment_kernel`, one row per L = `lanes` lanes, in the throughput plan; the
    latency plan is the warp kernel's, so the warp kernel's constraints hold too): L in SEGMENT_LANES,
    E % 32 == 0, E / L <= 32; G == 1, or each group spans a power-of-two number of whole segment lanes
    ((E / G) % (E / L) == 0). Other kinds take lanes = 0.
    """

    name: str  # the presets it serves, for humans
    scoring_func: str
    num_experts: int
    num_expert_group: int
    topk_group: int
    topk: int
    kernel: str = "warp"
    lanes: int = 0  # L of a "segment" row: lanes per row

    def __post_init__(self) -> None:
        if self.kernel not in KERNEL_KINDS:
            raise ValueError(f"kernel={self.kernel!r}, but a table row's kernel is one of {KERNEL_KINDS}")
        if self.kernel == "segment":
            if self.lanes not in SEGMENT_LANES:
                raise ValueError(
                    f"lanes={self.lanes} for kernel='segment', but a segment is one of {SEGMENT_LANES} lanes"
                )
            per_lane = self.num_experts // self.lanes
            per_group = self.num_experts // self.num_expert_group
            group_lanes = per_group // per_lane if per_lane else 0
            groups_ok = self.num_expert_group == 1 or (
                per_lane > 0
                and per_group % per_lane == 0
                and group_lanes & (group_lanes - 1) == 0
                and group_lanes <= self.lanes
            )
            if not (self.num_experts % WARP_SIZE == 0 and 1 <= per_lane <= 32 and groups_ok):
                raise ValueError(
                    f"kernel='segment' with (E, G, Kg, K) = {self.key[1:]} and lanes={self.lanes}, but the "
                    f"row-per-segment kernel takes E % 32 == 0, E / lanes <= 32, and G == 1 or groups of "
                    f"a power-of-two number of whole lanes ((E / G) % (E / lanes) == 0)"
                )
        elif self.lanes != 0:
            raise ValueError(
                f"lanes={self.lanes} for kernel={self.kernel!r}, but only a 'segment' row has lanes"
            )

    def has_bound_plan(self, dtype: torch.dtype) -> bool:
        """Whether this row has a bound-plan kernel for scores of `dtype`: a warp-kernel row that
        `bound_plan_applies` admits, or a segment-kernel row that `segment_bound_plan_applies` or
        `lazy_named_plan_applies` admits."""
        if self.kernel == "segment":
            return segment_bound_plan_applies(*self.key, self.lanes) or lazy_named_plan_applies(
                *self.key, self.lanes, dtype
            )
        return self.kernel == "warp" and bound_plan_applies(*self.key)

    @property
    def has_named_keys(self) -> bool:
        """Whether this row's throughput plan selects by keys that name their expert: a segment-kernel row
        that `named_keys_apply` admits."""
        return self.kernel == "segment" and named_keys_apply(*self.key, self.lanes)

    @property
    def key(self) -> tuple[str, int, int, int, int]:
        """What dispatch matches: (scoring_func, E, G, Kg, K)."""
        return (self.scoring_func, self.num_experts, self.num_expert_group, self.topk_group, self.topk)

    def config(self, **fields: Any) -> RoutingConfig:
        """A RoutingConfig of this shape (scoring, E, G, Kg, K); `fields` set the others (S, r, modes...)."""
        return RoutingConfig(
            scoring_func=self.scoring_func,
            num_experts=self.num_experts,
            num_expert_group=self.num_expert_group,
            topk_group=self.topk_group,
            topk=self.topk,
            **fields,
        )


# The sorted keys a lane keeps for the bound plan's rounds (route.cu: kBoundDepth).
BOUND_DEPTH = 4


def bound_plan_applies(
    scoring_func: str, num_experts: int, num_groups: int, topk_group: int, topk: int
) -> bool:
    """route.cu's bound_plan_applies, the same rule: sigmoid; E % 32 == 0 and E <= 256 (an expert is named by
    one byte); at least two experts a lane (C = E / 32); and the kept groups' lanes (all 32 without
    groups) hold K + 1 keys or more among their first min(C, 4) sorted ones (the K rounds and the next key).
    """
    per_lane = num_experts // WARP_SIZE
    if scoring_func != "sigmoid" or num_experts % WARP_SIZE or num_experts > 256 or per_lane < 2:
        return False
    depth = min(per_lane, BOUND_DEPTH)
    lanes = topk_group * ((num_experts // num_groups) // per_lane) if topk_group < num_groups else WARP_SIZE
    return lanes * depth >= topk + 1


def segment_bound_plan_applies(
    scoring_func: str, num_experts: int, num_groups: int, topk_group: int, topk: int, lanes: int
) -> bool:
    """route.cu's segment_bound_plan_applies, the same rule: the bound plan inside a segment of `lanes` lanes
    (route_segment_row_bound) takes sigmoid rows without groups, E % 32 == 0, 2 to 8 experts a lane, and one
    slot per lane (1 < K <= lanes): its K + 1 rounds then always find K + 1 keys among the lanes' first
    min(E / lanes, K + 1) sorted ones; and E <= 64: at E = 128 the throughput plan's named keys were
    faster (docs/perf.md, session 16)."""
    per_lane = num_experts // lanes if lanes > 0 else 0
    return (
        scoring_func == "sigmoid"
        and num_groups == 1
        and topk_group == 1
        and num_experts % WARP_SIZE == 0
        and num_experts <= 64
        and 2 <= per_lane <= 8
        and 1 < topk <= lanes
    )


def named_keys_apply(
    scoring_func: str, num_experts: int, num_groups: int, topk_group: int, topk: int, lanes: int
) -> bool:
    """route.cu's named_keys_apply, the same rule: a segment kernel's throughput plan selects by keys that
    name their expert (select_by_named_keys: the exact key's low b bits replaced by 2^b - 1 - e, E <= 2^b,
    the result proved exact or the warp's rows selected again exactly) where E % 32 == 0 and E <= 256 (one
    byte names an expert), at most 10 experts a lane (DeepSeek-V2's 10 measured, docs/perf.md session 17),
    and one slot per lane (1 < K <= lanes). Groups are ranked on the exact keys before the keys are named
    (a dropped group's keys are no candidates)."""
    per_lane = num_experts // lanes if lanes > 0 else 0
    return (
        scoring_func in ("sigmoid", "softmax")
        and 1 <= topk_group <= num_groups
        and num_experts % WARP_SIZE == 0
        and num_experts <= 256
        and 1 <= per_lane <= 10
        and 1 < topk <= lanes
    )


def lazy_named_plan_applies(
    scoring_func: str,
    num_experts: int,
    num_groups: int,
    topk_group: int,
    topk: int,
    lanes: int,
    dtype: torch.dtype,
) -> bool:
    """route.cu's lazy_named_plan_applies, the same rule: a segment row's bound plan is the throughput plan's
    named keys taken on the softmax numerators expf(x - rowmax), dividing only what the selection needs
    (kLazyNamed), for softmax rows that `named_keys_apply` admits without groups, with float32 logits at
    K > 4. Measured on an H200 against the throughput plan (docs/perf.md, sessions 20 to 23): faster from
    T = 65536 on for float32 Qwen3-MoE and DeepSeek-V2-Lite (0.97x to 0.99x), not for 16-bit Qwen3-MoE or
    DeepSeek-V2-Lite, nor DeepSeek-V2 (groups). gpt-oss (K = 4), in the rule until session 23, lost once
    step 2 named the throughput plan's keys: 1.02x in float32 and 1.05x in bf16 at T = 262144."""
    return (
        scoring_func == "softmax"
        and num_groups == 1
        and topk_group == 1
        and named_keys_apply(scoring_func, num_experts, num_groups, topk_group, topk, lanes)
        and dtype == torch.float32
        and topk > 4
    )


# The kernel kinds a table row can name (Specialization.kernel).
KERNEL_KINDS: tuple[str, ...] = ("warp", "thread", "segment")
# The segment sizes route_segment_kernel takes (route.cu's static_assert).
SEGMENT_LANES: tuple[int, ...] = (2, 4, 8, 16)

# The dispatch table. Each row is compiled for each scores dtype.
SPECIALIZATIONS: tuple[Specialization, ...] = (
    Specialization("deepseek-v3", "sigmoid", num_experts=256, num_expert_group=8, topk_group=4, topk=8),
    Specialization("kimi-k2", "sigmoid", num_experts=384, num_expert_group=1, topk_group=1, topk=8),
    Specialization(
        "qwen3-moe",
        "softmax",
        num_experts=128,
        num_expert_group=1,
        topk_group=1,
        topk=8,
        kernel="segment",
        lanes=16,
    ),
    Specialization("glm-4.5", "sigmoid", num_experts=160, num_expert_group=1, topk_group=1, topk=8),
    Specialization(
        "qwen3-next-80b-a3b", "softmax", num_experts=512, num_expert_group=1, topk_group=1, topk=10
    ),
    # The rows with E <= 128 and no groups, and DeepSeek-V2 (8 groups of 20 experts, each on 2 of 16 lanes),
    # route a row per segment of `lanes` lanes in the throughput plan (tools/segment_probe.py on an H200,
    # docs/perf.md sessions 8 and 9: at T = 262144, 0.52x the warp kernel's time at E = 64 with 8 lanes,
    # 0.58x to 0.95x at E = 128 with 16; with 4 or 2 lanes, 16 or 32 experts per lane, local memory made it
    # 3 to 8x slower).
    Specialization(
        "deepseek-v2",
        "softmax",
        num_experts=160,
        num_expert_group=8,
        topk_group=3,
        topk=6,
        kernel="segment",
        lanes=16,
    ),
    Specialization(
        "deepseek-v2-lite",
        "softmax",
        num_experts=64,
        num_expert_group=1,
        topk_group=1,
        topk=6,
        kernel="segment",
        lanes=8,
    ),
    Specialization(
        "moonlight-16b-a3b",
        "sigmoid",
        num_experts=64,
        num_expert_group=1,
        topk_group=1,
        topk=6,
        kernel="segment",
        lanes=8,
    ),
    Specialization(
        "glm-4.5-air",
        "sigmoid",
        num_experts=128,
        num_expert_group=1,
        topk_group=1,
        topk=8,
        kernel="segment",
        lanes=16,
    ),
    Specialization(
        "gpt-oss-120b",
        "softmax",
        num_experts=128,
        num_expert_group=1,
        topk_group=1,
        topk=4,
        kernel="segment",
        lanes=16,
    ),
    Specialization(
        "llama-4-maverick",
        "sigmoid",
        num_experts=128,
        num_expert_group=1,
        topk_group=1,
        topk=1,
        kernel="segment",
        lanes=16,
    ),
    Specialization(
        "mixtral-8x7b", "softmax", num_experts=8, num_expert_group=1, topk_group=1, topk=2, kernel="thread"
    ),
)
_BY_KEY: dict[tuple[str, int, int, int, int], Specialization] = {s.key: s for s in SPECIALIZATIONS}

# Launch geometry of each kernel kind (block size matches the kernels' __launch_bounds__).
SPECIALIZED_WARPS_PER_BLOCK = 8
THREAD_WARPS_PER_BLOCK = 4  # route.cu: kThreadKernelBlock = 128 threads
GENERIC_WARPS_PER_BLOCK = 4
# Grid cap: enough resident warps to fill an SM (2048 threads), times the SM count; warps then loop. A warp
# or segment kernel whose registers let fewer blocks reside than that, in a number that does not divide it,
# loops in one wave of its resident blocks instead (KernelPlan.cap_blocks_per_sm).
MAX_THREADS_PER_SM = 2048
# A looping grid of a warp or segment kernel (KernelPlan.loops_at_resident_blocks) whose cap is a full SM's
# threads (its resident blocks run in whole waves) takes the smallest whole multiple of its cap that leaves
# each block at most this many rows (KernelPlan.grid): at large T more blocks, each with fewer rows, so that
# the block scheduler evens out the SMs' ends. Measured on an H200 (docs/perf.md, session 25), caps 3 to 24
# per SM on every looping kernel the dispatch runs at T = 131072 and 262144: the kernels with 4 resident
# (warp and segment, throughput and bound) take 0.976x to 1.000x the cap's time at 262144 with this rule (16
# per SM, 124 rows a block), within 0.6% of their best cap; at 131072 the rule keeps the cap (124 rows a
# block), where 16 per SM went 0.987x to 1.029x by kernel, and at 65536 (session 24) 1.005x to 1.10x. A
# kernel capped at its resident blocks (one wave of 3) stays at its cap: Moonlight's bound kernel took
# 1.097x its one wave's time at 18 per SM, DeepSeek-V3's 1.007x (Qwen3-Next's 0.968x). 0: the grid stays
# at the cap.
LOOP_BLOCK_ROWS = 128

# Step 5's plans in the warp-per-row specialized kernel (route.cu: enum SelectionPlan, template parameter
# PLAN); launches pass the chosen plan in the kernels' argument `plan` too (the latency kernel follows it).
PLAN_THROUGHPUT = 0
PLAN_LATENCY = 1
# The bound plan (route.cu: select_row_bound, finish_rows_bound; PLAN = 2): approximate keys, exact keys
# for the winners and a proof per row, for the largest batches of the rows bound_plan_applies admits. It is
# taken from BOUND_MIN_BLOCKS_PER_SM full blocks per SM on: measured on an H200 (docs/perf.md, session 12),
# DeepSeek-V3 took 1.36x the throughput plan's time at T = 4096 (8 blocks of 8 rows per SM: each warp routes
# one row, and the bound plan's per-warp constants and longer chain show), 0.98x at 16384 and 0.85x at 65536.
PLAN_BOUND = 2
BOUND_MIN_BLOCKS_PER_SM = 16
# The segment kernel's bound plan (route_segment_row_bound, or the lazy named keys; PLAN = 2) from this many
# blocks of 8 warps' rows (T / 8) per SM on: measured on an H200 against the segment kernel's throughput
# plan, each in the grid the dispatch gives it (docs/perf.md, session 15: the bound kernels, 3 resident
# blocks per SM, capped at 3), GLM-4.5-Air / Moonlight took 1.06x / 1.21x at T = 16384, 0.95x / 0.99x at
# 32768, 0.92x / 0.91x at 49152 and 0.90x / 0.91x at 65536 (the proof's per-row constants cost below that);
# the lazy named keys of float32 Qwen3-MoE / DeepSeek-V2-Lite (session 23) 0.99x / 0.98x at 33792.
SEGMENT_BOUND_MIN_BLOCKS_PER_SM = 32


def loop_cap_multiple(num_rows: int, sm_count: int, cap: int, block_rows: int) -> int:
    """The smallest m >= 1 such that `sm_count * cap * m` blocks leave each block at most `block_rows` of
    `num_rows` rows (1 where `block_rows` is 0: the grid stays at the cap)."""
    if num_rows < 0 or sm_count < 1 or cap < 1 or block_rows < 0:  # launcher bug, not user input
        raise ValueError(
            f"num_rows={num_rows}, sm_count={sm_count}, cap={cap}, block_rows={block_rows}, but need "
            f"num_rows >= 0, sm_count >= 1, cap >= 1 and block_rows >= 0"
        )
    if block_rows == 0:
        return 1
    per_sm = -(-num_rows // (block_rows * sm_count))  # blocks per SM that leave at most block_rows rows each
    return max(1, -(-per_sm // cap))


def grid_cap_blocks_per_sm(block: int, resident_blocks_per_sm: int = 0) -> int:
    """Blocks per SM of a grid whose blocks loop over rows (more blocks wanted than a full SM's threads'
    worth on every SM: `KernelPlan.grid`), for a kernel of `block` threads of which the driver lets
    `resident_blocks_per_sm` reside (0: unknown).

    A full SM's threads (MAX_THREADS_PER_SM // block blocks) where the resident blocks divide that (the
    blocks then run in whole waves) or are unknown; otherwise the resident blocks, one wave that loops: a
    cap of 8 blocks on a kernel with 3 resident runs 2 full waves and a third two thirds full. Measured on
    an H200 (docs/perf.md, sessions 14 and 15): the kernels with 3 resident (the segment bound kernels at 72
    and 80 registers, Qwen3-Next's throughput kernel) took 0.89x to 1.00x the time capped at 3 instead of
    8 where their blocks loop; a cap of 4 on them, or of 3 or 6 on a kernel with 4 resident, up to 1.36x.
    """
    if block < 1 or block > MAX_THREADS_PER_SM or resident_blocks_per_sm < 0:  # launcher bug, not user input
        raise ValueError(
            f"block={block}, resident_blocks_per_sm={resident_blocks_per_sm}, but need 1 <= block <= "
            f"{MAX_THREADS_PER_SM} and resident_blocks_per_sm >= 0"
        )
    full = MAX_THREADS_PER_SM // block
    if 0 < resident_blocks_per_sm < full and full % resident_blocks_per_sm != 0:
        return resident_blocks_per_sm
    return full


@dataclass(frozen=True)
class KernelPlan:
    """How one call is launched.

    name_expression: the kernel's C++ name expression, as compiled (`name_expressions()`); for a table
        row with two plans, the throughput plan's kernel.
    specialization: the table row's name, or None for the generic kernel.
    warps_per_block: block = 32 * warps_per_block threads.
    shared_mem_bytes: dynamic shared memory per block (0 for the specialized kernels).
    latency_name_expression: the latency plan's kernel, or None where one kernel serves every T.
    bound_name_expression: the bound plan's kernel, or None where the bound plan does not apply.
    rows_per_warp: rows a warp routes at a time in the throughput plan (1; 32 / L for the row-per-segment
        kernel; 32 for the row-per-thread kernel).
    bound_min_blocks_per_sm: the bound plan is taken from this many blocks (of warps_per_block rows) per SM
        on (BOUND_MIN_BLOCKS_PER_SM for a warp-kernel row, SEGMENT_BOUND_MIN_BLOCKS_PER_SM for a segment
        row).
    loops_at_resident_blocks: where its blocks loop, the grid takes `grid_cap_blocks_per_sm` of the
        kernel's resident blocks, else a full SM's threads (`cap_blocks_per_sm`). True for the warp and
        segment kernels, where it was measured to pay (docs/perf.md, session 15); False for the
        row-per-thread kernel (Mixtral, 12 resident blocks of 128 threads: 1.03x at T = 2^20 on an H200)
        and the generic kernel (not measured).
    """

    name_expression: str
    specialization: str | None
    warps_per_block: int
    shared_mem_bytes: int
    latency_name_expression: str | None = None
    rows_per_warp: int = 1
    bound_name_expression: str | None = None
    bound_min_blocks_per_sm: int = BOUND_MIN_BLOCKS_PER_SM
    loops_at_resident_blocks: bool = False

    def cap_blocks_per_sm(self, resident_blocks_per_sm: int = 0) -> int:
        """Blocks per SM of a grid whose blocks loop: `grid_cap_blocks_per_sm(block, resident_blocks_per_sm)`
        where `loops_at_resident_blocks`, else a full SM's threads."""
        if self.loops_at_resident_blocks:
            return grid_cap_blocks_per_sm(self.block, resident_blocks_per_sm)
        return grid_cap_blocks_per_sm(self.block, 0)

    @property
    def loop_block_rows(self) -> int:
        """LOOP_BLOCK_ROWS where `loops_at_resident_blocks` (the warp and segment kernels, where it was
        measured), else 0: the most rows a block of a looping grid takes before the grid grows, where the
        grid's cap is a full SM's threads (`grid`)."""
        return LOOP_BLOCK_ROWS if self.loops_at_resident_blocks else 0

    def kernel_name(self, selection: int) -> str:
        """The name expression of the kernel that runs step 5's plan `selection` (the throughput plan's
        where the row has no kernel of its own for that plan)."""
        if selection == PLAN_LATENCY and self.latency_name_expression is not None:
            return self.latency_name_expression
        if selection == PLAN_BOUND and self.bound_name_expression is not None:
            return self.bound_name_expression
        return self.name_expression

    @property
    def block(self) -> int:
        """Threads per block."""
        return WARP_SIZE * self.warps_per_block

    def grid(self, num_rows: int, sm_count: int, resident_blocks_per_sm: int = 0) -> int:
        """Blocks for `num_rows` rows: `rows_per_warp` rows per warp, one block per `warps_per_block`
        warps' rows while that fits a full SM's threads on every SM (the hardware then runs the blocks in
        waves as they finish); beyond, `sm_count` times `cap_blocks_per_sm(resident_blocks_per_sm)`
        blocks that loop over the rows with a 64-bit stride, so any T fits, times the smallest whole
        multiple that leaves each block at most `loop_block_rows` rows (`loop_cap_multiple`; 1 until the
        rows outgrow that many a block of the capped grid) where the cap is a full SM's threads, the
        resident blocks' whole waves (a cap of one wave of the resident blocks stays: LOOP_BLOCK_ROWS's
        measurements). resident_blocks_per_sm: the driver's count for the kernel that runs, 0 if unknown.
        (A cap of the resident blocks where the blocks would not loop, measured on an H200 in session 15:
        Mixtral's row-per-thread kernel 1.08x at T = 262144, Qwen3-Next 1.04x at 4096.)"""
        if num_rows < 0 or sm_count < 1:  # launcher bug, not user input
            raise ValueError(
                f"num_rows={num_rows}, sm_count={sm_count}, but need num_rows >= 0 and sm_count >= 1"
            )
        wanted = -(-num_rows // (self.warps_per_block * self.rows_per_warp))
        if wanted <= sm_count * (MAX_THREADS_PER_SM // self.block):
            return max(1, wanted)
        cap = self.cap_blocks_per_sm(resident_blocks_per_sm)
        block_rows = self.loop_block_rows if cap == MAX_THREADS_PER_SM // self.block else 0
        return sm_count * cap * loop_cap_multiple(num_rows, sm_count, cap, block_rows)

    def geometry(
        self, num_rows: int, sm_count: int, selection: int, resident_blocks_per_sm: int = 0
    ) -> tuple[int, int]:
        """(blocks, threads per block) for `num_rows` rows in step 5's plan `selection`;
        resident_blocks_per_sm: the driver's count for that plan's kernel at `block` threads (0 if unknown).

        A table row with two plans spreads its warps over the SMs first: warps per block = ceil(warps
        needed / SM count), at most `warps_per_block`, where a warp takes one row in the latency plan and
        `rows_per_warp` rows in the throughput plan. In the latency plan (up to one row per SM) each row
        then has an SM (and its four schedulers) to itself, so a row's instructions never wait for
        another row's issue slots; in the throughput plan of a row-per-segment kernel (8 or 2 rows per
        warp) a batch of a few thousand rows reaches every SM instead of a quarter of them (measured on an
        H200, docs/perf.md session 8). Once a full block per SM is needed, and everywhere else:
        `grid(num_rows, sm_count, resident_blocks_per_sm)` blocks of `block` threads.
        """
        if self.latency_name_expression is not None:
            rows_per_warp = 1 if selection == PLAN_LATENCY else self.rows_per_warp
            warps_needed = -(-num_rows // rows_per_warp)
            warps = min(self.warps_per_block, max(1, -(-warps_needed // max(1, sm_count))))
            if selection == PLAN_LATENCY or warps < self.warps_per_block:
                return max(1, -(-warps_needed // warps)), WARP_SIZE * warps
        return self.grid(num_rows, sm_count, resident_blocks_per_sm), self.block

    def selection_plan(self, num_rows: int, sm_count: int) -> int:
        """Step 5's plan for `num_rows` rows (the kernel's `plan` argument): PLAN_LATENCY while the grid
        has at most one block per SM (each scheduler runs two warps or fewer, so a call lasts one row's
        dependency chain and nothing hides it), PLAN_THROUGHPUT beyond (enough warps per scheduler to
        hide latency, so a call lasts the instructions it issues). Measured on an H200 (docs/perf.md):
        the latency plan wins up to T = 1024 and loses from T = 4096 on. Where the row has a bound plan,
        PLAN_BOUND from `bound_min_blocks_per_sm` blocks per SM on. Every plan returns bitwise the same
        output; where one kernel serves every T (the generic and the row-per-thread kernels) the plan
        changes nothing."""
        if num_rows < 0 or sm_count < 1:  # launcher bug, not user input
            raise ValueError(
                f"num_rows={num_rows}, sm_count={sm_count}, but need num_rows >= 0 and sm_count >= 1"
            )
        blocks = -(-num_rows // self.warps_per_block)
        if blocks <= sm_count:
            return PLAN_LATENCY
        if self.bound_name_expression is not None and blocks >= self.bound_min_blocks_per_sm * sm_count:
            return PLAN_BOUND
        return PLAN_THROUGHPUT


def config_arguments(config: RoutingConfig) -> tuple[int | float, ...]:
    """The kernels' per-config arguments, in their order (route.cu's signature, between bias_dtype and
    plan): (num_experts, num_groups, topk_group, topk, scoring, renormalize, num_shared, replica,
    apply_scaling, r). Both launchers pass exactly these."""
    return (
        config.num_experts,
        config.num_expert_group,
        config.topk_group,
        config.topk,
        SCORING_CODES[config.scoring_func],
        int(config.renormalize),
        config.num_fused_shared_experts,
        int(config.shared_expert_mode == "replica"),
        int(config.apply_routed_scaling_factor_on_output),
        config.routed_scaling_factor,
    )


def _dtype_code(dtype: torch.dtype) -> int:
    if dtype not in SCORE_DTYPE_CODES:
        raise TypeError(f"dtype={dtype}, but the scores' dtype must be one of {tuple(SCORE_DTYPE_CODES)}")
    return SCORE_DTYPE_CODES[dtype]


def specialized_name(spec: Specialization, dtype: torch.dtype, selection: int = PLAN_THROUGHPUT) -> str:
    """The name expression of `spec` compiled for scores of `dtype` (and, for a warp-per-row row, step 5's
    plan `selection`)."""
    scoring, e, g, kg, k = spec.key
    if spec.kernel == "thread":
        return f"moegate::route_thread_kernel<{_dtype_code(dtype)}, {SCORING_CODES[scoring]}, {e}, {k}>"
    if spec.kernel == "segment" and selection in (PLAN_THROUGHPUT, PLAN_BOUND):
        return (
            f"moegate::route_segment_kernel<{_dtype_code(dtype)}, {SCORING_CODES[scoring]}, {e}, {g}, {kg}, "
            f"{k}, {spec.lanes}, {selection}>"
        )
    return (
        f"moegate::route_warp_kernel<{_dtype_code(dtype)}, {SCORING_CODES[scoring]}, {e}, {g}, {kg}, {k}, "
        f"{selection}>"
    )


def _plans_of(spec: Specialization, dtype: torch.dtype) -> tuple[int, ...]:
    if spec.kernel == "thread":
        return (PLAN_THROUGHPUT,)
    if spec.has_bound_plan(dtype):
        return (PLAN_THROUGHPUT, PLAN_LATENCY, PLAN_BOUND)
    return (PLAN_THROUGHPUT, PLAN_LATENCY)


def generic_name(dtype: torch.dtype) -> str:
    """The name expression of the generic kernel for scores of `dtype`."""
    return f"moegate::route_generic_kernel<{_dtype_code(dtype)}>"


def name_expressions() -> list[str]:
    """Every kernel compiled into the module: each specialization (each of its plans) and the generic
    kernel, per dtype."""
    names = [
        specialized_name(spec, dtype, plan)
        for spec in SPECIALIZATIONS
        for dtype in SCORE_DTYPE_CODES
        for plan in _plans_of(spec, dtype)
    ]
    return names + [generic_name(d) for d in SCORE_DTYPE_CODES]


def _check_supported(config: RoutingConfig) -> None:
    if not isinstance(config, RoutingConfig):
        raise TypeError(f"config={config!r} ({type(config).__name__}), but config must be a RoutingConfig")
    if config.num_experts > MAX_EXPERTS:
        raise ValueError(
            f"num_experts={config.num_experts}, but moegate.optimized supports num_experts <= {MAX_EXPERTS} "
            f"(MAX_EXPERTS, the generic kernel's shared-memory budget); use moegate.reference.route"
        )


def generic_plan(config: RoutingConfig, dtype: torch.dtype) -> KernelPlan:
    """The generic kernel's plan for `config` (what `dispatch_plan` gives outside the table; tests use
    it to compare every specialization with the generic kernel)."""
    _check_supported(config)
    words_per_warp = config.num_experts + config.num_expert_group
    return KernelPlan(
        name_expression=generic_name(dtype),
        specialization=None,
        warps_per_block=GENERIC_WARPS_PER_BLOCK,
        shared_mem_bytes=GENERIC_WARPS_PER_BLOCK * words_per_warp * 4,
    )


@functools.lru_cache(maxsize=256)
def dispatch_plan(config: RoutingConfig, dtype: torch.dtype) -> KernelPlan:
    """The kernel and launch geometry a `route` call with `config` and scores of `dtype` uses.

    A pure function of (config, dtype): the table row whose (scoring_func, E, G, Kg, K) equals the
    config's, else the generic kernel. Raises ValueError for E > MAX_EXPERTS and TypeError for an
    unsupported dtype.
    """
    _check_supported(config)
    key = (config.scoring_func, config.num_experts, config.num_expert_group, config.topk_group, config.topk)
    spec = _BY_KEY.get(key)
    if spec is None:
        return generic_plan(config, dtype)
    if spec.kernel == "thread":
        return KernelPlan(
            name_expression=specialized_name(spec, dtype),
            specialization=spec.name,
            warps_per_block=THREAD_WARPS_PER_BLOCK,
            shared_mem_bytes=0,
            rows_per_warp=WARP_SIZE,
        )
    bound = specialized_name(spec, dtype, PLAN_BOUND) if spec.has_bound_plan(dtype) else None
    return KernelPlan(
        name_expression=specialized_name(spec, dtype, PLAN_THROUGHPUT),
        specialization=spec.name,
        warps_per_block=SPECIALIZED_WARPS_PER_BLOCK,
        shared_mem_bytes=0,
        latency_name_expression=specialized_name(spec, dtype, PLAN_LATENCY),
        rows_per_warp=WARP_SIZE // spec.lanes if spec.kernel == "segment" else 1,
        bound_name_expression=bound,
        bound_min_blocks_per_sm=(
            SEGMENT_BOUND_MIN_BLOCKS_PER_SM if spec.kernel == "segment" else BOUND_MIN_BLOCKS_PER_SM
        ),
        loops_at_resident_blocks=True,
    )
