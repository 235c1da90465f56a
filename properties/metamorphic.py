"""Metamorphic relations: transform a problem, route both, and check that the outputs relate as SPEC implies.

Each relation is `relation(impl, problem, seed, contract=None) -> str | None`: None when the relation holds,
else a message with the evidence. `impl(scores, bias, config) -> (ids, weights)`; `seed` draws the
transformation; `contract` (a `peers.Contract`, None for the whole SPEC) says what the implementation takes
and how it writes weights: two calls' weights written in bfloat16 may differ by one of its ulps.

- `expert_permutation`: permute the experts inside each group and permute whole groups (bias permuted with
  them): the routed ids permute the same way. Tie-aware: under a permutation the lower-index rule picks a
  different expert among exact ties, and a near-tie may resolve differently, so a mapped-back row may differ
  from the original one only where the two experts' b near-tie (or the row holds a near-tie), and then the
  permuted output must itself be valid for the permuted problem (the oracle judges it there, where its
  exact-tie order is the right one). Rows without such differences compare weights within tolerance.
- `bias_shift`: adding a constant c to every bias entry changes nothing (problems with a bias). b + c is
  rounded differently in float32 (addition is not associative), so it is tie-aware in the same way; c is
  small (|c| <= 2) so that rounding stays well under the tie tolerance.
- `batch_invariance`: a row routed alone equals that row inside a batch at any offset, except the replica
  shared id, which is E + (row index in the call) % S.
- `row_order`: reordering the rows reorders the output (replica ids follow the new row index).
  These two compare tie-aware with weights within tolerance, not bitwise: the reference itself is not
  bitwise batch-invariant on CPU (torch's vectorized sigmoid and its scalar tail loop differ by an ulp
  for the same value at different positions of the buffer), so a near-tie may resolve differently.
- `determinism`: the same input twice gives bitwise the same output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from . import differential, oracle
from .problem import RoutingProblem

if TYPE_CHECKING:
    from .peers.contract import Contract

Impl = Callable[[torch.Tensor, torch.Tensor | None, object], tuple[torch.Tensor, torch.Tensor]]

BIAS_SHIFTS = (0.5, -0.5, 1.0, -1.0, 0.25, 2.0, -2.0, 0.125)
# Batch offsets: around warp (32) and block boundaries, where a kernel's row mapping changes.
BATCH_OFFSETS = (0, 1, 2, 7, 31, 32, 33, 63, 64, 65, 127, 128, 129)


def _call(impl: Impl, problem: RoutingProblem) -> tuple[torch.Tensor, torch.Tensor]:
    out = impl(problem.scores, problem.bias, problem.config)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise TypeError(f"impl returned a {type(out).__name__}, but it must return (topk_ids, topk_weights)")
    ids, weights = out
    if not isinstance(ids, torch.Tensor) or not isinstance(weights, torch.Tensor):
        raise TypeError("impl must return two torch.Tensors (topk_ids, topk_weights)")
    return ids, weights


def _bits(weights: torch.Tensor) -> torch.Tensor:
    return weights.detach().to("cpu", torch.float32).contiguous().view(torch.int32)


def _expected_shared_ids(problem: RoutingProblem, row_index: torch.Tensor) -> torch.Tensor:
    """Shared ids [n, W - K] for rows whose index in the call is row_index [n] (int64)."""
    config = problem.config
    E, S = config.num_experts, config.num_fused_shared_experts
    if config.num_shared_slots == 0:
        return torch.empty(len(row_index), 0, dtype=torch.int64)
    if config.shared_expert_mode == "split":
        return (E + torch.arange(S)).expand(len(row_index), S)
    return (E + row_index % S)[:, None]


def _same_rows(
    what: str,
    source_problem: RoutingProblem,
    source: tuple[torch.Tensor, torch.Tensor],
    source_rows: torch.Tensor,
    target_problem: RoutingProblem,
    target: tuple[torch.Tensor, torch.Tensor],
    weight_dtype: torch.dtype = torch.float32,
) -> str | None:
    """Row source_rows[j] of the source call must equal row j of the target call (tie-aware, weights within
    tolerance), except the replica shared id, which follows each call's own row index. None when equal."""
    config = source_problem.config
    K, W = config.topk, config.output_width
    for name, (ids, w) in (("first", source), ("second", target)):
        if ids.dim() != 2 or tuple(ids.shape)[1:] != (W,) or tuple(w.shape) != tuple(ids.shape):
            return f"{what}: the {name} call returned shapes {tuple(ids.shape)}, {tuple(w.shape)}; W = {W}"
    ids = source[0].detach().to("cpu")[source_rows]
    shared_ok = ids[:, K:].to(torch.int64) == _expected_shared_ids(source_problem, source_rows)
    if not bool(shared_ok.all()):
        j = int((~shared_ok).any(-1).nonzero()[0])
        return (
            f"{what}: row {int(source_rows[j])} of the first call has shared ids {ids[j, K:].tolist()}, "
            f"expected {_expected_shared_ids(source_problem, source_rows[j : j + 1])[0].tolist()}"
        )
    num = target_problem.num_rows
    expected_ids = torch.cat(
        [ids[:, :K].to(torch.int64), _expected_shared_ids(target_problem, torch.arange(num))], 1
    )
    expected = (expected_ids.to(torch.int32), source[1].detach().to("cpu")[source_rows])
    report = differential.compare(
        target_problem, expected, target, weight_dtype=weight_dtype, expected_rounded=True
    )
    if report.ok:
        return None
    return (
        f"{what} (expected: the first call's rows; actual: the second call's):\n{report.format(max_rows=3)}"
    )


