"""The mutant panel: planted wrong implementations that the property suite must kill.

Each mutant is the reference's SPEC steps run in order (`compose`) with one step replaced by a small
wrong version that mirrors a real bug class of fused routing kernels. `run_mutant_panel()` runs `verify`
against each (the ci profile unless told otherwise) and reports which property killed it. A mutant that
survives means the suite has a blind spot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from moegate import reference as R
from moegate.reference import RoutingConfig, check_inputs

from .suite import Progress, verify

Step = Callable[[SimpleNamespace], None]


# ---- the reference as a list of replaceable steps ------------------------------------------------------


def _probabilities(s: SimpleNamespace) -> None:
    s.p = R.probabilities(s.scores, s.config.scoring_func)


def _biased_scores(s: SimpleNamespace) -> None:
    s.b = R.biased_scores(s.p, s.bias)


def _group_scores(s: SimpleNamespace) -> None:
    s.group_score = R.group_scores(s.b, s.config.num_expert_group, has_bias=s.bias is not None)


def _group_selection(s: SimpleNamespace) -> None:
    s.kept_groups = R.group_selection(s.group_score, s.config.topk_group)


def _expert_selection(s: SimpleNamespace) -> None:
    s.expert_ids = R.expert_selection(s.b, s.kept_groups, s.config.num_expert_group, s.config.topk)


def _routed_weights(s: SimpleNamespace) -> None:
    s.routed = R.routed_weights(s.p, s.expert_ids, s.config.renormalize)


def _shared_slots(s: SimpleNamespace) -> None:
    s.shared_ids, s.shared_weights = R.shared_slots(s.config, s.scores.shape[0], s.scores.device)


def _output_scaling(s: SimpleNamespace) -> None:
    s.ids = torch.cat([s.expert_ids, s.shared_ids], dim=-1).to(torch.int32)
    s.weights = R.output_scaling(torch.cat([s.routed, s.shared_weights], dim=-1), s.config).contiguous()


STEPS: dict[str, Step] = {
    "probabilities": _probabilities,
    "biased_scores": _biased_scores,
    "group_scores": _group_scores,
    "group_selection": _group_selection,
    "expert_selection": _expert_selection,
    "routed_weights": _routed_weights,
    "shared_slots": _shared_slots,
    "output_scaling": _output_scaling,
}


def compose(**overrides: Step) -> Callable[[torch.Tensor, torch.Tensor | None, RoutingConfig], tuple]:
    """A route function running STEPS in SPEC order, with the named steps replaced.

    Each step reads and writes a namespace holding scores, bias, config and every intermediate
    (p, b, group_score, kept_groups, expert_ids, routed, shared_ids, shared_weights, ids, weights).
    """
    for name in overrides:
        if name not in STEPS:
            raise ValueError(f"override {name!r}, but overridable steps are {tuple(STEPS)}")
    steps = [overrides.get(name, step) for name, step in STEPS.items()]

    def route(scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig) -> tuple:
        check_inputs(scores, bias, config)
        s = SimpleNamespace(scores=scores, bias=bias, config=config)
        for step in steps:
            step(s)
        return s.ids, s.weights

    return route


# ---- the wrong steps -----------------------------------------------------------------------------------


def _r(s: SimpleNamespace) -> torch.Tensor:
    return torch.tensor(s.config.routed_scaling_factor, dtype=torch.float32, device=s.scores.device)


def _review_bug(s: SimpleNamespace) -> None:
    # The shared slot set to sum(routed) / r, then every weight divided by the routed sum, and r never
    # applied on the output (the caller's scaling was switched off as well).
    total = s.routed.sum(-1, keepdim=True)
    shared = (total / _r(s)).expand(s.shared_weights.shape)
    s.ids = torch.cat([s.expert_ids, s.shared_ids], dim=-1).to(torch.int32)
    s.weights = (torch.cat([s.routed, shared], dim=-1) / total).contiguous()


def _scaling_twice(s: SimpleNamespace) -> None:
    _output_scaling(s)
    s.weights = R.output_scaling(s.weights, s.config)


def _scaling_missing(s: SimpleNamespace) -> None:
    s.ids = torch.cat([s.expert_ids, s.shared_ids], dim=-1).to(torch.int32)
    s.weights = torch.cat([s.routed, s.shared_weights], dim=-1).contiguous()


def _group_score_max(s: SimpleNamespace) -> None:
    s.group_score = R.group_scores(s.b, s.config.num_expert_group, has_bias=False)


def _mask_zero(s: SimpleNamespace) -> None:
    # Unselected groups masked with 0 instead of -inf, then top-k over all experts.
    E, n = s.config.num_experts, s.config.experts_per_group
    kept = torch.zeros(s.b.shape[0], s.config.num_expert_group, dtype=torch.bool, device=s.b.device)
    kept.scatter_(1, s.kept_groups, True)
    in_kept = kept[:, torch.arange(E, device=s.b.device) // n]
    masked = torch.where(in_kept, s.b, torch.zeros_like(s.b))
    s.expert_ids = torch.sort(-masked, dim=-1, stable=True).indices[:, : s.config.topk]


def _bias_bf16(s: SimpleNamespace) -> None:
    # b = p + bias computed in bfloat16 (a kernel that keeps the bias's storage type for the add).
    if s.bias is None:
        s.b = s.p.clone()
        return
    s.b = R.biased_scores(s.p.to(torch.bfloat16), s.bias.to(torch.bfloat16)).to(torch.bfloat16).float()


def _weights_from_biased(s: SimpleNamespace) -> None:
    s.routed = R.routed_weights(s.b, s.expert_ids, s.config.renormalize)


def _ties_high_index(s: SimpleNamespace) -> None:
    # Candidates listed in descending id order, so the stable sort breaks ties toward the higher index.
    T = s.b.shape[0]
    n = s.config.experts_per_group
    groups = torch.sort(s.kept_groups, dim=-1, descending=True).values
    candidates = (groups.unsqueeze(-1) * n + torch.arange(n - 1, -1, -1, device=s.b.device)).reshape(T, -1)
    order = torch.sort(-torch.gather(s.b, 1, candidates), dim=-1, stable=True).indices[:, : s.config.topk]
    s.expert_ids = torch.gather(candidates, 1, order)


def _renorm_includes_shared(s: SimpleNamespace) -> None:
    w = torch.gather(s.p, 1, s.expert_ids)
    if s.config.renormalize:
        shared_total = s.config.num_shared_slots / s.config.routed_scaling_factor
        w = w / (w.sum(-1, keepdim=True) + shared_total + R.RENORMALIZE_EPSILON)
    s.routed = w


def _replica_no_modulo(s: SimpleNamespace) -> None:
    _shared_slots(s)
    if s.config.shared_expert_mode == "replica" and s.config.num_fused_shared_experts >= 1:
        rows = torch.arange(s.scores.shape[0], device=s.scores.device)
        s.shared_ids = (s.config.num_experts + rows).unsqueeze(-1)


def _no_epsilon(s: SimpleNamespace) -> None:
    w = torch.gather(s.p, 1, s.expert_ids)
    s.routed = w / w.sum(-1, keepdim=True) if s.config.renormalize else w


def _nan_row_out_of_range(s: SimpleNamespace) -> None:
    # A kernel's argmax that starts at index -1 and keeps `b > best` from best = -inf: a NaN logit (or a
    # -inf b) never wins, so a row with fewer than K such candidates keeps -1 in its last slots; an
    # all-NaN row gets -1 everywhere.
    never = torch.isnan(s.scores.float()) | (s.b == float("-inf"))
    b = torch.where(never, torch.full_like(s.b, float("-inf")), s.b)
    ids = R.expert_selection(b, s.kept_groups, s.config.num_expert_group, s.config.topk)
    s.expert_ids = torch.where(torch.gather(b, 1, ids) == float("-inf"), -torch.ones_like(ids), ids)


def _weights_skip_invalid(s: SimpleNamespace) -> None:
    safe = s.expert_ids.clamp(min=0)
    w = torch.where(s.expert_ids >= 0, torch.gather(s.p, 1, safe), torch.zeros_like(s.p[:, :1]))
    if s.config.renormalize:
        w = w / (w.sum(-1, keepdim=True) + R.RENORMALIZE_EPSILON)
    s.routed = w


def _topk_group_ignored(s: SimpleNamespace) -> None:
    s.kept_groups = R.group_selection(s.group_score, min(4, s.config.num_expert_group))


def _bias_ignored(s: SimpleNamespace) -> None:
    s.b = s.p.clone()


ROW_OFFSET_WRAP = 2**20  # the mutant's offset type: 20 bits, so that CPU batches reach the wrap


def _row_offset_wraps(s: SimpleNamespace) -> None:
    # A row's element offset row * row_stride computed in a narrow type: rows past ROW_OFFSET_WRAP elements
    # read the logits of a row near the start (a kernel's 32-bit offset wraps the same way at 2^32).
    num_rows = s.scores.shape[0]
    stride = s.scores.stride(0) if num_rows > 1 else s.scores.shape[1]
    offsets = torch.arange(num_rows, dtype=torch.int64) * stride % ROW_OFFSET_WRAP
    read = (offsets // stride).to(s.scores.device)
    s.p = R.probabilities(s.scores[read], s.config.scoring_func)


def _shared_weight_one(s: SimpleNamespace) -> None:
    _shared_slots(s)
    s.shared_weights = torch.ones_like(s.shared_weights)


# ---- the panel -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    """A planted bug: its name, what is wrong, and the wrong route(scores, bias, config)."""

    name: str
    description: str
    impl: Callable[[torch.Tensor, torch.Tensor | None, RoutingConfig], tuple]


@dataclass(frozen=True)
class MutantResult:
    """The panel's verdict on one mutant: killed (some property failed), by which property, examples run
    (over all properties until the kill), seconds."""

    name: str
    description: str
    killed: bool
    killed_by: str | None
    examples: int
    seconds: float


def _mutant(name: str, description: str, **overrides: Step) -> Mutant:
    impl = compose(**overrides)
    impl.__qualname__ = f"mutant {name}"
    return Mutant(name, description, impl)


MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        _mutant(
            "review_bug",
            "the review's bug: shared weight = sum(routed) / r, everything divided by the routed sum, "
            "output scaling off",
            output_scaling=_review_bug,
        ),
        _mutant(
            "scaling_twice",
            "routed_scaling_factor applied twice on the output",
            output_scaling=_scaling_twice,
        ),
        _mutant(
            "scaling_missing",
            "apply_routed_scaling_factor_on_output ignored",
            output_scaling=_scaling_missing,
        ),
        _mutant(
            "group_score_max",
            "group score = max b instead of the top-2 sum (with a bias)",
            group_scores=_group_score_max,
        ),
        _mutant(
            "mask_zero",
            "unselected groups masked with 0 instead of -inf, then top-k over all experts",
            expert_selection=_mask_zero,
        ),
        _mutant("bias_bf16", "b = p + bias computed in bfloat16", biased_scores=_bias_bf16),
        _mutant(
            "weights_from_biased",
            "weights gathered from the biased scores b, not p",
            routed_weights=_weights_from_biased,
        ),
        _mutant(
            "ties_high_index", "ties broken toward the higher expert index", expert_selection=_ties_high_index
        ),
        _mutant(
            "renorm_includes_shared",
            "the renormalizing sum includes the shared slots' weights",
            routed_weights=_renorm_includes_shared,
        ),
        _mutant(
            "replica_no_modulo",
            "replica shared id E + row instead of E + row % S",
            shared_slots=_replica_no_modulo,
        ),
        _mutant(
            "no_epsilon",
            "renormalization without the 1e-20 epsilon (NaN on an all-zero row)",
            routed_weights=_no_epsilon,
        ),
        _mutant(
            "nan_row_out_of_range",
            "argmax from index -1 with `b > best`: NaN logits never win, an all-NaN row yields id -1",
            expert_selection=_nan_row_out_of_range,
            routed_weights=_weights_skip_invalid,
        ),
        _mutant(
            "topk_group_ignored",
            "topk_group ignored: always 4 groups kept",
            group_selection=_topk_group_ignored,
        ),
        _mutant("bias_ignored", "the bias never added: selection by p", biased_scores=_bias_ignored),
        _mutant(
            "shared_weight_one", "shared slot weight 1 instead of 1 / r", shared_slots=_shared_weight_one
        ),
        _mutant(
            "row_offset_wraps",
            "a row's element offset computed in a narrow type: rows past 2^20 elements read a row near the "
            "start (right on every small batch; only the scale property sees it)",
            probabilities=_row_offset_wraps,
        ),
    )
}


def run_mutant_panel(
    *,
    names: Sequence[str] | None = None,
    max_examples: int | None = None,
    progress: Progress | None = None,
    profile: str | None = None,
) -> list[MutantResult]:
    """Run the property suite against each mutant (default: all of MUTANTS), stopping at the first failing
    property, without shrinking. profile: as verify's (default $MOEGATE_PROFILE, else "ci")."""
    selected = list(MUTANTS) if names is None else list(names)
    for n in selected:
        if n not in MUTANTS:
            raise ValueError(f"names contains {n!r}, but each must be one of {tuple(MUTANTS)}")
    results = []
    for n in selected:
        mutant = MUTANTS[n]
        start = time.perf_counter()

        def mutant_progress(prop: str, done: int, total: int | None, n: str = n) -> None:
            if progress is not None:
                progress(f"{n}: {prop}", done, total)

        report = verify(
            mutant.impl,
            max_examples=max_examples,
            profile=profile,
            progress=mutant_progress,
            stop_on_failure=True,
            shrink=False,
            impl_name=f"mutant {n}",
        )
        failed = [r.name for r in report.results if not r.ok]
        results.append(
            MutantResult(
                name=n,
                description=mutant.description,
                killed=bool(failed),
                killed_by=failed[0] if failed else None,
                examples=report.examples,
                seconds=time.perf_counter() - start,
            )
        )
    return results
