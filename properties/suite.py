"""`verify(impl)`: the property suite (oracle, differential vs the reference, metamorphic relations) run with
Hypothesis against any routing implementation `impl(scores, bias, config) -> (topk_ids, topk_weights)`.

A user's kernel (SGLang, vLLM, FlashInfer, TensorRT-LLM) needs only an adapter with that signature.
Problems are drawn on CPU and moved to `device` before `impl` is called; the reference runs on the same
device; the oracle judges on CPU. An exception raised by `impl` is a failure, reported like any other.

Profiles (registered with Hypothesis once, on import, as "moegate-ci", "moegate-dev", "moegate-deep"; chosen
by `profile=`, else the environment variable MOEGATE_PROFILE, else the moegate profile Hypothesis has
loaded, else "ci"). Example counts are per property:

    ci    derandomized, 100 examples per property, T <= 16: the CPU CI run and the mutant panel
    dev   200 examples per property, T <= 64, random, with the example database (local work)
    deep  1500 examples per property (10,500 per dtype), T <= 32, random: the GPU run

The scale property (scale.py) routes one large batch per example (past 2^32 / E rows on a GPU, past 2^21
elements on the CPU) and runs at most 4 examples (12 in deep).

In pytest, tests/conftest.py calls `load_profile()` (moegate-ci unless $MOEGATE_PROFILE says otherwise) and
Hypothesis' own option overrides it, for @given tests and for verify() alike:
`pytest --hypothesis-profile=moegate-deep`.
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from moegate.reference import SCORE_DTYPES, RoutingConfig, get_preset
from moegate.reference import route as reference_route

from . import differential, failures, metamorphic, oracle, scale
from .peers.contract import Contract, contract_configs
from .problem import RoutingProblem, format_config, problem_literal
from .strategies import BIAS_KINDS, move_problem, parse_dtypes, routing_problems

Impl = Callable[[torch.Tensor, torch.Tensor | None, RoutingConfig], tuple[torch.Tensor, torch.Tensor]]
Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class Profile:
    """A verify profile: Hypothesis settings name, examples per property, largest T, and the examples of
    the scale property (each routes one large batch: `scale.py`)."""

    name: str
    hypothesis_name: str
    examples: int
    max_rows: int
    derandomize: bool
    use_database: bool
    scale_examples: int = 4


PROFILES: dict[str, Profile] = {
    "ci": Profile("ci", "moegate-ci", examples=100, max_rows=16, derandomize=True, use_database=False),
    "dev": Profile("dev", "moegate-dev", examples=200, max_rows=64, derandomize=False, use_database=True),
    "deep": Profile(
        "deep",
        "moegate-deep",
        examples=1500,
        max_rows=32,
        derandomize=False,
        use_database=False,
        scale_examples=12,
    ),
}
PROFILE_ENV = "MOEGATE_PROFILE"

_SUPPRESSED = (
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
)


def register_profiles() -> None:
    """Register the Hypothesis profiles "moegate-ci", "moegate-dev", "moegate-deep" (idempotent).

    Each derives from Hypothesis' own "default" profile, not from the active one: under a CI environment
    variable Hypothesis makes its "ci" profile (derandomized, no example database) the active one, and
    moegate's profiles must mean the same there as on a laptop (dev keeps its database, dev and deep stay
    random).
    """
    base = settings.get_profile("default")
    for p in PROFILES.values():
        kwargs: dict[str, Any] = {}
        if not p.use_database:
            kwargs["database"] = None
        settings.register_profile(
            p.hypothesis_name,
            parent=base,
            max_examples=p.examples,
            derandomize=p.derandomize,
            deadline=None,
            print_blob=True,
            suppress_health_check=_SUPPRESSED,
            **kwargs,
        )


register_profiles()


def resolve_profile(profile: str | None = None) -> Profile:
    """The Profile named `profile` ("ci", "dev", "deep", or "moegate-<name>"); when None: $MOEGATE_PROFILE,
    else the moegate profile Hypothesis has loaded (pytest --hypothesis-profile=moegate-deep), else ci."""
    if profile is not None:
        name, source = profile, "profile"
    elif os.environ.get(PROFILE_ENV):
        name, source = os.environ[PROFILE_ENV], f"${PROFILE_ENV}"
    else:
        current = getattr(settings, "_current_profile", None)
        loaded = [p for p in PROFILES.values() if p.hypothesis_name == current]
        return loaded[0] if loaded else PROFILES["ci"]
    if not isinstance(name, str):
        raise TypeError(f"profile={profile!r} ({type(profile).__name__}), but profile must be a str or None")
    key = name.strip().lower().removeprefix("moegate-")
    if key not in PROFILES:
        raise ValueError(f"{source}={name!r}, but the profile must be one of {tuple(PROFILES)}")
    return PROFILES[key]


def load_profile(profile: str | None = None) -> Profile:
    """Load the moegate Hypothesis profile (`resolve_profile(profile)`) as Hypothesis' current profile, so
    that @given tests use it; returns it. tests/conftest.py calls this once; pytest's
    `--hypothesis-profile=moegate-<name>` still overrides it afterwards."""
    chosen = resolve_profile(profile)
    settings.load_profile(chosen.hypothesis_name)
    return chosen


# ---- the properties ------------------------------------------------------------------------------------


def _call(impl: Impl, problem: RoutingProblem) -> tuple[torch.Tensor, torch.Tensor]:
    return metamorphic._call(impl, problem)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype == torch.float32:
        return torch.equal(a.contiguous().view(torch.int32), b.contiguous().view(torch.int32))
    return torch.equal(a.contiguous().view(torch.int16), b.contiguous().view(torch.int16))


def _weight_dtype(problem: RoutingProblem, contract: Contract | None) -> torch.dtype:
    return torch.float32 if contract is None else contract.weight_dtype(problem.dtype)


def check_oracle(impl: Impl, problem: RoutingProblem, seed: int, contract: Contract | None = None) -> None:
    """The output obeys SPEC.md (oracle.check_routing), is on the scores' device, and the inputs are
    left unchanged. With a contract, weights are judged at the precision it writes them in."""
    del seed
    scores_before = problem.scores.clone()
    bias_before = None if problem.bias is None else problem.bias.clone()
    ids, weights = _call(impl, problem)
    problems = []
    if not _same_bits(scores_before, problem.scores) or (
        bias_before is not None and not _same_bits(bias_before, problem.bias)
    ):
        problems.append("[inputs] impl modified scores or bias in place (they are read only)")
    for name, t in (("topk_ids", ids), ("topk_weights", weights)):
        if t.device != problem.device:
            problems.append(f"[output_format] {name} is on {t.device}, but must be on the scores' device")
    violations = oracle.check_routing(problem, ids, weights, weight_dtype=_weight_dtype(problem, contract))
    # Up to 4 per rule, so that every broken rule shows (the invariant comes last in check order).
    by_rule: dict[str, list[oracle.Violation]] = {}
    for v in violations:
        by_rule.setdefault(v.rule, []).append(v)
    for rule, found in by_rule.items():
        problems.extend(str(v) for v in found[:4])
        if len(found) > 4:
            problems.append(f"... and {len(found) - 4} more listed [{rule}] violations")
    if problems:
        counts = ", ".join(f"{rule}: {len(found)}" for rule, found in by_rule.items())
        raise AssertionError(f"SPEC violations ({counts or 'see below'}):\n" + "\n".join(problems))


def check_differential(
    impl: Impl, problem: RoutingProblem, seed: int, contract: Contract | None = None
) -> None:
    """The output matches the reference's on the same device (tie-aware), within the weight tolerance
    (rounded into the weights' dtype for a contract that writes them narrower)."""
    del seed
    expected = reference_route(problem.scores, problem.bias, problem.config)
    actual = _call(impl, problem)
    differential.assert_routing_close(
        problem, expected, actual, weight_dtype=_weight_dtype(problem, contract)
    )


def _relation(name: str) -> Callable[..., None]:
    relation = metamorphic.RELATIONS[name]

    def check(impl: Impl, problem: RoutingProblem, seed: int, contract: Contract | None = None) -> None:
        message = relation(impl, problem, seed, contract)
        if message is not None:
            raise AssertionError(message)

    check.__name__ = f"check_{name}"
    check.__doc__ = relation.__doc__
    return check


PROPERTIES: dict[str, Callable[..., None]] = {
    "oracle": check_oracle,
    "differential": check_differential,
    **{name: _relation(name) for name in metamorphic.RELATIONS},
    # Last: one large batch per example, at most the profile's scale_examples (scale.py).
    "scale": scale.check_scale,
}


# ---- results -------------------------------------------------------------------------------------------


@dataclass
class PropertyResult:
    """One property's run: examples called (generation and shrinking), how many passed and failed, the time,
    and for a failure its text, the shrunk counterexample (on CPU) and how to replay it."""

    name: str
    examples: int
    passed: int
    failed: int
    seconds: float
    failure: str | None = None
    counterexample: RoutingProblem | None = None
    replay: str | None = None
    # The short report's material (failures.py): the property's own message (no Hypothesis notes, no
    # tensors), the exception's type when impl raised, the seed argument of the failing call, the oracle's
    # verdict on one direct call on the counterexample, and where a command saved the full example.
    message: str | None = None
    error_type: str | None = None
    aux: int | None = None
    diagnosis: Any = None
    saved_case: str | None = None
    replay_command: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "examples": self.examples,
            "passed": self.passed,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "failure": self.failure,
            "message": self.message,
            "counterexample": None if self.counterexample is None else self.counterexample.describe(),
            "replay": self.replay,
            "diagnosis": None if self.diagnosis is None else self.diagnosis.to_dict(),
            "saved_case": self.saved_case,
            "replay_command": self.replay_command,
        }


