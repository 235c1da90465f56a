"""The oracle: judge ANY routing output by SPEC.md alone, accepting every valid resolution of a near-tie.

`check_routing(problem, ids, weights)` returns the list of `Violation`s (empty: the output is valid).
It never calls `moegate.reference.route`: it recomputes p, b and the group scores itself, in float64
from the exactly converted inputs, and checks each SPEC step as a *property* of the output rather than
by comparison with one canonical answer:

- `output_format`: shapes [T, W], dtypes int32 / float32.
- `id_range`, `distinct_ids`: every routed id in [0, E), shared ids in [E, E + S), distinct in a row.
- `no_nan`: no weight is NaN.
- `shared_slots` (step 7): split ids E..E+S-1, replica id E + row % S; weight 1 / r (times r, step 8).
- `group_selection` (steps 3-4): the routed experts lie in at most Kg groups, and some valid top-Kg set
  of groups (by group score) contains them.
- `expert_selection` (step 5): no candidate of a group that must be kept beats a routed expert.
- `expert_order` (step 5): the routed slots are in descending order of b.
- `routed_weights` (step 6), `output_scaling` (step 8): the weights are p of the routed experts,
  renormalized and scaled as configured.
- `invariant` (SPEC's effective-weight invariant): c * w_shared == 1; the routed effective weights sum
  to r (renormalize) or r * sum(p of the routed) (not).

Ties. "a beats f" (strict precedence) means: if a and f have *identical inputs* (the same logit and the
same bias entry, so that every deterministic implementation computes bitwise-equal b for them; or both b
are the same infinity), a has the lower index; otherwise b_a > b_f and they are not a near-tie
(`tolerances.near_tie`). A genuine near-tie can be resolved either way; an exact tie must follow the
lower-index rule. Groups likewise: two groups whose multisets of (logit, bias) inputs are equal have
necessarily equal group scores, and the lower group index must win.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import tolerances
from .problem import RoutingProblem

RENORMALIZE_EPSILON = 1e-20  # SPEC step 6, restated: the oracle reads SPEC.md, not the reference.
NEG_INF = float("-inf")

# Pairwise group comparisons [rows, G, G, E / G] are done in chunks of rows of at most this many elements.
_CHUNK_ELEMENTS = 1 << 22

RULES = (
    "output_format",
    "id_range",
    "distinct_ids",
    "no_nan",
    "shared_slots",
    "group_selection",
    "expert_selection",
    "expert_order",
    "routed_weights",
    "output_scaling",
    "invariant",
)


@dataclass(frozen=True)
class Violation:
    """One broken rule of SPEC.md.

    rule: the check's name (one of `RULES`, named after the SPEC step it checks).
    row: the row (token) index in the call, or None for a whole-output problem (a wrong shape).
    slot: the output slot (column of topk_ids / topk_weights), or None.
    message: what was expected and what was found, with the numbers.
    """

    rule: str
    row: int | None
    slot: int | None
    message: str

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                None if self.row is None else f"row {self.row}",
                None if self.slot is None else f"slot {self.slot}",
            )
            if part
        )
        return f"[{self.rule}] {where}: {self.message}" if where else f"[{self.rule}] {self.message}"


# ---- the inputs as SPEC reads them -----------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """p, b and group scores of a problem in float64 (CPU), with the read inputs for exact-tie checks.

    x: [T, E] float64, the logits read (NaN -> -inf). bias: [E] float64 (read as float32, NaN -> -inf;
    zeros without a bias). p, b: [T, E] float64. group: [T, G] float64 group scores.
    """

    x: torch.Tensor
    bias: torch.Tensor
    p: torch.Tensor
    b: torch.Tensor
    group: torch.Tensor
    has_bias: bool


def _nan_to_neg_inf(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isnan(x), torch.full_like(x, NEG_INF), x)


def _by_value(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """fn applied elementwise through the distinct values of x, so that equal inputs give bitwise equal
    outputs: torch's vectorized transcendental functions and their scalar tail loop can differ by an ulp
    for the same value at different positions of a buffer."""
    values, inverse = torch.unique(x, return_inverse=True)
    return fn(values)[inverse]


def probabilities(x: torch.Tensor, scoring_func: str) -> torch.Tensor:
    """SPEC step 1 in float64: x [T, E] float64 (NaN already read as -inf) -> p [T, E] float64."""
    if scoring_func == "sigmoid":
        return _by_value(torch.sigmoid, x)
    row_max = x.amax(dim=-1, keepdim=True) if x.shape[0] else x.new_zeros(0, 1)
    finite_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = _by_value(torch.exp, x - finite_max)
    p = e / e.sum(dim=-1, keepdim=True)
    pos_inf = (x == float("inf")).to(torch.float64)
    p = torch.where(row_max == float("inf"), pos_inf / pos_inf.sum(dim=-1, keepdim=True), p)
    return torch.where(row_max == NEG_INF, torch.zeros_like(p), p)


def biased_scores(p: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """SPEC step 2 in float64: p [T, E] + bias [E] (read as float32, NaN -> -inf), NaN read as -inf."""
    return _nan_to_neg_inf(p + bias)


def group_scores(b: torch.Tensor, num_expert_group: int, has_bias: bool) -> torch.Tensor:
    """SPEC step 3 in float64: b [T, E] -> [T, G]; top-2 sum with a bias, the maximum without."""
    num_rows = b.shape[0]
    grouped = b.reshape(num_rows, num_expert_group, b.shape[1] // num_expert_group)
    if not has_bias:
        return grouped.amax(dim=-1) if num_rows else grouped.new_zeros(0, num_expert_group)
    top_two = torch.sort(grouped, dim=-1, descending=True).values[..., :2]
    return _nan_to_neg_inf(top_two.sum(dim=-1))


def read_scores(problem: RoutingProblem) -> Scores:
    """SPEC steps 1-3 recomputed in float64 on CPU: probabilities, biased scores, group scores."""
    config = problem.config
    x = _nan_to_neg_inf(problem.scores.detach().to("cpu", torch.float64))
    p = probabilities(x, config.scoring_func)
    if problem.bias is None:
        bias = torch.zeros(config.num_experts, dtype=torch.float64)
    else:
        bias = _nan_to_neg_inf(problem.bias.detach().to("cpu", torch.float32).to(torch.float64))
    b = biased_scores(p, bias)
    group = group_scores(b, config.num_expert_group, has_bias=problem.bias is not None)
    return Scores(x=x, bias=bias, p=p, b=b, group=group, has_bias=problem.bias is not None)


def _strictly_greater(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a > b) & ~tolerances.near_tie(a, b)


def _row_chunks(num_rows: int, per_row: int) -> list[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(1, per_row))
    return [slice(i, min(num_rows, i + step)) for i in range(0, num_rows, step)]


def _expert_precedes(
    sc: Scores, rows: slice, routed: torch.Tensor, include_exact: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """For rows `rows`: P[t, f, j] = expert f strictly precedes the routed expert routed[t, j], and
    N[t, f, j] = f and routed[t, j] are a genuine near-tie (not identical inputs; with include_exact,
    exact ties too, f == routed[t, j] included). [t, E, K] bool each."""
    b, x = sc.b[rows], sc.x[rows]
    ids = routed[rows]
    b_f, b_e = b[:, :, None], torch.gather(b, 1, ids)[:, None, :]
    same_inputs = (x[:, :, None] == torch.gather(x, 1, ids)[:, None, :]) & (
        sc.bias[None, :, None] == sc.bias[ids][:, None, :]
    )
    exact = same_inputs | ((b_f == b_e) & torch.isinf(b_f))
    lower = torch.arange(b.shape[1])[None, :, None] < ids[:, None, :]
    precedes = torch.where(exact, lower, _strictly_greater(b_f, b_e))
    near = tolerances.near_tie(b_f, b_e) | exact if include_exact else tolerances.near_tie(b_f, b_e) & ~exact
    return precedes, near


def _exact_keys(sc: Scores, ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact-tie key (bias, logit) of experts [T, E] (or of the experts `ids` [T, N]): equal keys mean
    bitwise-equal b in any deterministic implementation. An infinite b (from an infinite bias) ties with
    the same infinity whatever the logit, so its logit part is 0."""
    x, bias = sc.x, sc.bias.expand_as(sc.x)
    b = sc.b
    if ids is not None:
        x, bias, b = torch.gather(x, 1, ids), torch.gather(bias, 1, ids), torch.gather(b, 1, ids)
    return bias, torch.where(torch.isinf(b), torch.zeros_like(x), x)


