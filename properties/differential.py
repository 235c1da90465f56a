"""Differential comparison of an implementation's routing output with the expected one (the reference's).

Ids must match exactly wherever no tie is involved. A differing routed id is accepted only when the two
experts' biased scores near-tie (`tolerances.near_tie`), or the row is flagged in `tie_rows` (default:
`oracle.tie_rows(problem)`); in both cases the oracle must also accept the actual row (so its weights
are judged against p of the experts it actually chose). Rows whose ids match compare their weights slot
by slot within `tolerances.weight_tolerance(problem.dtype)` (rounded into the weights' dtype for kernels
that write them in bfloat16 or float16: `tolerances.weight_bounds`).

Reports read like `torch.testing.assert_close` (STYLE.md):

    Mismatched routing: 3 / 4096 rows (0.07%), 5 slots
    Worst mismatch: row 17, slot 3
      id:     expected 42, actual 97
      b:      b[42] = 0.512345671, b[97] = 0.498765433 (difference 0.0136 > tie tolerance 6.12e-06)
      weight: expected 0.123456703, actual 0.234567806 (difference 0.111 > tolerance 2.23e-06)
    Config: RoutingConfig(num_experts=256, topk=8, ...)
    Inputs: scores bfloat16[4096, 256], bias float32, device cpu, seed 1234
    Further mismatching rows (2 more): ...
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from . import oracle, tolerances
from .problem import RoutingProblem, format_config

Routing = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class SlotMismatch:
    """The worst mismatching slot of one row.

    kind: "id" (a differing id not accepted as a tie), "weight" (same ids, weight out of tolerance), or
    "oracle" (a tie-accepted id whose row the oracle rejects; `note` holds the oracle's first finding).
    b_expected / b_actual: the biased scores of the expected and actual expert (routed slots with ids in
    range; None otherwise). tolerance: the tie tolerance (kind "id") or the weight tolerance (otherwise).
    """

    row: int
    slot: int
    kind: str
    expected_id: int
    actual_id: int
    expected_weight: float
    actual_weight: float
    b_expected: float | None
    b_actual: float | None
    tolerance: float
    note: str = ""

    @property
    def severity(self) -> float:
        """Sort key: id mismatches first (by b difference), then weights (by difference / tolerance)."""
        if self.kind in ("id", "oracle"):
            if self.b_expected is None or self.b_actual is None:
                return math.inf
            gap = abs(self.b_expected - self.b_actual)
            return 1e12 + (gap if math.isfinite(gap) else 1e12)
        diff = abs(self.actual_weight - self.expected_weight)
        if not math.isfinite(diff):
            return 1e11
        # A zero tolerance: a weight written in bfloat16 whose allowed interval is the one value expected.
        return diff / self.tolerance if self.tolerance > 0 else 1e10 + diff

    def line(self) -> str:
        """One line for the list of further mismatching rows."""
        text = (
            f"row {self.row}, slot {self.slot}: expected id {self.expected_id} "
            f"(w {_f(self.expected_weight)}), actual id {self.actual_id} (w {_f(self.actual_weight)})"
        )
        if self.kind == "id" and self.b_expected is not None and self.b_actual is not None:
            text += f"; b {_f(self.b_expected)} vs {_f(self.b_actual)}"
        if self.note:
            text += f"; {self.note}"
        return text


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.9g}"


@dataclass
class DiffReport:
    """The result of `compare`.

    ok: no mismatching row. num_rows: T. mismatched_rows: their indices. mismatched_slots: slots whose id
    or weight differ within the mismatching rows. mismatches: the worst slot of each mismatching row,
    worst first. shape_error: set when the outputs' shapes or dtypes differ (then every row mismatches).
    """

    num_rows: int
    mismatched_rows: list[int]
    mismatched_slots: int
    mismatches: list[SlotMismatch]
    config: Any
    dtype: torch.dtype
    bias_dtype: torch.dtype | None
    device: str
    seed: int | None
    shape_error: str | None = None
    accepted_tie_rows: list[int] = field(default_factory=list)
    weight_dtype: torch.dtype = torch.float32

    @property
    def ok(self) -> bool:
        return not self.mismatched_rows and self.shape_error is None

    def format(self, max_rows: int = 5) -> str:
        """The assert_close-style text: counts, the worst mismatch in full, config, inputs, further rows."""
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0:
            raise ValueError(f"max_rows={max_rows!r}, but max_rows must be an int >= 0")
        dtype = str(self.dtype).replace("torch.", "")
        bias = "none" if self.bias_dtype is None else str(self.bias_dtype).replace("torch.", "")
        tail = [
            f"Config: {format_config(self.config)}",
            f"Inputs: scores {dtype}[{self.num_rows}, {self.config.num_experts}], bias {bias}, "
            f"device {self.device}, seed {self.seed}",
        ]
        if self.ok:
            return "\n".join([f"Routing matches: {self.num_rows} rows", *tail])
        if self.shape_error is not None:
            return "\n".join([f"Mismatched routing output: {self.shape_error}", *tail])
        n = len(self.mismatched_rows)
        pct = 100.0 * n / max(1, self.num_rows)
        lines = [
            f"Mismatched routing: {n} / {self.num_rows} rows ({pct:.2f}%), {self.mismatched_slots} slots"
        ]
        worst = self.mismatches[0]
        lines.append(f"Worst mismatch: row {worst.row}, slot {worst.slot} ({worst.kind})")
        lines.append(f"  id:     expected {worst.expected_id}, actual {worst.actual_id}")
        if worst.b_expected is not None and worst.b_actual is not None:
            gap = abs(worst.b_expected - worst.b_actual)
            b_tol = float(tolerances.tie_width(torch.tensor(worst.b_expected), torch.tensor(worst.b_actual)))
            verdict = "within" if worst.kind == "oracle" else ">"
            lines.append(
                f"  b:      b[{worst.expected_id}] = {_f(worst.b_expected)}, b[{worst.actual_id}] = "
                f"{_f(worst.b_actual)} (difference {gap:.3g} {verdict} tie tolerance {b_tol:.3g})"
            )
        w_rtol, w_atol = tolerances.weight_tolerance(self.dtype)
        w_tol = w_atol + w_rtol * abs(worst.expected_weight)
        w_diff = abs(worst.actual_weight - worst.expected_weight)
        how = f"tolerance {w_tol:.3g} = {w_atol:g} + {w_rtol:g} * |expected|"
        if self.weight_dtype != torch.float32:
            how = (
                f"tolerance {worst.tolerance:.3g}: {w_atol:g} + {w_rtol:g} * |expected|, rounded into "
                f"{str(self.weight_dtype).replace('torch.', '')} (the weights' dtype)"
            )
        lines.append(
            f"  weight: expected {_f(worst.expected_weight)}, actual {_f(worst.actual_weight)} "
            f"(difference {w_diff:.3g}, {how})"
        )
        if worst.note:
            lines.append(f"  note:   {worst.note}")
        lines.extend(tail)
        rest = self.mismatches[1:]
        if rest and max_rows > 0:
            lines.append(f"Further mismatching rows ({len(rest)} more):")
            lines.extend(f"  {m.line()}" for m in rest[:max_rows])
            if len(rest) > max_rows:
                lines.append(f"  ... and {len(rest) - max_rows} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: counts, rows, mismatches, config, dtypes, seed."""
        return {
            "ok": self.ok,
            "num_rows": self.num_rows,
            "mismatched_rows": list(self.mismatched_rows),
            "mismatched_slots": self.mismatched_slots,
            "mismatches": [
                {
                    k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in asdict(m).items()
                }
                for m in self.mismatches
            ],
            "accepted_tie_rows": list(self.accepted_tie_rows),
            "config": self.config.to_dict(),
            "dtype": str(self.dtype).replace("torch.", ""),
            "bias_dtype": None if self.bias_dtype is None else str(self.bias_dtype).replace("torch.", ""),
            "device": self.device,
            "seed": self.seed,
            "shape_error": self.shape_error,
            "weight_dtype": str(self.weight_dtype).replace("torch.", ""),
        }


def _check_pair(name: str, value: Any) -> Routing:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"{name} is a {type(value).__name__}, but {name} must be an (ids, weights) pair")
    ids, weights = value
    for what, t in (("ids", ids), ("weights", weights)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} {what} is a {type(t).__name__}, but must be a torch.Tensor")
    return ids, weights


