"""Failures a person can read: what broke in a property's shrunk counterexample, said once per root cause.

`verify` catches a failing property with its shrunk counterexample. This module turns that into a short
report (`summarize`): the oracle rules the implementation breaks on the counterexample (`diagnose` calls
it once more and judges the output with `oracle.judge`), the row that shows it slot by slot (the
implementation's ids and weights beside the reference's), the experts that matter with their logits, p,
bias and b, where the full example was saved and one command that replays it. Whole tensors go to saved
files (`save_failures`: a fixture set plus a self-contained replay script per property); `verbose=True`
brings them back to the terminal.

Several properties often fail for one bug (a wrong shared id breaks the oracle, the differential and every
relation that compares shared ids). `root_causes` groups them: two failures share a root cause when the
implementation raised the same exception, when the first oracle violation on their counterexamples is the
same rule on the same kind of slot (routed, shared, whole row; not for `determinism`, which no single
call explains), or, when neither has such a signature, when their counterexamples are identical. The first
in PROPERTIES order is reported in full and the others say "same root cause as ...".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from . import oracle
from .problem import RoutingProblem, format_config, problem_literal

Impl = Callable[[torch.Tensor, torch.Tensor | None, Any], tuple[torch.Tensor, torch.Tensor]]

MAX_SLOTS_SHOWN = 16  # columns of the row table
MAX_EXPERTS_SHOWN = 8  # experts listed with their logits and scores
MAX_MESSAGE_LINES = 14  # lines of a property's own message in the short report
# Properties whose failure a SPEC violation of one call cannot explain (two calls on the same input
# differ): never grouped under an oracle rule, only with an identical exception or counterexample.
STANDALONE = ("determinism",)


@dataclass
class Diagnosis:
    """The oracle's verdict on one direct call of the implementation on a counterexample.

    violations: the oracle's violations (at most 1000 per rule; shrunk examples are small).
    actual: the implementation's (ids int32 [T, W], weights float32 [T, W]) on the CPU, or None when it
        raised or returned something else (then `error` says what).
    expected: the reference's output on the same problem (CPU), or None when the reference raised.
    """

    violations: list[oracle.Violation] = field(default_factory=list)
    actual: tuple[torch.Tensor, torch.Tensor] | None = None
    expected: tuple[torch.Tensor, torch.Tensor] | None = None
    error: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Violations per oracle rule, in check order."""
        out: dict[str, int] = {}
        for v in self.violations:
            out[v.rule] = out.get(v.rule, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "counts": self.counts,
            "violations": [
                {"rule": v.rule, "row": v.row, "slot": v.slot, "message": v.message}
                for v in self.violations[:50]
            ],
        }


def diagnose(
    impl: Impl,
    problem: RoutingProblem,
    device: str | torch.device = "cpu",
    weight_dtype: torch.dtype = torch.float32,
) -> Diagnosis:
    """Call `impl` once on `problem` (moved to `device`) and judge the output with the oracle.

    problem: a RoutingProblem (any device); the oracle and the reference run on the CPU.
    weight_dtype: the dtype the implementation writes weights in (its contract's), as the oracle needs it.
    Never raises for the implementation's sake: an exception or a malformed return goes into `error`.
    """
    from moegate.reference import route as reference_route

    cpu = problem.to("cpu")
    diag = Diagnosis()
    try:
        out = impl(*_args(problem.to(device)))
        if not isinstance(out, tuple | list) or len(out) != 2:
            raise TypeError(f"impl returned a {type(out).__name__}, not (topk_ids, topk_weights)")
        ids, weights = out
        if not isinstance(ids, torch.Tensor) or not isinstance(weights, torch.Tensor):
            raise TypeError("impl must return two torch.Tensors (topk_ids, topk_weights)")
        diag.actual = (ids.detach().to("cpu"), weights.detach().to("cpu"))
    except Exception as exc:
        diag.error = f"{type(exc).__name__}: {exc}"
    if diag.actual is not None:
        diag.violations, _ = oracle.judge(cpu, *diag.actual, max_per_rule=1000, weight_dtype=weight_dtype)
    try:
        diag.expected = reference_route(cpu.scores, cpu.bias, cpu.config)
    except Exception:  # the reference rejects the input: nothing to show beside the actual output
        diag.expected = None
    return diag


def _args(problem: RoutingProblem) -> tuple[torch.Tensor, torch.Tensor | None, Any]:
    return problem.scores, problem.bias, problem.config


# ---- root causes ---------------------------------------------------------------------------------------


