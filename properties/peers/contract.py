"""What a routing kernel declares it supports: a `Contract`, as data, and the Hypothesis strategy that draws
only what it accepts.

A kernel an engine ships supports less than SPEC.md: FlashInfer's `fused_topk_deepseek` takes only the
sigmoid, always renormalizes, applies r on its output and has no shared slots. `verify` judges such a
kernel on what it claims: it draws configurations and dtypes the contract accepts, hands the oracle the
very inputs the kernel received, judges weights at the precision the kernel writes them in, and lists the
SPEC features the kernel does not offer beside the verdict. A configuration the contract accepts and the
kernel's launcher rejects is itself a finding: the adapter then raises, and the property fails.

Shape limits are strings over the names E (experts), G (groups), Kg (kept groups), K (routed experts) and
n (= E / G, experts per group), e.g. "K <= 8" or "G == 1 or E <= 256": data a person reads in
`moegate peers` and that `accepts` evaluates. SPEC's own constraints (G divides E, Kg <= G, K <= Kg * n)
always hold for a RoutingConfig and are not repeated.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st

from moegate.reference import (
    BIAS_DTYPES,
    SCORE_DTYPES,
    SCORING_FUNCS,
    SHARED_EXPERT_MODES,
    RoutingConfig,
    get_preset,
    preset_has_bias,
    preset_names,
)

# The limit expressions see these names, and nothing else.
LIMIT_NAMES = ("E", "G", "Kg", "K", "n")
# Largest K enumerated for a contract with shape limits (every real kernel caps K well below).
_MAX_ENUMERATED_TOPK = 32


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


@functools.cache
def _compiled(expression: str) -> Any:
    code = compile(expression, f"<limit {expression!r}>", "eval")
    unknown = set(code.co_names) - set(LIMIT_NAMES)
    if unknown:
        raise ValueError(
            f"limit {expression!r} uses {sorted(unknown)}, but limits may only use {LIMIT_NAMES}"
        )
    return code


def _shape_vars(config: RoutingConfig) -> dict[str, int]:
    return {
        "E": config.num_experts,
        "G": config.num_expert_group,
        "Kg": config.topk_group,
        "K": config.topk,
        "n": config.experts_per_group,
    }


@dataclass(frozen=True)
class Contract:
    """A kernel's declared contract (what it accepts and what it writes), read from its code and docs.

    name: the implementation's name (`moegate verify --impl NAME`).
    source: where the declaration was read (files, functions, docstrings, versions).
    scoring_funcs: scoring functions it computes.
    bias: "optional" (None allowed) or "required" (it always adds a correction bias).
    renormalize: the `renormalize` values it supports.
    scaling_on_output: the `apply_routed_scaling_factor_on_output` values it supports (a kernel that always
        multiplies its weights by r supports (True,)).
    max_shared: the largest number of fused shared experts S, or None for any.
    shared_modes: the shared-expert modes it supports.
    score_dtypes: logit dtypes it takes.
    bias_dtypes: bias dtypes it takes, or "scores" (the bias must have the scores' dtype).
    weights: "float32", or "scores" (it writes weights in the scores' dtype; the adapter hands them over
        as float32, exactly).
    row_stride: "any" (a row stride larger than E is read correctly) or "contiguous" (rows must be dense).
    min_rows: the smallest T it takes.
    limits: shape limits, strings over E, G, Kg, K, n (module docstring).
    min_compute_capability: the oldest GPU it runs on, (major, minor).
    notes: what else a user must know to call it.
    """

    name: str
    source: str
    scoring_funcs: tuple[str, ...] = SCORING_FUNCS
    bias: str = "optional"
    renormalize: tuple[bool, ...] = (False, True)
    scaling_on_output: tuple[bool, ...] = (False, True)
    max_shared: int | None = None
    shared_modes: tuple[str, ...] = SHARED_EXPERT_MODES
    score_dtypes: tuple[torch.dtype, ...] = SCORE_DTYPES
    bias_dtypes: tuple[torch.dtype, ...] | str = BIAS_DTYPES
    weights: str = "float32"
    row_stride: str = "any"
    min_rows: int = 0
    limits: tuple[str, ...] = ()
    min_compute_capability: tuple[int, int] | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for f in self.scoring_funcs:
            if f not in SCORING_FUNCS:
                raise ValueError(f"scoring_funcs contains {f!r}, but each must be one of {SCORING_FUNCS}")
        if self.bias not in ("optional", "required"):
            raise ValueError(f"bias={self.bias!r}, but bias must be 'optional' or 'required'")
        if self.weights not in ("float32", "scores"):
            raise ValueError(f"weights={self.weights!r}, but weights must be 'float32' or 'scores'")
        if self.row_stride not in ("any", "contiguous"):
            raise ValueError(f"row_stride={self.row_stride!r}, but row_stride must be 'any' or 'contiguous'")
        if not isinstance(self.bias_dtypes, tuple) and self.bias_dtypes != "scores":
            raise ValueError(
                f"bias_dtypes={self.bias_dtypes!r}, but it must be a tuple of dtypes or 'scores'"
            )
        for expression in self.limits:
            _compiled(expression)

    # ---- what it accepts ------------------------------------------------------------------------------

    def bias_dtype(self, scores_dtype: torch.dtype) -> tuple[torch.dtype, ...]:
        """The bias dtypes it takes beside scores of `scores_dtype`."""
        return (scores_dtype,) if self.bias_dtypes == "scores" else tuple(self.bias_dtypes)

    def weight_dtype(self, scores_dtype: torch.dtype) -> torch.dtype:
        """The dtype it writes weights in for scores of `scores_dtype`."""
        return scores_dtype if self.weights == "scores" else torch.float32

    def failed_limits(self, config: RoutingConfig) -> list[str]:
        """The shape limits `config` breaks."""
        names = _shape_vars(config)
        return [e for e in self.limits if not eval(_compiled(e), {"__builtins__": {}}, names)]

    def rejects(
        self,
        config: RoutingConfig,
        scores_dtype: torch.dtype | None = None,
        bias_dtype: torch.dtype | str | None = "absent",
        *,
        num_rows: int | None = None,
        dense_rows: bool = True,
    ) -> list[str]:
        """Why the contract does not cover a call (empty: it does). bias_dtype None means no bias;
        "absent" (default) skips the bias checks, as do scores_dtype / num_rows left None."""
        reasons = []
        if config.scoring_func not in self.scoring_funcs:
            reasons.append(f"scoring_func={config.scoring_func!r} (supports {list(self.scoring_funcs)})")
        if config.renormalize not in self.renormalize:
            reasons.append(f"renormalize={config.renormalize} (supports {list(self.renormalize)})")
        if config.apply_routed_scaling_factor_on_output not in self.scaling_on_output:
            reasons.append(
                f"apply_routed_scaling_factor_on_output={config.apply_routed_scaling_factor_on_output} "
                f"(supports {list(self.scaling_on_output)})"
            )
        if self.max_shared is not None and config.num_fused_shared_experts > self.max_shared:
            reasons.append(
                f"num_fused_shared_experts={config.num_fused_shared_experts} (supports <= {self.max_shared})"
            )
        if config.num_fused_shared_experts and config.shared_expert_mode not in self.shared_modes:
            reasons.append(
                f"shared_expert_mode={config.shared_expert_mode!r} (supports {list(self.shared_modes)})"
            )
        c = config
        shape = f"E={c.num_experts}, G={c.num_expert_group}, Kg={c.topk_group}, K={c.topk}"
        reasons += [f"the limit {e} ({shape})" for e in self.failed_limits(config)]
        if scores_dtype is not None and scores_dtype not in self.score_dtypes:
            supported = [_dtype_name(d) for d in self.score_dtypes]
            reasons.append(f"scores dtype {_dtype_name(scores_dtype)} (supports {supported})")
        if bias_dtype is None and self.bias == "required":
            reasons.append("no bias (a bias is required)")
        elif bias_dtype not in (None, "absent") and scores_dtype is not None:
            allowed = self.bias_dtype(scores_dtype)
            if bias_dtype not in allowed:
                reasons.append(
                    f"bias dtype {_dtype_name(bias_dtype)} with {_dtype_name(scores_dtype)} scores "
                    f"(supports {[_dtype_name(d) for d in allowed]})"
                )
        if num_rows is not None and num_rows < self.min_rows:
            reasons.append(f"T={num_rows} rows (supports T >= {self.min_rows})")
        if not dense_rows and self.row_stride == "contiguous":
            reasons.append("a row stride larger than E (rows must be contiguous)")
        return reasons

    def accepts(self, config: RoutingConfig, scores_dtype: torch.dtype | None = None) -> bool:
        """True when the contract covers `config` (and scores of `scores_dtype`, if given)."""
        return not self.rejects(config, scores_dtype)

    def project(self, config: RoutingConfig) -> RoutingConfig:
        """`config` with the knobs this kernel fixes set its way (renormalize, where r is applied, shared
        slots), keeping the routing shape and scoring: how an engine would route that model with it."""
        changes: dict[str, Any] = {}
        if config.renormalize not in self.renormalize:
            changes["renormalize"] = self.renormalize[0]
        if config.apply_routed_scaling_factor_on_output not in self.scaling_on_output:
            changes["apply_routed_scaling_factor_on_output"] = self.scaling_on_output[0]
        if self.max_shared is not None and config.num_fused_shared_experts > self.max_shared:
            changes["num_fused_shared_experts"] = self.max_shared
        if config.num_fused_shared_experts and config.shared_expert_mode not in self.shared_modes:
            changes["shared_expert_mode"] = self.shared_modes[0]
        return config.replace(**changes) if changes else config

    def unsupported_features(self) -> list[str]:
        """The SPEC.md features this kernel does not offer, one phrase each."""
        missing = [f"scoring_func={f!r}" for f in SCORING_FUNCS if f not in self.scoring_funcs]
        if self.bias == "required":
            missing.append("routing without a bias (bias=None)")
        missing += [f"renormalize={v}" for v in (False, True) if v not in self.renormalize]
        missing += [
            f"apply_routed_scaling_factor_on_output={v}"
            for v in (False, True)
            if v not in self.scaling_on_output
        ]
        if self.max_shared == 0:
            missing.append("fused shared experts (S > 0)")
        elif self.max_shared is not None:
            missing.append(f"more than {self.max_shared} fused shared experts")
        missing += [f"shared_expert_mode={m!r}" for m in SHARED_EXPERT_MODES if m not in self.shared_modes]
        missing += [f"scores in {_dtype_name(d)}" for d in SCORE_DTYPES if d not in self.score_dtypes]
        if self.bias_dtypes == "scores":
            missing.append("a bias dtype other than the scores' dtype")
        else:
            missing += [f"a {_dtype_name(d)} bias" for d in BIAS_DTYPES if d not in self.bias_dtypes]
        if self.weights == "scores":
            missing.append("float32 weights for bfloat16/float16 scores (weights come in the scores' dtype)")
        if self.row_stride == "contiguous":
            missing.append("a row stride larger than E")
        if self.min_rows > 0:
            missing.append(f"T < {self.min_rows} rows")
        if self.limits:
            missing.append("shapes outside its limits (" + "; ".join(self.limits) + ")")
        return missing

    def presets(self) -> list[tuple[str, RoutingConfig]]:
        """Every preset, projected (`project`), that the contract then accepts (with a bias, when the
        contract requires one: a model without a correction bias cannot be routed by such a kernel)."""
        out = []
        for name in preset_names():
            if self.bias == "required" and not preset_has_bias(name):
                continue
            projected = self.project(get_preset(name))
            if self.accepts(projected):
                out.append((name, projected))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "source": self.source,
            "scoring_funcs": list(self.scoring_funcs),
            "bias": self.bias,
            "renormalize": list(self.renormalize),
            "scaling_on_output": list(self.scaling_on_output),
            "max_shared": self.max_shared,
            "shared_modes": list(self.shared_modes),
            "score_dtypes": [_dtype_name(d) for d in self.score_dtypes],
            "bias_dtypes": self.bias_dtypes
            if isinstance(self.bias_dtypes, str)
            else [_dtype_name(d) for d in self.bias_dtypes],
            "weights": self.weights,
            "row_stride": self.row_stride,
            "min_rows": self.min_rows,
            "limits": list(self.limits),
            "min_compute_capability": None
            if self.min_compute_capability is None
            else ".".join(map(str, self.min_compute_capability)),
            "notes": list(self.notes),
            "presets": [name for name, _ in self.presets()],
            "unsupported": self.unsupported_features(),
        }

    def describe(self) -> str:
        """Several lines for a person: what it computes, takes, writes, and its limits."""
        d = self.to_dict()
        bias = "required" if self.bias == "required" else "optional"
        lines = [
            f"  scoring {', '.join(d['scoring_funcs'])}; bias {bias}; renormalize {d['renormalize']}; "
            f"r on the output {d['scaling_on_output']}; shared slots "
            + (
                "none"
                if self.max_shared == 0
                else "any"
                if self.max_shared is None
                else f"<= {self.max_shared}"
            ),
            f"  scores {', '.join(d['score_dtypes'])}; bias "
            + ("in the scores' dtype" if self.bias_dtypes == "scores" else ", ".join(d["bias_dtypes"]))
            + f"; weights written in {'the scores dtype' if self.weights == 'scores' else 'float32'}; rows "
            + ("contiguous" if self.row_stride == "contiguous" else "any stride")
            + (f"; T >= {self.min_rows}" if self.min_rows else ""),
        ]
        if self.limits:
            lines.append(f"  limits: {'; '.join(self.limits)}")
        if self.min_compute_capability:
            lines.append(f"  GPU: compute capability >= {d['min_compute_capability']}")
        lines.append(f"  presets it accepts: {', '.join(d['presets']) or 'none'}")
        lines.append(f"  SPEC features it does not support: {'; '.join(d['unsupported']) or 'none'}")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"  declared in: {self.source}")
        return "\n".join(lines)


# ---- drawing what a contract accepts ---------------------------------------------------------------------


@functools.cache
def _accepted_shapes(
    contract: Contract, expert_counts: tuple[int, ...]
) -> tuple[tuple[int, int, int, int], ...]:
    """Every (E, G, Kg, K) with E in expert_counts, K <= 32, that SPEC and the contract's limits allow,
    simplest first (Hypothesis shrinks toward the front)."""
    shapes = []
    for E in expert_counts:
        for G in (d for d in range(1, E + 1) if E % d == 0):
            n = E // G
            for Kg in range(1, G + 1):
                for K in range(1, min(Kg * n, _MAX_ENUMERATED_TOPK) + 1):
                    names = {"E": E, "G": G, "Kg": Kg, "K": K, "n": n}
                    if all(eval(_compiled(e), {"__builtins__": {}}, names) for e in contract.limits):
                        shapes.append((E, G, Kg, K))
    return tuple(shapes)


def contract_configs(contract: Contract, *, max_experts: int = 1024) -> st.SearchStrategy[RoutingConfig]:
    """RoutingConfigs the contract accepts: drawn shapes within its limits (E from the strategies' expert
    counts up to `max_experts`) and the presets it accepts, with the knobs it supports drawn freely."""
    from ..strategies import EXPERT_COUNTS, SCALING_FACTORS, routing_configs

    unrestricted = Contract(name=contract.name, source=contract.source)
    knobs_free = (
        contract.scoring_funcs == unrestricted.scoring_funcs
        and contract.renormalize == unrestricted.renormalize
        and contract.scaling_on_output == unrestricted.scaling_on_output
        and contract.max_shared is None
        and contract.shared_modes == unrestricted.shared_modes
    )
    if knobs_free and not contract.limits:
        return routing_configs(max_experts=max_experts)
    counts = tuple(e for e in EXPERT_COUNTS if e <= max_experts)
    shapes = _accepted_shapes(contract, counts)
    if not shapes:
        raise ValueError(f"contract {contract.name!r} accepts no shape with E <= {max_experts}")
    max_shared = 4 if contract.max_shared is None else min(4, contract.max_shared)

    @st.composite
    def drawn(draw: st.DrawFn) -> RoutingConfig:
        E, G, Kg, K = draw(st.sampled_from(shapes))
        return RoutingConfig(
            num_experts=E,
            topk=K,
            num_expert_group=G,
            topk_group=Kg,
            scoring_func=draw(st.sampled_from(contract.scoring_funcs)),
            renormalize=draw(st.sampled_from(contract.renormalize)),
            routed_scaling_factor=draw(st.sampled_from(SCALING_FACTORS)),
            num_fused_shared_experts=draw(st.integers(0, max_shared)),
            shared_expert_mode=draw(st.sampled_from(contract.shared_modes)),
            apply_routed_scaling_factor_on_output=draw(st.sampled_from(contract.scaling_on_output)),
        )

    presets = [config for _, config in contract.presets() if config.num_experts <= max_experts]
    if not presets:
        return drawn()

    @st.composite
    def preset_variant(draw: st.DrawFn) -> RoutingConfig:
        config = draw(st.sampled_from(presets))
        return config.replace(
            apply_routed_scaling_factor_on_output=draw(st.sampled_from(contract.scaling_on_output)),
            shared_expert_mode=draw(st.sampled_from(contract.shared_modes)),
        )

    return st.one_of(drawn(), preset_variant())


# The full SPEC.md contract: what the reference and moegate's own kernel implement.
SPEC_CONTRACT = Contract(name="spec", source="SPEC.md")