@dataclass
class Report:
    """verify's result: one PropertyResult per property run, and the run's parameters."""

    results: list[PropertyResult]
    impl_name: str
    device: str
    profile: str
    dtypes: list[str]
    seed: int | None = None
    configs: list[str] | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    contract: dict[str, Any] | None = None  # Contract.to_dict() of the implementation, None: the whole SPEC

    def contract_lines(self) -> list[str]:
        """What the verdict covers: the contract judged and the SPEC features it does not support."""
        if self.contract is None:
            return []
        lines = [f"judged on the contract {self.contract['name']} declares ({self.contract['source']})"]
        if self.contract.get("limits"):
            lines.append(f"shape limits: {'; '.join(self.contract['limits'])}")
        unsupported = "; ".join(self.contract.get("unsupported") or []) or "none"
        lines.append(f"SPEC features {self.contract['name']} does not support (not drawn): {unsupported}")
        return lines

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def examples(self) -> int:
        return sum(r.examples for r in self.results)

    def table(self) -> str:
        """The per-property table: examples, passed, failed, seconds, status."""
        header = ("property", "examples", "passed", "failed", "seconds", "status")
        rows = [
            (
                r.name,
                str(r.examples),
                str(r.passed),
                str(r.failed),
                f"{r.seconds:.2f}",
                "ok" if r.ok else "FAIL",
            )
            for r in self.results
        ]
        widths = [
            max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)
        ]
        lines = []
        for row in (header, *rows):
            cells = [
                c.ljust(w) if i in (0, 5) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def format(self, verbose: bool = False) -> str:
        """The table, then per failed property what broke (oracle rules, the row and experts that matter,
        where the example was saved, one replay), each root cause said once (`failures.format_failures`).
        verbose: also each failure's full text and replay snippet, whole tensors included."""
        verdict = "PASS" if self.ok else "FAIL"
        lines = [
            f"verify {self.impl_name} on {self.device}, profile {self.profile}, "
            f"dtypes {', '.join(self.dtypes)}: {verdict} ({self.examples} examples, {self.seconds:.1f}s)",
            *self.contract_lines(),
            self.table(),
        ]
        lines += failures.format_failures(self.results, verbose=verbose, replay_hint=self.replay_hint)
        return "\n".join(lines)

    def replay_hint(self, result: PropertyResult) -> str:
        """The verify() call that reruns one failed property of this run (same dtypes, configs, profile)."""
        dtype = (
            [str(result.counterexample.dtype).replace("torch.", "")] if result.counterexample else self.dtypes
        )
        args = [f"properties=[{result.name!r}]", f"dtypes={dtype!r}", f"profile={self.profile!r}"]
        if self.configs is not None:  # preset names as strings, RoutingConfigs as the code that builds them
            written = [c if c.startswith("RoutingConfig(") else repr(c) for c in self.configs]
            args.append(f"configs=[{', '.join(written)}]")
        if self.seed is not None:
            args.append(f"seed={self.seed}")
        return f"verify(impl, {', '.join(args)})  (format(verbose=True) prints the example in full)"

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, Any]:
        causes = failures.root_causes(self.results)
        return {
            "ok": self.ok,
            "impl": self.impl_name,
            "device": self.device,
            "profile": self.profile,
            "dtypes": self.dtypes,
            "seed": self.seed,
            "configs": self.configs,
            "contract": self.contract,
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
            "results": [{**r.to_dict(), "same_root_cause_as": causes.get(r.name)} for r in self.results],
        }