def _slot_kind(problem: RoutingProblem | None, slot: int | None) -> str:
    if slot is None or problem is None:
        return "row"
    return "shared slot" if slot >= problem.config.topk else "routed slot"


def root_cause_key(result: Any) -> tuple[str, ...] | None:
    """A failure's root-cause signature, or None when it stands alone.

    result: a `suite.PropertyResult`. ("raised", type, first line) for an exception; ("oracle", rule, slot
    kind) for the first oracle violation on the counterexample; None otherwise.
    """
    if result.ok:
        return None
    if result.error_type is not None:
        first = (result.message or "").strip().splitlines()
        return ("raised", result.error_type, first[-1] if first else "")
    diag = result.diagnosis
    if result.name in STANDALONE:
        return None
    if diag is not None and diag.violations:
        v = diag.violations[0]
        return ("oracle", v.rule, _slot_kind(result.counterexample, v.slot))
    if diag is not None and diag.error is not None:
        return ("raised", *diag.error.split(": ", 1)[:1], diag.error)
    return None


def _same_problem(a: RoutingProblem | None, b: RoutingProblem | None) -> bool:
    if a is None or b is None or a.config != b.config or a.scores.shape != b.scores.shape:
        return False
    if a.scores.dtype != b.scores.dtype or (a.bias is None) != (b.bias is None):
        return False
    same_scores = torch.equal(a.scores.cpu().float().nan_to_num(7.0), b.scores.cpu().float().nan_to_num(7.0))
    if a.bias is None or b.bias is None:
        return same_scores
    return same_scores and torch.equal(
        a.bias.cpu().float().nan_to_num(7.0), b.bias.cpu().float().nan_to_num(7.0)
    )


def describe_key(key: tuple[str, ...]) -> str:
    """Words for a root-cause key: "[id_range] on a shared slot", "ValueError: ..."."""
    if key[0] == "oracle":
        return f"[{key[1]}] on a {key[2]}" if key[2] != "row" else f"[{key[1]}]"
    return key[2] if len(key) > 2 and key[2] else key[1]


def root_causes(results: Sequence[Any]) -> dict[str, str]:
    """For each failed result's name, the name of the first failed result with the same root cause (itself
    when it is the first). results: `suite.PropertyResult`s in report order."""
    primary: dict[str, str] = {}
    seen: list[tuple[tuple[str, ...] | None, Any]] = []
    for r in results:
        if r.ok:
            continue
        key = root_cause_key(r)
        match = next(
            (
                first
                for k, first in seen
                if k == key and (key is not None or _same_problem(r.counterexample, first.counterexample))
            ),
            None,
        )
        primary[r.name] = r.name if match is None else match.name
        if match is None:
            seen.append((key, r))
    return primary


# ---- the short report ----------------------------------------------------------------------------------


def _f(v: float) -> str:
    return f"{v:.6g}"


def _example_line(problem: RoutingProblem) -> str:
    dtype = str(problem.dtype).replace("torch.", "")
    bias = "none" if problem.bias is None else str(problem.bias.dtype).replace("torch.", "")
    note = f" ({problem.note})" if problem.note else ""
    return (
        f"example: {format_config(problem.config)}, scores {dtype}[{problem.num_rows}, "
        f"{problem.config.num_experts}], bias {bias}{note}"
    )


def _focus_row(diag: Diagnosis, problem: RoutingProblem) -> int | None:
    if problem.num_rows == 0:
        return None
    rows = [v.row for v in diag.violations if v.row is not None]
    if rows:
        return rows[0]
    if (
        diag.actual is not None
        and diag.expected is not None
        and diag.actual[0].shape == diag.expected[0].shape
    ):
        differ = (diag.actual[0] != diag.expected[0]).any(-1) | (diag.actual[1] != diag.expected[1]).any(-1)
        if differ.any():
            return int(differ.nonzero()[0])
    return 0