def compare(
    problem: RoutingProblem,
    expected: Routing,
    actual: Routing,
    *,
    tie_rows: torch.Tensor | None = None,
    seed: int | None = None,
    actual_ok_rows: torch.Tensor | None = None,
    weight_dtype: torch.dtype = torch.float32,
    expected_rounded: bool = False,
) -> DiffReport:
    """Compare `actual` routing output with `expected` (normally the reference's) on `problem`.

    Args:
        problem: the inputs; config, scores [T, E], bias [E] or None.
        expected, actual: (topk_ids int32 [T, W], topk_weights float32 [T, W]) pairs, any device.
        tie_rows: [T] bool, rows whose selection involves a near-tie (fixtures store them); default
            `oracle.tie_rows(problem)`, computed only when some ids differ.
        seed: printed in the report (default: problem.seed).
        actual_ok_rows: [T] bool, the rows of `actual` already judged valid by the oracle (the metamorphic
            relations judge a transformed problem); default: `oracle.judge(problem, *actual)`.
        weight_dtype: the dtype `actual`'s implementation wrote its weights in (`oracle.check_routing`);
            a weight is then right when it lies between the rounded ends of the tolerance interval.
        expected_rounded: `expected` was written by the same implementation in `weight_dtype` (a relation
            comparing two calls): one ulp of `weight_dtype` more on each side.

    Returns:
        A DiffReport; `.ok` is True when every row matches (tie-aware).
    """
    if not isinstance(problem, RoutingProblem):
        raise TypeError(f"problem is a {type(problem).__name__}, but problem must be a RoutingProblem")
    exp_ids, exp_w = _check_pair("expected", expected)
    act_ids, act_w = _check_pair("actual", actual)
    config = problem.config
    T, E, K = problem.num_rows, config.num_experts, config.topk
    report = DiffReport(
        num_rows=T,
        mismatched_rows=[],
        mismatched_slots=0,
        mismatches=[],
        config=config,
        dtype=problem.dtype,
        bias_dtype=None if problem.bias is None else problem.bias.dtype,
        device=str(problem.device),
        seed=problem.seed if seed is None else seed,
        weight_dtype=tolerances.check_weight_dtype(weight_dtype),
    )
    for name, t in (("tie_rows", tie_rows), ("actual_ok_rows", actual_ok_rows)):
        if t is not None and (not isinstance(t, torch.Tensor) or tuple(t.shape) != (T,)):
            raise ValueError(
                f"{name} has shape {getattr(t, 'shape', None)}, but {name} must be a [T] = [{T}] tensor"
            )
    shape = (T, config.output_width)
    problems = []
    for name, t, dtype in (
        ("expected ids", exp_ids, torch.int32),
        ("expected weights", exp_w, torch.float32),
        ("actual ids", act_ids, torch.int32),
        ("actual weights", act_w, torch.float32),
    ):
        if tuple(t.shape) != shape:
            problems.append(f"{name} shape {tuple(t.shape)} != {shape}")
        elif t.dtype != dtype:
            problems.append(f"{name} dtype {t.dtype} != {dtype}")
    if problems:
        report.shape_error = "; ".join(problems)
        report.mismatched_rows = list(range(T))
        return report
    if T == 0:
        return report

    exp_ids = exp_ids.detach().to("cpu", torch.int64)
    act_ids = act_ids.detach().to("cpu", torch.int64)
    exp_w = exp_w.detach().to("cpu", torch.float64)
    act_w = act_w.detach().to("cpu", torch.float64)
    lo, hi = tolerances.weight_bounds(exp_w, problem.dtype, weight_dtype, expected_rounded=expected_rounded)
    w_tol = torch.maximum(exp_w - lo, hi - exp_w)
    diff_w = ~((act_w >= lo) & (act_w <= hi))
    diff_id = exp_ids != act_ids
    rows_id_diff = diff_id.any(-1)

    sc = oracle.read_scores(problem) if bool(rows_id_diff.any()) or bool(diff_w.any()) else None
    b_exp = b_act = None
    in_range = torch.zeros(T, K, dtype=torch.bool)
    accepted = torch.zeros(T, dtype=torch.bool)
    tie_ok = torch.zeros(T, dtype=torch.bool)
    oracle_notes: dict[int, str] = {}
    if sc is not None:
        e_ids, a_ids = exp_ids[:, :K], act_ids[:, :K]
        in_range = (e_ids >= 0) & (e_ids < E) & (a_ids >= 0) & (a_ids < E)
        b_exp = torch.gather(sc.b, 1, e_ids.clamp(0, E - 1))
        b_act = torch.gather(sc.b, 1, a_ids.clamp(0, E - 1))
        if rows_id_diff.any():
            slot_ok = ~diff_id
            slot_ok[:, :K] |= in_range & tolerances.near_tie(b_exp, b_act)
            flagged = oracle.tie_rows(problem) if tie_rows is None else tie_rows.to("cpu", torch.bool)
            tie_ok = slot_ok.all(-1) | flagged
            if actual_ok_rows is None:
                violations, bad = oracle.judge(
                    problem, act_ids.to(torch.int32), act_w.to(torch.float32), weight_dtype=weight_dtype
                )
                for v in violations:
                    if v.row is not None:
                        oracle_notes.setdefault(v.row, f"oracle: {v}")
                oracle_ok = ~bad
            else:
                oracle_ok = actual_ok_rows.to("cpu", torch.bool)
            accepted = rows_id_diff & tie_ok & oracle_ok
            for row in (rows_id_diff & tie_ok & ~oracle_ok).nonzero().flatten().tolist():
                oracle_notes.setdefault(row, "the oracle rejects the actual row")

    bad_rows = (rows_id_diff & ~accepted) | (~rows_id_diff & diff_w.any(-1))
    report.accepted_tie_rows = accepted.nonzero().flatten().tolist()
    report.mismatched_rows = bad_rows.nonzero().flatten().tolist()
    slot_bad = torch.where(rows_id_diff[:, None], diff_id, diff_w) & bad_rows[:, None]
    report.mismatched_slots = int(slot_bad.sum())
    mismatches = []
    for row in report.mismatched_rows:
        candidates = []
        for slot in slot_bad[row].nonzero().flatten().tolist():
            routed_in_range = slot < K and bool(in_range[row, slot]) and b_exp is not None
            kind = "weight"
            if bool(diff_id[row, slot]):
                kind = "oracle" if bool(tie_ok[row]) else "id"
            candidates.append(
                SlotMismatch(
                    row=row,
                    slot=slot,
                    kind=kind,
                    expected_id=int(exp_ids[row, slot]),
                    actual_id=int(act_ids[row, slot]),
                    expected_weight=float(exp_w[row, slot]),
                    actual_weight=float(act_w[row, slot]),
                    b_expected=float(b_exp[row, slot]) if routed_in_range else None,
                    b_actual=float(b_act[row, slot]) if routed_in_range else None,
                    tolerance=float(w_tol[row, slot]),
                    note=oracle_notes.get(row, "") if kind != "weight" else "",
                )
            )
        mismatches.append(max(candidates, key=lambda m: m.severity))
    report.mismatches = sorted(mismatches, key=lambda m: -m.severity)
    return report


def assert_routing_close(problem: RoutingProblem, expected: Routing, actual: Routing, **kwargs: Any) -> None:
    """Raise AssertionError with `compare(...).format()` as the message when the outputs mismatch.

    kwargs: passed to `compare` (tie_rows, seed, actual_ok_rows).
    """
    report = compare(problem, expected, actual, **kwargs)
    if not report.ok:
        raise AssertionError(report.format())