# ---- the runner ----------------------------------------------------------------------------------------


def _own_message(error: BaseException) -> str:
    """The failing check's message alone, or for an exception its last frames: no Hypothesis notes."""
    if isinstance(error, AssertionError):
        return str(error)
    if isinstance(error, Flaky):
        # Hypothesis ran the failing example again and it passed: the same input gave another output.
        inner = getattr(error, "exceptions", ())
        first = _own_message(inner[0]) if inner else str(error).splitlines()[0]
        return (
            "the failure did not reproduce when the same example ran again: the implementation's output is "
            "not a function of its input alone (nondeterminism: a race, uninitialized memory, or state "
            f"kept between calls). The first failure:\n{first}"
        )
    frames = traceback.format_exception_only(type(error), error)[:1]
    stack = traceback.format_tb(error.__traceback__)[-4:]
    return (
        "an exception was raised (impl crashing is a failure; the traceback says where):\n"
        + "".join(stack)
        + "".join(frames).rstrip()
    )


def _describe_failure(error: BaseException, problem: RoutingProblem | None) -> str:
    notes = [n for n in getattr(error, "__notes__", []) if not n.startswith("@reproduce_failure")]
    text = _own_message(error)
    if notes:
        text += "\n" + "\n".join(notes)
    if problem is not None:
        text += f"\nshrunk example: {problem.describe()}"
        text += f"\nconfig: {format_config(problem.config)}"
        if problem.num_rows * problem.config.num_experts <= 512:
            text += "\n" + problem_literal(problem).rstrip()
    return text