def _row_table(diag: Diagnosis, problem: RoutingProblem, row: int) -> list[str]:
    """impl and reference ids and weights of one row, slot by slot; '*' marks a slot where they differ."""
    if diag.actual is None:
        return []
    K = problem.config.topk
    ids, w = diag.actual
    if ids.dim() != 2 or w.shape != ids.shape or ids.shape[0] <= row:
        return [f"  output shapes: ids {tuple(ids.shape)}, weights {tuple(w.shape)}"]
    width = min(ids.shape[1], MAX_SLOTS_SHOWN)
    rows: list[tuple[str, list[str]]] = [("slot", [("s" if s >= K else "") + str(s) for s in range(width)])]
    exp = diag.expected
    same_shape = exp is not None and exp[0].shape == ids.shape
    a_ids, a_w = ids[row].tolist(), w[row].tolist()
    e_ids = exp[0][row].tolist() if same_shape else None
    e_w = exp[1][row].tolist() if same_shape else None
    rows.append(
        ("impl id", [str(a_ids[s]) + ("*" if e_ids and a_ids[s] != e_ids[s] else "") for s in range(width)])
    )
    if e_ids is not None:
        rows.append(("ref id", [str(e_ids[s]) for s in range(width)]))
    rows.append(
        (
            "impl w",
            [_f(a_w[s]) + ("*" if e_w and abs(a_w[s] - e_w[s]) > 1e-5 * max(1.0, abs(e_w[s])) else "")
             for s in range(width)],
        )
    )  # fmt: skip
    if e_w is not None:
        rows.append(("ref w", [_f(e_w[s]) for s in range(width)]))
    cols = [max(len(r[1][s]) for r in rows) for s in range(width)]
    lines = [f"  row {row} (s: shared slot; *: differs from the reference):"]
    for label, cells in rows:
        lines.append(f"    {label:<8}" + " ".join(c.rjust(n) for c, n in zip(cells, cols, strict=True)))
    if ids.shape[1] > width:
        lines.append(f"    ... {ids.shape[1] - width} more slots")
    return lines


