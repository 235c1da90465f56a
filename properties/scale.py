"""The scale property: route one large batch, then check a sample of its rows cheaply.

Kernels break at scale in ways no small batch shows: a grid that stops growing, a row or element offset
computed in 32 bits (T * E passes 2^31 at T = 8.4 M for E = 256), a last partial block. `check_scale` calls
the implementation once on a batch of `scale_rows_for` rows, then judges a sample of them:

- the rows sampled (`sample_rows`): the first and the last; the rows around every power of two; the rows
  around every power-of-two element boundary the batch crosses, in the input (row * row stride: 2^31 and
  2^32 among them) and in the output (row * W); and a few drawn rows;
- the oracle judges the sampled rows (with their row index in the big call, which replica ids follow);
- each sampled row routed alone must give the row the big call gave (tie-aware, weights within tolerance).

Sizes: on a GPU the batch reaches past 2^32 / E rows, so every 32-bit element offset wraps, within a
memory budget (`SCALE_GPU_BYTES`, and half the free memory; an implementation that runs out of memory
there, as the eager reference does, is checked at half the rows, and so on); on the CPU it reaches past
2^21 elements, which keeps the ci profile fast and still crosses the boundaries a narrow offset type would
wrap at (the mutant panel's `row_offset_wraps` wraps at 2^20). Inputs are generated on the device, from
the example's seed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from . import differential, oracle
from .problem import RoutingProblem

if TYPE_CHECKING:
    from .peers.contract import Contract

SCALE_CPU_ELEMENTS = 2**21 + 2**12  # past 2^21 input elements on the CPU
SCALE_GPU_ELEMENTS = 2**32 + 2**16  # past 2^32 input elements on a GPU
SCALE_GPU_BYTES = 24 * 2**30  # at most this much for inputs and outputs of one call
SCALE_MAX_ROWS = 2**25
SAMPLED_RANDOM_ROWS = 12
GENERATION_CHUNK_ELEMENTS = 2**26


def scale_rows_for(config_experts: int, width: int, dtype: torch.dtype, device: torch.device) -> int:
    """T for the big call: past SCALE_GPU_ELEMENTS (CUDA) or SCALE_CPU_ELEMENTS (CPU) input elements, within
    the memory budget and SCALE_MAX_ROWS."""
    target = SCALE_GPU_ELEMENTS if device.type == "cuda" else SCALE_CPU_ELEMENTS
    rows = math.ceil(target / config_experts)
    if device.type == "cuda":
        per_row = config_experts * torch.finfo(dtype).bits // 8 + width * 8
        budget = SCALE_GPU_BYTES
        if torch.cuda.is_available():
            free, _ = torch.cuda.mem_get_info(device)
            budget = min(budget, free // 2)
        rows = min(rows, budget // per_row)
    return max(2, min(rows, SCALE_MAX_ROWS))


def sample_rows(num_rows: int, row_stride: int, width: int, seed: int) -> torch.Tensor:
    """Sorted distinct row indices [n] int64 to check in a call of `num_rows` rows (module docstring)."""
    rows = {0, num_rows - 1}
    for k in range(64):
        power = 1 << k
        if power - 1 >= num_rows:
            break
        rows.update((power - 1, power, power + 1))
    for per_row in (row_stride, width):
        for k in range(10, 64):
            first = -(-(1 << k) // per_row)  # the first row whose offset is >= 2^k elements
            if first - 1 >= num_rows:
                break
            rows.update((first - 1, first, first + 1))
    gen = torch.Generator().manual_seed(seed)
    rows.update(torch.randint(num_rows, (SAMPLED_RANDOM_ROWS,), generator=gen).tolist())
    return torch.tensor(sorted(r for r in rows if 0 <= r < num_rows), dtype=torch.int64)


def _big_scores(
    num_rows: int, experts: int, dtype: torch.dtype, device: torch.device, seed: int
) -> torch.Tensor:
    """[num_rows, experts] logits of `dtype` on `device`: rows of N(0, s^2) with s from 0.3 to 30, so that
    rows differ (a row read in place of another shows)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    scores = torch.empty((num_rows, experts), dtype=dtype, device=device)
    chunk = max(1, GENERATION_CHUNK_ELEMENTS // experts)
    for start in range(0, num_rows, chunk):
        stop = min(num_rows, start + chunk)
        block = torch.randn((stop - start, experts), generator=gen, device=device)
        scale = 0.3 * 100 ** torch.rand((stop - start, 1), generator=gen, device=device)
        scores[start:stop] = (block * scale).to(dtype)
    return scores


def check_scale(impl, problem: RoutingProblem, seed: int, contract: Contract | None = None) -> None:
    """The scale property (module docstring) on `problem`'s config, dtype, bias and device; the batch is
    generated from `seed`. Raises AssertionError with the evidence when a sampled row is wrong."""
    from .metamorphic import _call, _expected_shared_ids

    config, device, K = problem.config, problem.device, problem.config.topk
    weight_dtype = torch.float32 if contract is None else contract.weight_dtype(problem.dtype)
    num_rows = scale_rows_for(config.num_experts, config.output_width, problem.dtype, device)
    while True:
        try:
            scores = _big_scores(num_rows, config.num_experts, problem.dtype, device, seed)
            big = RoutingProblem(config, scores, problem.bias, seed=seed, note=f"scale: {num_rows} rows")
            ids, weights = _call(impl, big)
            break
        except torch.cuda.OutOfMemoryError:
            # The budget counts inputs and outputs only; an implementation that needs far more working
            # memory (the eager reference, torch.compile) is checked on the largest batch that fits.
            scores = big = None
            torch.cuda.empty_cache()
            if num_rows <= 1 << 16:
                raise
            num_rows //= 2
    where = f"scale ({num_rows} rows of {config.num_experts} experts, {str(problem.dtype)[6:]}, seed {seed})"
    shape = (num_rows, config.output_width)
    if tuple(ids.shape) != shape or tuple(weights.shape) != shape:
        raise AssertionError(f"{where}: the call returned shapes {tuple(ids.shape)}, {tuple(weights.shape)}")
    rows = sample_rows(num_rows, config.num_experts, config.output_width, seed)
    index = rows.to(device)
    bias = None if problem.bias is None else problem.bias.cpu()
    sample = RoutingProblem(config, scores[index].cpu(), bias, seed=seed, note=f"rows {_short(rows)}")
    sample_ids, sample_weights = ids[index].cpu(), weights[index].cpu()
    del big, scores, ids, weights  # the big call's memory is not needed any more
    violations = oracle.check_routing(
        sample, sample_ids, sample_weights, weight_dtype=weight_dtype, row_index=rows
    )
    if violations:
        lines = [f"{where}: SPEC violations on sampled rows (row numbers are the big call's):"]
        for v in violations[:8]:
            row = None if v.row is None else int(rows[v.row])
            lines.append(str(oracle.Violation(v.rule, row, v.slot, v.message)))
        raise AssertionError("\n".join(lines))
    for j, row in enumerate(rows.tolist()):
        alone = RoutingProblem(config, sample.scores[j : j + 1].to(device), problem.bias)
        shared = _expected_shared_ids(alone, torch.zeros(1, dtype=torch.int64))
        expected_ids = torch.cat([sample_ids[j : j + 1, :K].to(torch.int64), shared], dim=1).to(torch.int32)
        report = differential.compare(
            alone,
            (expected_ids, sample_weights[j : j + 1]),
            _call(impl, alone),
            weight_dtype=weight_dtype,
            expected_rounded=True,
        )
        if not report.ok:
            raise AssertionError(
                f"{where}: row {row} of the big call differs from the same row routed alone (expected: the "
                f"big call's row; actual: alone):\n{report.format(max_rows=3)}"
            )


def _short(rows: torch.Tensor) -> str:
    values = rows.tolist()
    return str(values) if len(values) <= 8 else f"{values[:4]} ... {values[-2:]} ({len(values)} rows)"