def _replay(
    error: BaseException,
    name: str,
    problem: RoutingProblem | None,
    aux: int,
    profile: Profile,
    seed: int | None,
    device: torch.device,
) -> str:
    lines = []
    blobs = [n for n in getattr(error, "__notes__", []) if n.startswith("@reproduce_failure")]
    if problem is not None and problem.num_rows * problem.config.num_experts <= 4096:
        lines += [
            "# rebuild the shrunk example and run the failing check (define `impl` first):",
            problem_literal(problem).rstrip(),
            "from moegate.properties.problem import RoutingProblem",
            "from moegate.properties.suite import PROPERTIES",
            f"device = {str(device)!r}",
            f"PROPERTIES[{name!r}](impl, RoutingProblem(config, scores.to(device), "
            f"None if bias is None else bias.to(device)), seed={aux})",
        ]
    lines.append(
        "# or rerun the property: "
        f"verify(impl, properties=[{name!r}], profile={profile.name!r}"
        + ("" if seed is None else f", seed={seed}")
        + ")"
        + ("" if profile.derandomize or seed is not None else "  (random profile: pass seed= to fix it)")
    )
    if blobs:
        lines.append("# Hypothesis' own replay (decorate a @given test of the same strategy): " + blobs[0])
    return "\n".join(lines)


def _narrowed(contract: Contract | None, limits: Sequence[str]) -> Contract | None:
    """`contract` (the whole SPEC when None) with more shape limits."""
    if isinstance(limits, str):
        raise TypeError(f"limits={limits!r}, but limits must be a sequence of strings such as ['G <= 8']")
    if not limits:
        return contract
    base = contract if contract is not None else Contract(name="spec", source="SPEC.md")
    return dataclasses.replace(base, limits=(*base.limits, *limits))


def _problem_arguments(
    contract: Contract | None,
    configs: Sequence[RoutingConfig | str] | None,
    score_dtypes: tuple[torch.dtype, ...],
    row_kinds: Sequence[str] | None,
    bias_kinds: Sequence[str] | None,
    row_stride: str | None = None,
) -> dict[str, Any]:
    """routing_problems' arguments for what `contract` accepts (everything SPEC allows when None)."""
    if row_stride not in (None, "contiguous", "padded"):
        raise ValueError(f"row_stride={row_stride!r}, but row_stride must be None, 'contiguous' or 'padded'")
    if row_stride == "padded" and contract is not None and contract.row_stride == "contiguous":
        raise ValueError(f"row_stride='padded', but {contract.name} takes contiguous rows only")
    args: dict[str, Any] = {"configs": configs, "dtypes": score_dtypes, "row_kinds": row_kinds}
    args["bias_kinds"] = bias_kinds
    args["row_stride"] = row_stride or "any"
    if contract is None:
        return args
    dtypes = tuple(d for d in score_dtypes if d in contract.score_dtypes)
    if not dtypes:
        raise ValueError(
            f"dtypes={[str(d) for d in score_dtypes]}, but {contract.name} takes scores in "
            f"{[str(d) for d in contract.score_dtypes]}"
        )
    if configs is None:
        strategy: Any = contract_configs(contract)
    else:
        resolved = []
        for c in configs:
            config = contract.project(get_preset(c) if isinstance(c, str) else c)
            reasons = contract.rejects(config)
            if reasons:
                raise ValueError(f"configs contains {c!r}, but {contract.name} does not accept it: {reasons}")
            resolved.append(config)
        strategy = resolved
    kinds = list(BIAS_KINDS if bias_kinds is None else bias_kinds)
    if contract.bias == "required":
        kinds = [k for k in kinds if k != "none"]
        if not kinds:
            raise ValueError(f"bias_kinds={bias_kinds!r}, but {contract.name} requires a bias")
    bias_dtypes: Any = "scores" if contract.bias_dtypes == "scores" else contract.bias_dtypes
    args.update(
        configs=strategy,
        dtypes=dtypes,
        bias_kinds=kinds,
        bias_dtypes=bias_dtypes,
        min_rows=contract.min_rows,
        row_stride=row_stride or contract.row_stride,
    )
    return args