def _experts_table(diag: Diagnosis, problem: RoutingProblem, row: int) -> list[str]:
    """The routed experts where the implementation and the reference disagree, with x, p, bias, b."""
    if diag.actual is None or diag.expected is None or diag.actual[0].shape != diag.expected[0].shape:
        return []
    config = problem.config
    E, K, n = config.num_experts, config.topk, config.experts_per_group
    a = [e for e in diag.actual[0][row, :K].tolist() if 0 <= e < E]
    e = [x for x in diag.expected[0][row, :K].tolist() if 0 <= x < E]
    only_a, only_e = [x for x in a if x not in e], [x for x in e if x not in a]
    experts = (only_a + only_e)[:MAX_EXPERTS_SHOWN]
    if not experts:
        return []
    sc = oracle.read_scores(problem.rows(row, row + 1))
    header = ("expert", "group", "logit", "p", "bias", "b", "routed by")
    cells = [
        (
            str(x),
            str(x // n),
            _f(float(sc.x[0, x])),
            _f(float(sc.p[0, x])),
            _f(float(sc.bias[x])),
            _f(float(sc.b[0, x])),
            "impl only" if x in only_a else "reference only",
        )
        for x in experts
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = [f"  experts routed by only one of impl and reference in row {row} (p, b in float64):"]
    for c in (header, *cells):
        lines.append("    " + "  ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    return lines


def _own_message(result: Any, max_lines: int, note_more: bool = True) -> list[str]:
    text = (result.message or result.failure or "").rstrip()
    lines = text.splitlines()
    if len(lines) > max_lines and not note_more:
        lines = lines[:max_lines]
    elif len(lines) > max_lines:
        lines = [
            *lines[:max_lines],
            f"... ({len(lines) - max_lines} more lines: --verbose, or the saved file)",
        ]
    return ["  " + line for line in lines]


def _where(result: Any, fallback_replay: str | None) -> list[str]:
    lines = []
    if result.saved_case:
        lines.append(f"  full example saved: {result.saved_case}")
    replay = result.replay_command or fallback_replay
    if replay:
        lines.append(f"  replay: {replay}")
    return lines


def summarize(result: Any, *, primary: str | None = None, fallback_replay: str | None = None) -> str:
    """The short report of one failed property (a `suite.PropertyResult`).

    primary: the name of the property whose failure has the same root cause and is reported in full
        (None or the result's own name: this one is reported in full).
    fallback_replay: the replay to print when none was saved (e.g. the verify() call).
    """
    problem = result.counterexample
    dtype = "" if problem is None else str(problem.dtype).replace("torch.", "")
    rows = "" if problem is None else f", {problem.num_rows} row{'s' if problem.num_rows != 1 else ''}"
    head = f"FAIL {result.name} ({dtype} example{rows})" if problem is not None else f"FAIL {result.name}"
    diag: Diagnosis | None = result.diagnosis
    if primary is not None and primary != result.name:
        key = root_cause_key(result)
        cause = f" ({describe_key(key)})" if key is not None else " (the same counterexample)"
        first = [] if key is not None and key[0] == "raised" else _own_message(result, 2, note_more=False)
        return "\n".join(
            [f"{head}: same root cause as {primary}{cause}", *first, *_where(result, fallback_replay)]
        )
    lines: list[str] = []
    if result.error_type is not None:
        lines.append(f"{head}: the implementation raised {result.error_type}")
        lines += _own_message(result, MAX_MESSAGE_LINES)
    elif diag is not None and diag.violations:
        counts = diag.counts
        rules = ", ".join(f"{rule} x{c}" for rule, c in counts.items())
        lines.append(f"{head}: SPEC broken on the counterexample: {rules}")
        if problem is not None:
            lines.append("  " + _example_line(problem))
        by_rule: dict[str, list[oracle.Violation]] = {}
        for v in diag.violations:
            by_rule.setdefault(v.rule, []).append(v)
        for found in by_rule.values():
            more = f"   (+{len(found) - 1} more)" if len(found) > 1 else ""
            lines.append(f"  {found[0]}{more}")
        if result.name != "oracle":
            own = _own_message(result, 4)
            lines += ["  the property's own check said:", *("  " + line for line in own)]
    else:
        lines.append(f"{head}")
        if problem is not None:
            lines.append("  " + _example_line(problem))
        lines += _own_message(result, MAX_MESSAGE_LINES)
        if diag is not None and diag.actual is not None and not diag.violations:
            lines.append("  (a single call on this example obeys SPEC: the bug shows only across calls)")
    if diag is not None and problem is not None:
        row = _focus_row(diag, problem)
        if row is not None:
            lines += _row_table(diag, problem, row)
            lines += _experts_table(diag, problem, row)
    lines += _where(result, fallback_replay)
    return "\n".join(lines)


def format_failures(
    results: Sequence[Any], *, verbose: bool = False, replay_hint: Callable[[Any], str] | None = None
) -> list[str]:
    """The failure section of a report: one block per failed property, root causes said once.

    verbose: append each failure's full text (Hypothesis' falsifying example with whole tensors) and its
        Python replay snippet.
    replay_hint: result -> replay text, used when a result has no saved replay command.
    """
    failed = [r for r in results if not r.ok]
    if not failed:
        return []
    primary = root_causes(results)
    causes = sorted(set(primary.values()), key=[r.name for r in failed].index)
    lines = [
        "",
        f"{len(failed)} propert{'y' if len(failed) == 1 else 'ies'} failed, "
        f"{len(causes)} root cause{'s' if len(causes) != 1 else ''} "
        f"({', '.join(causes)})" + ("" if verbose else "; whole tensors: --verbose or the saved files"),
    ]
    for r in failed:
        lines += [
            "",
            summarize(r, primary=primary[r.name], fallback_replay=replay_hint(r) if replay_hint else None),
        ]
        if verbose:
            lines += ["  --- full failure ---", r.failure or ""]
            if r.replay:
                lines += ["  --- replay snippet ---", r.replay]
    return lines


# ---- saving the full examples --------------------------------------------------------------------------


def timestamp_dir(root: Path) -> Path:
    """A new folder root/<UTC time> (with -2, -3, ... when it exists)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    return path


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name) or "counterexample"


def impl_spec(impl: Impl, name: str | None) -> str | None:
    """A spelling `load_impl` can load for `impl`: `name` when it loads, else module:qualname, else None."""
    from .impls import load_impl

    for spec in (name, _qualified(impl)):
        if not spec:
            continue
        try:
            load_impl(spec)
        except (ValueError, TypeError):
            continue
        return spec
    return None


def _qualified(impl: Impl) -> str | None:
    module, qualname = getattr(impl, "__module__", None), getattr(impl, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    return f"{module}:{qualname}"


def _absolute_spec(spec: str) -> str:
    module, sep, attr = spec.rpartition(":")
    if sep and (module.endswith(".py") or "/" in module or os.sep in module):
        return f"{Path(module).resolve()}:{attr}"
    return spec


def replay_script(result: Any, spec: str | None, device: str, context: str) -> str:
    """A self-contained Python script that rebuilds `result`'s counterexample exactly and runs the
    failing property on it through `replay_property` (exit status 1 while the failure reproduces)."""
    problem = result.counterexample
    impl_line = (
        f"IMPL = {_absolute_spec(spec)!r}"
        if spec
        else "IMPL = None  # set to 'module:function' (or a callable): the implementation verified"
    )
    return "\n".join(
        [
            f'"""Replay of the shrunk counterexample of property {result.name!r}: {context}.',
            "",
            "Run it from any directory: it rebuilds the example exactly (whole tensors below), runs the",
            "property on it and prints what broke; exit status 1 while the failure reproduces, 0 once fixed.",
            '"""',
            "import sys",
            "",
            problem_literal(problem).rstrip(),
            "from moegate.properties.failures import replay_property",
            "from moegate.properties.problem import RoutingProblem",
            "",
            f"sys.path.insert(0, {os.getcwd()!r})  # where verify ran, so that IMPL imports as it did",
            impl_line,
            f"DEVICE = {device!r}",
            "problem = RoutingProblem(config, scores, bias)",
            f"sys.exit(replay_property({result.name!r}, IMPL, problem, seed={result.aux}, device=DEVICE))",
            "",
        ]
    )


def replay_property(
    name: str, impl: Impl | str | None, problem: RoutingProblem, *, seed: int = 0, device: str = "cpu"
) -> int:
    """Run property `name` on `problem` through `impl` (a callable or a `load_impl` spelling) on `device`;
    print PASS, or the short report of what broke. Returns the exit status: 1 when it fails, else 0."""
    from .impls import load_impl
    from .suite import PROPERTIES, PropertyResult

    if impl is None:
        print("set IMPL in this script to your implementation ('module:function' or a callable)")
        return 2
    loaded = load_impl(impl) if isinstance(impl, str) else None
    fn = loaded.fn if loaded is not None else impl
    contract = loaded.contract if loaded is not None else getattr(impl, "contract", None)
    weight_dtype = torch.float32 if contract is None else contract.weight_dtype(problem.dtype)
    if name not in PROPERTIES:
        raise ValueError(f"name={name!r}, but it must be one of {tuple(PROPERTIES)}")
    try:
        PROPERTIES[name](fn, problem.to(device), seed, contract)
    except Exception as exc:
        crashed = not isinstance(exc, AssertionError)
        message = f"{type(exc).__name__}: {exc}" if crashed else str(exc)
        result = PropertyResult(name, 1, 0, 1, 0.0, failure=message, counterexample=problem)
        result.message, result.aux = message, seed
        result.error_type = type(exc).__name__ if crashed else None
        result.diagnosis = diagnose(fn, problem, device, weight_dtype)
        print(summarize(result))
        return 1
    print(f"PASS {name}: the counterexample no longer fails")
    return 0


@dataclass
class SavedFailures:
    """Where `save_failures` put the counterexamples: a fixture set folder (None when nothing was saved)
    and messages for counterexamples that could not be saved."""

    directory: Path | None
    errors: list[str]


def save_failures(
    results: Sequence[Any],
    impl: Impl,
    impl_name: str | None,
    device: str,
    root: str | Path,
    *,
    context: str = "",
    case_names: dict[str, str] | None = None,
    directory: Path | None = None,
) -> SavedFailures:
    """Save every failed result's shrunk counterexample as one fixture set in a new folder under `root`
    (expected outputs from the reference, the implementation's output and the short report in each case's
    metadata) and, beside each case, `<case>.py`: a replay script with the whole tensors.

    Sets each saved result's `saved_case` and `replay_command`. results: `suite.PropertyResult`s.
    case_names: property name -> case name (default: the property name). directory: the folder to use
        instead of a new timestamped one under root.
    """
    from . import fixtures as fx
    from .impls import load_impl

    reference = load_impl("reference")
    failed = [r for r in results if not r.ok and r.counterexample is not None]
    if not failed:
        return SavedFailures(None, [])
    spec = impl_spec(impl, impl_name)
    primary = root_causes(results)
    out_dir = directory if directory is not None else timestamp_dir(Path(root))
    cases, errors, scripts = [], [], []
    for r in failed:
        name = _safe_name((case_names or {}).get(r.name, r.name))
        meta = {
            "property": r.name,
            "failure": summarize(r, primary=primary.get(r.name)),
            "verified_impl": spec or "",
        }
        diag = r.diagnosis
        if diag is not None and diag.actual is not None:
            meta["actual_ids"] = json.dumps(diag.actual[0].tolist())
            meta["actual_weights"] = json.dumps(diag.actual[1].tolist())
        try:
            cases.append(fx.record_case(name, r.counterexample, reference, device="cpu", extra_meta=meta))
        except Exception as exc:  # the reference itself may reject the counterexample: say so
            errors.append(f"{r.name}: counterexample not saved ({type(exc).__name__}: {exc})")
            continue
        scripts.append((r, name))
    if not cases:
        return SavedFailures(None, errors)
    fx.write_fixture_set(out_dir, cases, description=f"shrunk counterexamples: {context}")
    for r, name in scripts:
        script = out_dir / f"{name}.py"
        script.write_text(replay_script(r, spec, device, context))
        r.saved_case = str(out_dir / f"{name}.safetensors")
        r.replay_command = f"python {script}"
    return SavedFailures(out_dir, errors)