def _runs(major: torch.Tensor, minor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions sorted by (major, minor, position) per row, and the run id of each sorted position
    (runs: equal (major, minor)). [T, N] int64 each."""
    order = torch.sort(minor, dim=-1, stable=True).indices
    order = torch.gather(order, 1, torch.sort(torch.gather(major, 1, order), dim=-1, stable=True).indices)
    a, c = torch.gather(major, 1, order), torch.gather(minor, 1, order)
    new = torch.ones_like(order, dtype=torch.bool)
    new[:, 1:] = (a[:, 1:] != a[:, :-1]) | (c[:, 1:] != c[:, :-1])
    return order, torch.cumsum(new.to(torch.int64), dim=-1) - 1


def _exact_lower_unrouted(sc: Scores, is_routed: torch.Tensor) -> torch.Tensor:
    """[T, E] bool: expert f is not routed but has the same exact-tie key as a routed expert of higher
    index (the lower-index rule should have picked f)."""
    order, run = _runs(*_exact_keys(sc))
    index = order
    routed_sorted = torch.gather(is_routed, 1, order)
    top = torch.full_like(index, -1).scatter_reduce(
        1, run, torch.where(routed_sorted, index, torch.full_like(index, -1)), "amax", include_self=True
    )
    flagged_sorted = (torch.gather(top, 1, run) > index) & ~routed_sorted
    return torch.zeros_like(is_routed).scatter(1, order, flagged_sorted)


def _exact_out_of_order(sc: Scores, routed: torch.Tensor) -> torch.Tensor:
    """[T, K] bool: slot j holds an expert with the same exact-tie key as an expert of an earlier slot and a
    lower index than it (identical inputs must come in ascending index order)."""
    order, run = _runs(*_exact_keys(sc, routed))
    ids = torch.gather(routed, 1, order)
    bad = torch.zeros_like(order, dtype=torch.bool)
    bad[:, 1:] = (run[:, 1:] == run[:, :-1]) & (ids[:, 1:] < ids[:, :-1])
    return torch.zeros_like(bad).scatter(1, order, bad)


def _prefix_min(x: torch.Tensor) -> torch.Tensor:
    """[T, K]: the minimum of x over the earlier slots (+inf for slot 0)."""
    shifted = torch.cat([torch.full_like(x[:, :1], float("inf")), x[:, :-1]], dim=1)
    return torch.cummin(shifted, dim=1).values


def _group_precedes(
    sc: Scores, num_expert_group: int, include_exact: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """P[t, h, g] = group h strictly precedes group g; N[t, h, g] = a genuine near-tie. [T, G, G] bool.

    Two groups tie exactly when their multisets of (logit, bias) inputs are equal (or both scores are
    the same infinity): then the lower group index wins.
    """
    num_rows, num_experts = sc.x.shape
    n = num_experts // num_expert_group
    # Sort each group's (bias, logit) pairs lexicographically: two stable sorts, minor key first.
    x = sc.x.reshape(num_rows, num_expert_group, n)
    bias = sc.bias.reshape(1, num_expert_group, n).expand(num_rows, -1, -1)
    order = torch.sort(x, dim=-1, stable=True).indices
    x, bias = torch.gather(x, 2, order), torch.gather(bias, 2, order)
    order = torch.sort(bias, dim=-1, stable=True).indices
    x, bias = torch.gather(x, 2, order), torch.gather(bias, 2, order)
    gs = sc.group
    precedes = torch.zeros(num_rows, num_expert_group, num_expert_group, dtype=torch.bool)
    near = torch.zeros_like(precedes)
    lower = torch.arange(num_expert_group)[:, None] < torch.arange(num_expert_group)[None, :]
    for rows in _row_chunks(num_rows, num_expert_group * num_experts):
        same = (
            (x[rows, :, None, :] == x[rows, None, :, :]) & (bias[rows, :, None, :] == bias[rows, None, :, :])
        ).all(-1)
        g_h, g_g = gs[rows, :, None], gs[rows, None, :]
        exact = same | ((g_h == g_g) & torch.isinf(g_h))
        precedes[rows] = torch.where(exact, lower[None], _strictly_greater(g_h, g_g))
        near[rows] = (
            tolerances.near_tie(g_h, g_g) | exact if include_exact else tolerances.near_tie(g_h, g_g) & ~exact
        )
    return precedes, near


def _fmt(v: float) -> str:
    return f"{v:.9g}"


# ---- the checks, one per SPEC step ---------------------------------------------------------------------


class _Collector:
    def __init__(self, num_rows: int, max_per_rule: int, weight_dtype: torch.dtype = torch.float32) -> None:
        self.weight_dtype = tolerances.check_weight_dtype(weight_dtype)
        self.violations: list[Violation] = []
        self.counts: dict[str, int] = {}
        self.bad_rows = torch.zeros(num_rows, dtype=torch.bool)
        self.max_per_rule = max_per_rule

    def add(self, rule: str, row: int | None, slot: int | None, message: str) -> None:
        if row is not None:
            self.bad_rows[row] = True
        count = self.counts.get(rule, 0)
        self.counts[rule] = count + 1
        if count < self.max_per_rule:
            self.violations.append(Violation(rule, row, slot, message))

    def add_mask(self, rule: str, mask: torch.Tensor, message: Callable[[int, int], str]) -> None:
        """One violation per True (row, slot) of mask [T, W'] (messages built only for the listed ones)."""
        if mask.numel() == 0 or not mask.any():
            return
        self.bad_rows |= mask.any(-1)
        for row, slot in mask.nonzero().tolist():
            count = self.counts.get(rule, 0)
            self.counts[rule] = count + 1
            if count < self.max_per_rule:
                self.violations.append(Violation(rule, row, slot, message(row, slot)))


# ---- the checks, one per SPEC step ---------------------------------------------------------------------


def output_format(problem: RoutingProblem, ids: object, weights: object, out: _Collector) -> bool:
    """Outputs: topk_ids int32 and topk_weights float32, both [T, W]. False: nothing else can be checked."""
    config = problem.config
    shape = (problem.num_rows, config.output_width)
    ok = True
    for name, value, dtype in (("topk_ids", ids, torch.int32), ("topk_weights", weights, torch.float32)):
        if not isinstance(value, torch.Tensor):
            out.add("output_format", None, None, f"{name} is a {type(value).__name__}, not a torch.Tensor")
            ok = False
            continue
        if tuple(value.shape) != shape:
            out.add(
                "output_format",
                None,
                None,
                f"{name}.shape={tuple(value.shape)}, but SPEC requires [T, W] = {list(shape)} "
                f"(W = {config.output_width})",
            )
            ok = False
        if value.dtype != dtype:
            out.add("output_format", None, None, f"{name}.dtype={value.dtype}, but SPEC requires {dtype}")
    return ok


def id_range(problem: RoutingProblem, ids: torch.Tensor, out: _Collector) -> torch.Tensor:
    """Routed ids in [0, E), shared ids in [E, E + S), distinct within a row. Returns the rows [T] bool
    whose routed ids are usable for the selection checks."""
    config = problem.config
    E, K, S = config.num_experts, config.topk, config.num_fused_shared_experts
    routed, shared = ids[:, :K], ids[:, K:]
    bad_routed = (routed < 0) | (routed >= E)
    bad_shared = (shared < E) | (shared >= E + S)
    out.add_mask(
        "id_range",
        bad_routed,
        lambda r, s: f"routed id {int(routed[r, s])} is outside [0, {E}) (E = num_experts)",
    )
    out.add_mask(
        "id_range",
        torch.cat([torch.zeros_like(bad_routed), bad_shared], dim=1),
        lambda r, s: f"shared id {int(ids[r, s])} is outside [{E}, {E + S}) (E..E+S-1)",
    )
    sorted_ids, order = torch.sort(ids, dim=1, stable=True)
    dup_sorted = torch.zeros_like(ids, dtype=torch.bool)
    dup_sorted[:, 1:] = sorted_ids[:, 1:] == sorted_ids[:, :-1]
    duplicate = torch.zeros_like(dup_sorted).scatter(1, order, dup_sorted)
    out.add_mask(
        "distinct_ids",
        duplicate,
        lambda r, s: f"id {int(ids[r, s])} appears twice in the row {ids[r].tolist()}",
    )
    return ~(bad_routed.any(-1) | duplicate[:, :K].any(-1))


def no_nan(weights: torch.Tensor, out: _Collector) -> None:
    """Guarantee: no weight is NaN."""
    out.add_mask("no_nan", torch.isnan(weights), lambda r, s: "weight is NaN")


def shared_slots(
    problem: RoutingProblem,
    ids: torch.Tensor,
    weights: torch.Tensor,
    out: _Collector,
    row_index: torch.Tensor | None = None,
) -> None:
    """Step 7 (with step 8's scaling): shared ids and weights. row_index [T] int64: each row's index in the
    call that produced it (replica ids follow it), default 0..T-1."""
    config = problem.config
    E, K, S, T = config.num_experts, config.topk, config.num_fused_shared_experts, problem.num_rows
    if config.num_shared_slots == 0:
        return
    if config.shared_expert_mode == "split":
        expected_ids = (E + torch.arange(S)).expand(T, S)
        rule_text = "split: ids E..E+S-1"
    else:
        index = torch.arange(T) if row_index is None else row_index.to("cpu", torch.int64)
        expected_ids = (E + index % S)[:, None]
        rule_text = "replica: id E + row % S"
    actual_ids = ids[:, K:].to(torch.int64)
    out.add_mask(
        "shared_slots",
        torch.cat([torch.zeros(T, K, dtype=torch.bool), actual_ids != expected_ids], dim=1),
        lambda r, s: f"shared id {int(ids[r, s])}, expected {int(expected_ids[r, s - K])} ({rule_text})",
    )
    r_factor = config.routed_scaling_factor
    expected_w = (1.0 / r_factor) * (r_factor if config.apply_routed_scaling_factor_on_output else 1.0)
    _weight_check(problem, weights[:, K:], torch.full(actual_ids.shape, expected_w), K, "shared", out)


def _weight_check(
    problem: RoutingProblem,
    actual: torch.Tensor,
    expected: torch.Tensor,
    slot_offset: int,
    what: str,
    out: _Collector,
    rows: torch.Tensor | None = None,
) -> None:
    config = problem.config
    actual = actual.to(torch.float64)

    def close(target: torch.Tensor) -> torch.Tensor:
        return tolerances.weights_close(actual, target, problem.dtype, out.weight_dtype)

    bad = ~close(expected)
    if rows is not None:
        bad &= rows[:, None]
    if not bad.any():
        return
    r_factor = config.routed_scaling_factor
    scaled = (
        close(expected * r_factor) | close(expected / r_factor) if r_factor != 1.0 else torch.zeros_like(bad)
    )
    apply = config.apply_routed_scaling_factor_on_output
    pad = torch.zeros(actual.shape[0], slot_offset, dtype=torch.bool)
    for rule, mask in (
        ("output_scaling", bad & scaled),
        ("shared_slots" if what == "shared" else "routed_weights", bad & ~scaled),
    ):

        def message(r: int, s: int, rule: str = rule) -> str:
            a, e = float(actual[r, s - slot_offset]), float(expected[r, s - slot_offset])
            lo, hi = tolerances.weight_bounds(expected[r, s - slot_offset], problem.dtype, out.weight_dtype)
            allowed = (
                f"tolerance {float(hi) - e:.3g}"
                if out.weight_dtype == torch.float32
                else f"allowed [{_fmt(lo)}, {_fmt(hi)}] in {str(out.weight_dtype).replace('torch.', '')}"
            )
            text = f"{what} weight {_fmt(a)}, expected {_fmt(e)} (difference {abs(a - e):.3g}, {allowed})"
            if rule == "output_scaling":
                power = "r" if abs(a - e * r_factor) <= abs(a - e / r_factor) else "1 / r"
                text += (
                    f"; it equals the expected weight times {power}"
                    f" (apply_routed_scaling_factor_on_output={apply}, r={r_factor})"
                )
            return text

        out.add_mask(rule, torch.cat([pad, mask], dim=1), message)


def group_selection(
    problem: RoutingProblem, sc: Scores, routed: torch.Tensor, usable: torch.Tensor, out: _Collector
) -> torch.Tensor:
    """Steps 3-4: the routed experts lie in at most Kg groups, and some valid top-Kg set of groups holds them.

    Returns candidate [T, G] bool: the groups whose experts must not beat a routed expert (groups that
    any valid kept set contains). Rows with a group violation are marked unusable in `usable`.
    """
    config = problem.config
    T, G, Kg, n = problem.num_rows, config.num_expert_group, config.topk_group, config.experts_per_group
    if not config.has_groups:
        return torch.ones(T, G, dtype=torch.bool)
    group_of = routed // n
    used = torch.zeros(T, G, dtype=torch.bool).scatter(1, group_of, True) & usable[:, None]
    precedes, _ = _group_precedes(sc, G)
    gs = sc.group
    # Groups that must be kept: the used ones and every group that strictly precedes a used one.
    required = used | (precedes & used[:, None, :]).any(-1)
    n_used, n_required = used.sum(-1), required.sum(-1)
    for row in ((n_used > Kg) & usable).nonzero().flatten().tolist():
        groups = used[row].nonzero().flatten().tolist()
        out.add(
            "group_selection",
            row,
            None,
            f"the routed experts {routed[row].tolist()} lie in {len(groups)} groups {groups}, "
            f"but at most topk_group={Kg} groups may be kept",
        )
        usable[row] = False
    for row in ((n_required > Kg) & usable).nonzero().flatten().tolist():
        # The used group with the most strict predecessors outside the used set, and one such predecessor.
        outside = precedes[row] & ~used[row][:, None] & used[row][None, :]
        g = int(outside.sum(0).argmax())
        h = int(outside[:, g].nonzero()[0])
        slot = int((group_of[row] == g).nonzero()[0])
        out.add(
            "group_selection",
            row,
            slot,
            f"expert {int(routed[row, slot])} of group {g} (group score {_fmt(gs[row, g])}) is routed, but "
            f"group {h} (group score {_fmt(gs[row, h])}) beats group {g} and is not used: keeping both "
            f"and every group that beats a used one needs {int(n_required[row])} groups > topk_group={Kg}",
        )
        usable[row] = False
    # Groups outside `required` that every valid kept set still contains (forced fillers).
    spare = (Kg - n_required).clamp(min=0)
    others = ~required
    not_beaten_by_h = (~precedes & others[:, None, :]).sum(-1) - others.to(torch.int64)
    forced = others & (not_beaten_by_h < spare[:, None])
    return required | forced


def expert_selection(
    problem: RoutingProblem,
    sc: Scores,
    routed: torch.Tensor,
    usable: torch.Tensor,
    candidate_groups: torch.Tensor,
    out: _Collector,
) -> None:
    """Step 5: no candidate of a kept group beats a routed expert (tie-aware), and the routed slots are in
    descending order of b (ties: lower index first when the inputs are identical)."""
    config = problem.config
    T, E, G = problem.num_rows, config.num_experts, config.num_expert_group
    n, Kg = config.experts_per_group, config.topk_group
    b = sc.b
    is_routed = torch.zeros(T, E, dtype=torch.bool).scatter(1, routed, True)
    b_routed = torch.gather(b, 1, routed)
    # f beats a routed expert by value iff it beats the weakest one: b_f - b_e - tie_width(b_f, b_e) falls
    # as b_e grows (TIE_RTOL < 1), so the routed expert with the smallest b is the easiest to beat.
    weakest = b_routed.amin(-1, keepdim=True).expand_as(b)
    beats = (_strictly_greater(b, weakest) | _exact_lower_unrouted(sc, is_routed)) & ~is_routed
    # Slot j is out of order iff its b beats the smallest b of the earlier slots (same argument), or an
    # earlier slot holds identical inputs with a higher index.
    order_bad = _strictly_greater(b_routed, _prefix_min(b_routed)) | _exact_out_of_order(sc, routed)
    expert_group = torch.arange(E) // n
    must_consider = candidate_groups[:, expert_group]
    violating = beats & must_consider & usable[:, None]
    for row in violating.any(-1).nonzero().flatten().tolist():
        f = int(torch.where(violating[row], b[row], torch.full_like(b[row], NEG_INF)).argmax())
        if not violating[row, f]:
            f = int(violating[row].nonzero()[0])
        # The last (weakest) routed slot that f beats.
        precedes, _ = _expert_precedes(sc, slice(row, row + 1), routed)
        slot = int(precedes[0, f].nonzero().max())
        e = int(routed[row, slot])
        identical = sc.x[row, f] == sc.x[row, e] and sc.bias[f] == sc.bias[e]
        why = (
            f"has the same inputs (logit {_fmt(sc.x[row, f])}, bias {_fmt(sc.bias[f])}) and a lower index, "
            "so the lower-index tie rule picks it"
            if identical
            else f"has b = {_fmt(b[row, f])} > b = {_fmt(b[row, e])} beyond the tie tolerance "
            f"{float(tolerances.tie_width(b[row, f], b[row, e])):.3g}"
        )
        group_note = f" (group {f // n})" if G > 1 else ""
        out.add(
            "expert_selection",
            row,
            slot,
            f"expert {f}{group_note} is not routed but beats routed expert {e} in slot {slot}: it {why}",
        )
    if config.has_groups:
        # The kept set must be completed with groups none of whose experts beats a routed one.
        group_of = routed // n
        used = torch.zeros(T, G, dtype=torch.bool).scatter(1, group_of, True)
        dirty = beats.reshape(T, G, n).any(-1)
        clean_spare = (~candidate_groups & ~dirty).sum(-1)
        needed = Kg - candidate_groups.sum(-1)
        short = (clean_spare < needed) & usable & ~violating.any(-1)
        for row in short.nonzero().flatten().tolist():
            out.add(
                "expert_selection",
                row,
                None,
                f"topk_group={Kg} groups must be kept; the routed experts use groups "
                f"{used[row].nonzero().flatten().tolist()}, and too few other groups hold no expert that "
                f"beats a routed one to complete the kept set: an expert of a kept group was skipped",
            )
    order_bad &= usable[:, None]
    for row, slot in order_bad.nonzero().tolist():
        e = int(routed[row, slot])
        out.add(
            "expert_order",
            row,
            slot,
            f"routed slots must be in descending order of b (ties: lower index first): slot {slot} holds "
            f"expert {e} (b = {_fmt(b[row, e])}) after ids {routed[row, :slot].tolist()} "
            f"(b = {[float(f'{v:.6g}') for v in b[row, routed[row, :slot]].tolist()]})",
        )


def routed_weights(
    problem: RoutingProblem,
    sc: Scores,
    routed: torch.Tensor,
    weights: torch.Tensor,
    usable: torch.Tensor,
    out: _Collector,
) -> None:
    """Steps 6 and 8: routed weight = p of the expert, renormalized by (sum + 1e-20), times r if applied."""
    config = problem.config
    K = config.topk
    w = torch.gather(sc.p, 1, routed)
    if config.renormalize:
        w = w / (w.sum(-1, keepdim=True) + RENORMALIZE_EPSILON)
    if config.apply_routed_scaling_factor_on_output:
        w = w * config.routed_scaling_factor
    _weight_check(problem, weights[:, :K], w, 0, "routed", out, rows=usable)


def invariant(
    problem: RoutingProblem,
    sc: Scores,
    routed: torch.Tensor,
    weights: torch.Tensor,
    usable: torch.Tensor,
    out: _Collector,
) -> None:
    """SPEC's effective-weight invariant: c * w_shared == 1; sum of c * w_routed == r (renormalize, up to the
    1e-20 epsilon) or r * sum(p of the routed) (no renormalize)."""
    config = problem.config
    K, r = config.topk, config.routed_scaling_factor
    c = config.effective_scale
    rtol = tolerances.INVARIANT_RTOL
    _, atol = tolerances.weight_tolerance(problem.dtype)
    # Weights written in a narrower dtype: each carries up to half an ulp of it.
    rounding = tolerances.rounding_rtol(out.weight_dtype)
    w = weights.to(torch.float64)
    c_text = "c = 1: r applied on the output" if config.apply_routed_scaling_factor_on_output else "c = r"
    shared_eff = c * w[:, K:]
    bad_shared = ~((shared_eff - 1.0).abs() <= rtol + rounding)
    out.add_mask(
        "invariant",
        torch.cat([torch.zeros(w.shape[0], K, dtype=torch.bool), bad_shared], dim=1),
        lambda row, s: (
            f"shared slot's effective weight c * w = {c:g} * {_fmt(w[row, s])} = "
            f"{_fmt(c * w[row, s])}, but it must be 1 ({c_text})"
        ),
    )
    s = torch.gather(sc.p, 1, routed).sum(-1)
    target = r * s / (s + RENORMALIZE_EPSILON) if config.renormalize else r * s
    routed_eff = c * w[:, :K].sum(-1)
    slack = rtol * target.abs() + c * K * atol + rounding * c * w[:, :K].abs().sum(-1)
    bad = ~((routed_eff - target).abs() <= slack) & usable
    for row in bad.nonzero().flatten().tolist():
        out.add(
            "invariant",
            row,
            None,
            f"routed effective weights sum to c * sum(w) = {_fmt(routed_eff[row])}, but must sum to "
            + (f"r = {r:g}" if config.renormalize else f"r * sum(p of the routed) = {_fmt(target[row])}"),
        )


# ---- public entry points -------------------------------------------------------------------------------


def judge(
    problem: RoutingProblem,
    ids: torch.Tensor,
    weights: torch.Tensor,
    *,
    max_per_rule: int = 20,
    weight_dtype: torch.dtype = torch.float32,
    row_index: torch.Tensor | None = None,
) -> tuple[list[Violation], torch.Tensor]:
    """`check_routing`, also returning bad_rows [T] bool (every row with at least one violation; all rows
    when the output's shape is wrong)."""
    if not isinstance(problem, RoutingProblem):
        raise TypeError(f"problem is a {type(problem).__name__}, but problem must be a RoutingProblem")
    if isinstance(max_per_rule, bool) or not isinstance(max_per_rule, int) or max_per_rule < 1:
        raise ValueError(f"max_per_rule={max_per_rule!r}, but max_per_rule must be an int >= 1")
    T, K = problem.num_rows, problem.config.topk
    out = _Collector(T, max_per_rule, weight_dtype)
    if not output_format(problem, ids, weights, out):
        out.bad_rows[:] = True
        return out.violations, out.bad_rows
    ids = ids.detach().to("cpu", torch.int64)
    weights = weights.detach().to("cpu", torch.float32)
    usable = id_range(problem, ids, out)
    no_nan(weights, out)
    if row_index is not None and tuple(row_index.shape) != (T,):
        raise ValueError(f"row_index has shape {tuple(row_index.shape)}, but it must be [T] = [{T}]")
    shared_slots(problem, ids, weights, out, row_index)
    if T == 0:
        return out.violations, out.bad_rows
    sc = read_scores(problem)
    routed = torch.where(usable[:, None], ids[:, :K], torch.arange(K).expand(T, K))
    candidate_groups = group_selection(problem, sc, routed, usable, out)
    expert_selection(problem, sc, routed, usable, candidate_groups, out)
    routed_weights(problem, sc, routed, weights, usable, out)
    invariant(problem, sc, routed, weights, usable, out)
    out.bad_rows |= ~usable
    return out.violations, out.bad_rows


def check_routing(
    problem: RoutingProblem,
    ids: torch.Tensor,
    weights: torch.Tensor,
    *,
    max_per_rule: int = 20,
    weight_dtype: torch.dtype = torch.float32,
    row_index: torch.Tensor | None = None,
) -> list[Violation]:
    """Judge one routing output against SPEC.md; an empty list means it is valid.

    Args:
        problem: the inputs (config, scores [T, E], bias [E] or None), on any device.
        ids: topk_ids, expected int32 [T, W], any device.
        weights: topk_weights, expected float32 [T, W], any device.
        max_per_rule: at most this many violations of one rule are listed (all are counted).
        weight_dtype: the dtype the implementation wrote its weights in before handing them over as
            float32 (float32, or bfloat16 / float16 for kernels that write weights in the scores'
            dtype): a weight is right when it is the correctly rounded SPEC weight
            (`tolerances.weight_bounds`).
        row_index: [T] int64, each row's index in the call that produced it, when the rows judged are a
            sample of a larger call (replica shared ids are E + row index % S); default 0..T-1.

    Returns:
        The violations, in the order of the checks (format, ids, NaN, shared slots, group selection,
        expert selection and order, routed weights and scaling, invariant). Every valid tie resolution
        passes; see the module docstring for the tie rules.
    """
    return judge(
        problem, ids, weights, max_per_rule=max_per_rule, weight_dtype=weight_dtype, row_index=row_index
    )[0]


def tie_rows(problem: RoutingProblem, *, exact: bool = False) -> torch.Tensor:
    """Rows [T] bool whose selection involves a genuine near-tie (`tolerances.near_tie`, inputs not
    identical): at the kept/dropped boundary of the groups or of the experts, or between two routed slots.

    Computed on the canonical selection (float64 b, lower index first). Exact ties (identical inputs) are not
    flagged: the lower-index rule decides them for every implementation. With `exact=True` they are
    flagged too (the metamorphic relations need them: permuting experts changes which index is lower).
    """
    if not isinstance(exact, bool):
        raise TypeError(f"exact={exact!r} ({type(exact).__name__}), but exact must be a bool")
    if not isinstance(problem, RoutingProblem):
        raise TypeError(f"problem is a {type(problem).__name__}, but problem must be a RoutingProblem")
    config = problem.config
    T, E, G = problem.num_rows, config.num_experts, config.num_expert_group
    flags = torch.zeros(T, dtype=torch.bool)
    if T == 0:
        return flags
    sc = read_scores(problem)
    kept, routed = canonical_selection(problem, sc)
    if config.has_groups:
        _, near = _group_precedes(sc, G, include_exact=exact)
        kept_mask = torch.zeros(T, G, dtype=torch.bool).scatter(1, kept, True)
        flags |= (near & kept_mask[:, :, None] & ~kept_mask[:, None, :]).any(-1).any(-1)
    n = config.experts_per_group
    in_kept = torch.zeros(T, G, dtype=torch.bool).scatter(1, kept, True)[:, torch.arange(E) // n]
    is_routed = torch.zeros(T, E, dtype=torch.bool).scatter(1, routed, True)
    b = sc.b
    b_routed = torch.gather(b, 1, routed)  # descending: the canonical selection is sorted
    # A dropped candidate near-ties some routed expert iff it near-ties the weakest one (|b_e - b_f| -
    # tie_width grows with b_e), and the routed slots near-tie iff two consecutive ones do.
    weakest = b_routed[:, -1:]
    major, minor = _exact_keys(sc)
    w_major, w_minor = torch.gather(major, 1, routed[:, -1:]), torch.gather(minor, 1, routed[:, -1:])
    boundary = tolerances.near_tie(b, weakest.expand_as(b)) & in_kept & ~is_routed
    r_major, r_minor = _exact_keys(sc, routed)
    between = tolerances.near_tie(b_routed[:, 1:], b_routed[:, :-1])
    if not exact:
        boundary &= ~((major == w_major) & (minor == w_minor))
        between &= ~((r_major[:, 1:] == r_major[:, :-1]) & (r_minor[:, 1:] == r_minor[:, :-1]))
    flags |= boundary.any(-1) | between.any(-1)
    return flags


def canonical_selection(
    problem: RoutingProblem, sc: Scores | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 4-5 on the float64 scores, lower index first on exact ties: kept groups [T, Kg] and routed
    experts [T, K], int64. One valid answer among those `check_routing` accepts."""
    config = problem.config
    sc = read_scores(problem) if sc is None else sc
    T, n = problem.num_rows, config.experts_per_group
    kept = torch.sort(-sc.group, dim=-1, stable=True).indices[:, : config.topk_group]
    kept_sorted = torch.sort(kept, dim=-1).values
    candidates = (kept_sorted[:, :, None] * n + torch.arange(n)).reshape(T, config.topk_group * n)
    order = torch.sort(-torch.gather(sc.b, 1, candidates), dim=-1, stable=True).indices[:, : config.topk]
    return kept, torch.gather(candidates, 1, order)