def verify(
    impl: Impl,
    *,
    configs: Sequence[RoutingConfig | str] | None = None,
    max_examples: int | None = None,
    device: str | torch.device = "cpu",
    profile: str | None = None,
    dtypes: Sequence[torch.dtype | str] | torch.dtype | str | None = None,
    progress: Progress | None = None,
    properties: Sequence[str] | None = None,
    seed: int | None = None,
    stop_on_failure: bool = False,
    shrink: bool = True,
    impl_name: str | None = None,
    contract: Contract | None = None,
    row_kinds: Sequence[str] | None = None,
    bias_kinds: Sequence[str] | None = None,
    limits: Sequence[str] = (),
    row_stride: str | None = None,
    min_rows: int = 0,
) -> Report:
    """Run the property suite against `impl` with Hypothesis.

    Args:
        impl: `impl(scores [T, E], bias [E] | None, config) -> (topk_ids int32 [T, W], topk_weights float32
            [T, W])`, the reference's signature.
        configs: RoutingConfigs or preset names to draw from; None: `strategies.routing_configs()`.
        max_examples: examples per property (default: the profile's).
        device: where impl (and the reference) run, e.g. "cuda".
        profile: "ci", "dev" or "deep" (default: $MOEGATE_PROFILE, else "ci").
        dtypes: score dtypes (torch dtypes or names); None: float32, float16, bfloat16.
        progress: called as progress(property_name, done, total) after each example.
        properties: names from PROPERTIES to run (default: all, in order).
        seed: a seed for Hypothesis (makes a random profile reproducible).
        stop_on_failure: skip the remaining properties after the first failure (the mutant panel).
        shrink: shrink a failing example (off for the mutant panel: only the verdict is needed).
        impl_name: the name reports show (default: impl's __qualname__).
        contract: what `impl` declares it supports (`moegate.properties.peers.Contract`; a loaded peer's
            `Impl.contract`). Only configurations, dtypes and layouts it accepts are drawn (`configs`, if
            given, are projected onto it and must be accepted), the oracle gets exactly the inputs `impl`
            got, weights are judged at the precision it writes them in, and the report lists the SPEC
            features it does not support. None: the whole SPEC.
        row_kinds, bias_kinds: draw only these kinds of logit rows and biases (`strategies.ROW_KINDS`,
            `BIAS_KINDS`), e.g. to look past a known finding about non-finite inputs.
        limits: more shape limits (the contract's syntax, e.g. "G <= 8"), narrowing what is drawn.
        row_stride: None (as the contract allows), "contiguous" (dense rows only) or "padded" (every
            problem of T > 1 rows gets a row stride larger than E; a contract must allow it).
        min_rows: draw at least this many rows (e.g. 1, to look past a finding about T = 0).

    Returns:
        A Report; `.ok` when every property held on every example.
    """
    if not callable(impl):
        raise TypeError(f"impl={impl!r} ({type(impl).__name__}), but impl must be callable")
    prof = resolve_profile(profile)
    if max_examples is not None and (
        isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1
    ):
        raise ValueError(f"max_examples={max_examples!r}, but max_examples must be None or an int >= 1")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed={seed!r} ({type(seed).__name__}), but seed must be an int or None")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress={progress!r}, but progress must be callable or None")
    names = list(PROPERTIES) if properties is None else list(properties)
    for n in names:
        if n not in PROPERTIES:
            raise ValueError(f"properties contains {n!r}, but each must be one of {tuple(PROPERTIES)}")
    score_dtypes = parse_dtypes("dtypes", dtypes, SCORE_DTYPES)
    try:
        torch_device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r}, but device must name a torch device ({e})") from None
    contract = _narrowed(contract, limits)
    problem_args = _problem_arguments(contract, configs, score_dtypes, row_kinds, bias_kinds, row_stride)
    score_dtypes = problem_args["dtypes"]
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or not 0 <= min_rows <= prof.max_rows:
        raise ValueError(f"min_rows={min_rows!r}, but min_rows must be an int in [0, {prof.max_rows}]")
    problem_args["min_rows"] = max(problem_args.get("min_rows", 0), min_rows)
    problems = routing_problems(device="cpu", max_rows=prof.max_rows, **problem_args)
    examples = prof.examples if max_examples is None else max_examples
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    base_settings = settings.get_profile(prof.hypothesis_name)
    report = Report(
        results=[],
        impl_name=impl_name or getattr(impl, "__qualname__", None) or repr(impl),
        device=str(torch_device),
        profile=prof.name,
        dtypes=[str(d).replace("torch.", "") for d in score_dtypes],
        seed=seed,
        configs=None if configs is None else [c if isinstance(c, str) else format_config(c) for c in configs],
        contract=None if contract is None else contract.to_dict(),
    )
    start_all = time.perf_counter()
    for name in names:
        result = _run_property(
            name,
            impl,
            contract,
            problems,
            torch_device,
            settings(
                base_settings,
                max_examples=min(examples, prof.scale_examples) if name == "scale" else examples,
                derandomize=prof.derandomize and seed is None,
                phases=phases,
                report_multiple_bugs=False,
            ),
            prof,
            seed,
            progress,
        )
        report.results.append(result)
        if result.failure is not None and stop_on_failure:
            break
    report.seconds = time.perf_counter() - start_all
    return report