def _tie_aware(
    what: str,
    problem: RoutingProblem,
    base: tuple[torch.Tensor, torch.Tensor],
    mapped: tuple[torch.Tensor, torch.Tensor],
    transformed: RoutingProblem,
    transformed_out: tuple[torch.Tensor, torch.Tensor],
    weight_dtype: torch.dtype = torch.float32,
) -> str | None:
    same_ids = base[0].shape == mapped[0].shape and bool((base[0].cpu() == mapped[0].cpu()).all())
    precision = {"weight_dtype": weight_dtype, "expected_rounded": True}
    if same_ids:
        # Only weights can differ: compared slot by slot, no oracle needed.
        report = differential.compare(problem, base, mapped, **precision)
    else:
        # Rows with an exact tie are tie rows here: the transformation changes which index is lower; the
        # transformed output must be valid where it is judged, on the transformed problem.
        _, bad_rows = oracle.judge(transformed, *transformed_out, weight_dtype=weight_dtype)
        ties = oracle.tie_rows(problem, exact=True)
        report = differential.compare(
            problem, base, mapped, tie_rows=ties, actual_ok_rows=~bad_rows, **precision
        )
    if report.ok:
        return None
    return f"{what}:\n{report.format(max_rows=3)}"


def expert_permutation(
    impl: Impl, problem: RoutingProblem, seed: int, contract: Contract | None = None
) -> str | None:
    """Permuting experts inside groups and whole groups permutes the routed ids the same way (tie-aware)."""
    config = problem.config
    E, G, n, K = config.num_experts, config.num_expert_group, config.experts_per_group, config.topk
    gen = torch.Generator().manual_seed(seed)
    group_perm = torch.randperm(G, generator=gen)
    within = torch.stack([torch.randperm(n, generator=gen) for _ in range(G)])
    # New expert j = g' * n + i' is old expert perm[j] = group_perm[g'] * n + within[g', i'].
    perm = (group_perm[:, None] * n + within).reshape(E)
    device = problem.device
    scores = problem.scores[:, perm.to(device)].contiguous()
    bias = None if problem.bias is None else problem.bias[perm.to(device)].contiguous()
    transformed = RoutingProblem(config, scores, bias, seed=problem.seed, note=problem.note)
    base = _call(impl, problem)
    out = _call(impl, transformed)
    ids = out[0].detach().to("cpu", torch.int64)
    if tuple(ids.shape) != (problem.num_rows, config.output_width):
        return f"expert_permutation: the permuted call returned ids of shape {tuple(ids.shape)}"
    routed = ids[:, :K]
    mapped_routed = torch.where((routed >= 0) & (routed < E), perm[routed.clamp(0, E - 1)], routed)
    mapped_ids = torch.cat([mapped_routed, ids[:, K:]], dim=1).to(torch.int32)
    return _tie_aware(
        f"expert_permutation (new expert j = old expert perm[j], perm = {_short(perm)})",
        problem,
        base,
        (mapped_ids, out[1]),
        transformed,
        out,
        _weight_dtype(problem, contract),
    )


def bias_shift(
    impl: Impl, problem: RoutingProblem, seed: int, contract: Contract | None = None
) -> str | None:
    """Adding a constant to every bias entry changes nothing (tie-aware). Holds trivially without a bias."""
    if problem.bias is None:
        return None
    c = BIAS_SHIFTS[seed % len(BIAS_SHIFTS)]
    bias = (problem.bias.to(torch.float32) + c).contiguous()
    where = "in float32"
    if contract is not None and torch.float32 not in contract.bias_dtype(problem.dtype):
        # The kernel takes no float32 bias beside these scores: shift in the bias's own dtype, by a c that
        # is exact there for every entry (else the relation cannot be tested on this example).
        exact = [
            shift
            for shift in BIAS_SHIFTS[seed % len(BIAS_SHIFTS) :] + BIAS_SHIFTS[: seed % len(BIAS_SHIFTS)]
            if _exact_shift(problem.bias, shift)
        ]
        if not exact:
            return None
        c, where = exact[0], f"in {str(problem.bias.dtype).replace('torch.', '')}, exactly"
        bias = (problem.bias.to(torch.float64) + c).to(problem.bias.dtype).contiguous()
    transformed = RoutingProblem(problem.config, problem.scores, bias, seed=problem.seed, note=problem.note)
    base = _call(impl, problem)
    out = _call(impl, transformed)
    return _tie_aware(
        f"bias_shift (bias + {c} {where})",
        problem,
        base,
        out,
        transformed,
        out,
        _weight_dtype(problem, contract),
    )


def batch_invariance(
    impl: Impl, problem: RoutingProblem, seed: int, contract: Contract | None = None
) -> str | None:
    """Row i routed alone equals row i placed at offset o inside a batch of other rows, bitwise."""
    T = problem.num_rows
    if T == 0:
        return None
    gen = torch.Generator().manual_seed(seed)
    i = int(torch.randint(T, (1,), generator=gen))
    offset = BATCH_OFFSETS[int(torch.randint(len(BATCH_OFFSETS), (1,), generator=gen))]
    after = int(torch.randint(0, 4, (1,), generator=gen))
    fillers = torch.randint(T, (offset + after,), generator=gen)
    rows = torch.cat([fillers[:offset], torch.tensor([i]), fillers[offset:]])
    device = problem.device
    batch = RoutingProblem(problem.config, problem.scores[rows.to(device)].contiguous(), problem.bias)
    alone = RoutingProblem(problem.config, problem.scores[i : i + 1].contiguous(), problem.bias)
    return _same_rows(
        f"batch_invariance (row {i} at offset {offset} of a batch of {len(rows)}, then alone)",
        batch,
        _call(impl, batch),
        torch.tensor([offset]),
        alone,
        _call(impl, alone),
        _weight_dtype(problem, contract),
    )


def row_order(impl: Impl, problem: RoutingProblem, seed: int, contract: Contract | None = None) -> str | None:
    """Routing rows in another order gives the same rows in that order, bitwise (replica ids aside)."""
    T = problem.num_rows
    if T < 2:
        return None
    perm = torch.randperm(T, generator=torch.Generator().manual_seed(seed))
    shuffled = RoutingProblem(
        problem.config, problem.scores[perm.to(problem.device)].contiguous(), problem.bias
    )
    return _same_rows(
        f"row_order (rows permuted: new row j = old row perm[j], perm = {_short(perm)})",
        problem,
        _call(impl, problem),
        perm,
        shuffled,
        _call(impl, shuffled),
        _weight_dtype(problem, contract),
    )


def determinism(
    impl: Impl, problem: RoutingProblem, seed: int, contract: Contract | None = None
) -> str | None:
    """The same input twice gives bitwise the same output (ids and weight bits)."""
    del seed, contract
    first = _call(impl, problem)
    second = _call(impl, problem)
    for name, a, b in (("ids", first[0], second[0]), ("weights", first[1], second[1])):
        if a.shape != b.shape or a.dtype != b.dtype:
            return (
                f"determinism: {name} of two identical calls differ in shape or dtype: {a.shape} vs {b.shape}"
            )
    ids_a, ids_b = first[0].detach().cpu(), second[0].detach().cpu()
    if first[1].dtype == torch.float32:
        w_a, w_b = _bits(first[1]), _bits(second[1])
    else:
        w_a, w_b = first[1].detach().cpu(), second[1].detach().cpu()
    differ = ((ids_a != ids_b) | (w_a != w_b)).reshape(ids_a.shape[0], -1).any(-1) if ids_a.numel() else []
    rows = differ.nonzero().flatten().tolist() if len(differ) else []
    if not rows:
        return None
    j = rows[0]
    return (
        f"determinism: {len(rows)} of {len(differ)} rows differ between two identical calls. First: row {j}: "
        f"ids {ids_a[j].tolist()} vs {ids_b[j].tolist()}, weights {first[1][j].tolist()} vs "
        f"{second[1][j].tolist()} (bitwise equality required)"
    )


def _weight_dtype(problem: RoutingProblem, contract: Contract | None) -> torch.dtype:
    """The dtype the implementation writes weights in for this problem (float32 without a contract)."""
    return torch.float32 if contract is None else contract.weight_dtype(problem.dtype)


def _exact_shift(bias: torch.Tensor, shift: float) -> bool:
    """bias + shift is exactly representable in the bias's dtype for every (finite) entry."""
    wide = bias.to(torch.float64)
    shifted = wide + shift
    back = shifted.to(bias.dtype).to(torch.float64)
    finite = torch.isfinite(wide)
    return bool(((back == shifted) | ~finite).all())


def _short(perm: torch.Tensor) -> str:
    values = perm.tolist()
    return str(values) if len(values) <= 16 else f"[{', '.join(map(str, values[:16]))}, ...]"


RELATIONS: dict[str, Callable[..., str | None]] = {
    "expert_permutation": expert_permutation,
    "bias_shift": bias_shift,
    "batch_invariance": batch_invariance,
    "row_order": row_order,
    "determinism": determinism,
}