def _run_property(
    name: str,
    impl: Impl,
    contract: Contract | None,
    problems: st.SearchStrategy[RoutingProblem],
    device: torch.device,
    run_settings: settings,
    prof: Profile,
    seed: int | None,
    progress: Progress | None,
) -> PropertyResult:
    """Run one property as a Hypothesis test; a failure is caught, described and returned."""
    check = PROPERTIES[name]
    total = run_settings.max_examples
    counts = {"calls": 0, "failed": 0}
    last_failing: list[Any] = [None, 0]

    @run_settings
    @given(problem=problems, aux=st.integers(0, 2**31 - 1))
    def run_property(problem: RoutingProblem, aux: int) -> None:
        counts["calls"] += 1
        try:
            check(impl, move_problem(problem, device), aux, contract)
        except BaseException:
            counts["failed"] += 1
            last_failing[:] = [problem, aux]
            raise
        finally:
            if progress is not None:
                progress(name, counts["calls"], total)

    # One example-database key per property and implementation (the profiles that keep a database replay a
    # property's own failures first); without it every property would share run_property's source digest.
    who = f"{getattr(impl, '__module__', '')}:{getattr(impl, '__qualname__', type(impl).__name__)}"
    run_property._hypothesis_internal_database_key = f"moegate:{name}:{who}".encode()  # type: ignore[attr-defined]
    test = hypothesis_seed(seed)(run_property) if seed is not None else run_property
    start = time.perf_counter()
    failure = replay = message = error_type = None
    try:
        test()
    except Exception as error:
        if counts["failed"] == 0:
            raise  # not a property failure: Hypothesis or moegate itself is misconfigured
        failure = _describe_failure(error, last_failing[0])
        replay = _replay(error, name, last_failing[0], last_failing[1], prof, seed, device)
        message = _own_message(error)
        error_type = None if isinstance(error, AssertionError) else type(error).__name__
    result = PropertyResult(
        name=name,
        examples=counts["calls"],
        passed=counts["calls"] - counts["failed"],
        failed=counts["failed"],
        seconds=time.perf_counter() - start,
        failure=failure,
        counterexample=last_failing[0] if failure is not None else None,
        replay=replay,
    )
    if failure is not None:
        result.message, result.error_type = message, error_type
        result.aux = last_failing[1]
        if last_failing[0] is not None:
            weight_dtype = _weight_dtype(last_failing[0], contract)
            result.diagnosis = failures.diagnose(impl, last_failing[0], device, weight_dtype)
    return result
