"""`RoutingConfig`: the routing contract's parameters (SPEC.md, "Inputs"), validated on construction,
and `check_inputs`, the tensor checks shared by every implementation in moegate.

Every violation raises `ValueError` (shapes, values) or `TypeError` (types, dtypes, devices) whose
message names the parameter, the value given and the rule. Never `assert`: asserts vanish under -O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

SCORING_FUNCS = ("sigmoid", "softmax")
SHARED_EXPERT_MODES = ("split", "replica")
SCORE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
BIAS_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _check_int(name: str, value: Any, minimum: int) -> None:
    # bool is an int subclass in Python; a True passed as a count is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}={value!r} ({type(value).__name__}), but {name} must be an int")
    if value < minimum:
        raise ValueError(f"{name}={value!r}, but {name} must be >= {minimum}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r} ({type(value).__name__}), but {name} must be a bool")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise TypeError(
            f"{name}={value!r} ({type(value).__name__}), but {name} must be a str, one of {choices}"
        )
    if value not in choices:
        raise ValueError(f"{name}={value!r}, but {name} must be one of {choices}")


@dataclass(frozen=True, kw_only=True)
class RoutingConfig:
    """The parameters of biased grouped top-k routing (SPEC.md, "Inputs").

    Fields (keyword-only), with SPEC.md's symbols:
        num_experts (E): routed experts, E >= 1.
        topk (K): routed experts per token, 1 <= K <= Kg * (E / G).
        num_expert_group (G): expert groups, G >= 1 and G divides E. Default 1.
        topk_group (Kg): groups kept per token, 1 <= Kg <= G. Default 1.
        scoring_func: "sigmoid" or "softmax". Default "sigmoid".
        renormalize: divide the routed weights by their sum. Default True.
        routed_scaling_factor (r): finite, r > 0. Default 1.0. Stored as a Python float.
        num_fused_shared_experts (S): shared experts folded into the output, S >= 0. Default 0.
        shared_expert_mode: "split" (S slots) or "replica" (one slot, copy E + row % S). Default "split".
        apply_routed_scaling_factor_on_output: multiply every returned weight by r. Default False.
    """

    num_experts: int
    topk: int
    num_expert_group: int = 1
    topk_group: int = 1
    scoring_func: str = "sigmoid"
    renormalize: bool = True
    routed_scaling_factor: float = 1.0
    num_fused_shared_experts: int = 0
    shared_expert_mode: str = "split"
    apply_routed_scaling_factor_on_output: bool = False

    def __post_init__(self) -> None:
        _check_int("num_experts", self.num_experts, 1)
        _check_int("num_expert_group", self.num_expert_group, 1)
        if self.num_experts % self.num_expert_group != 0:
            raise ValueError(
                f"num_expert_group={self.num_expert_group}, but it must divide num_experts={self.num_experts}"
            )
        _check_int("topk_group", self.topk_group, 1)
        if self.topk_group > self.num_expert_group:
            raise ValueError(
                f"topk_group={self.topk_group}, but it must be <= num_expert_group={self.num_expert_group}"
            )
        _check_int("topk", self.topk, 1)
        if self.topk > self.max_topk:
            raise ValueError(
                f"topk={self.topk}, but it must be <= topk_group * num_experts / num_expert_group = "
                f"{self.topk_group} * {self.num_experts} / {self.num_expert_group} = {self.max_topk}"
            )
        _check_choice("scoring_func", self.scoring_func, SCORING_FUNCS)
        _check_bool("renormalize", self.renormalize)
        r = self.routed_scaling_factor
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            raise TypeError(
                f"routed_scaling_factor={r!r} ({type(r).__name__}), but routed_scaling_factor must be a float"
            )
        if not math.isfinite(r) or r <= 0:
            raise ValueError(f"routed_scaling_factor={r!r}, but routed_scaling_factor must be finite and > 0")
        object.__setattr__(self, "routed_scaling_factor", float(r))
        _check_int("num_fused_shared_experts", self.num_fused_shared_experts, 0)
        _check_choice("shared_expert_mode", self.shared_expert_mode, SHARED_EXPERT_MODES)
        _check_bool("apply_routed_scaling_factor_on_output", self.apply_routed_scaling_factor_on_output)

    # ---- derived sizes -------------------------------------------------------------------------------
    @property
    def experts_per_group(self) -> int:
        """E / G, the number of experts in each group."""
        return self.num_experts // self.num_expert_group

    @property
    def max_topk(self) -> int:
        """Kg * E / G, the largest valid topk for this grouping."""
        return self.topk_group * self.experts_per_group

    @property
    def num_shared_slots(self) -> int:
        """Shared slots per row: S (split), 1 (replica with S >= 1), 0 (S = 0)."""
        if self.num_fused_shared_experts == 0:
            return 0
        return self.num_fused_shared_experts if self.shared_expert_mode == "split" else 1

    @property
    def output_width(self) -> int:
        """W, the width of `topk_ids` and `topk_weights`: K + S (split), K + 1 (replica), K (S = 0)."""
        return self.topk + self.num_shared_slots

    @property
    def has_groups(self) -> bool:
        """True when group selection can drop experts (G > 1 and Kg < G)."""
        return self.topk_group < self.num_expert_group

    @property
    def effective_scale(self) -> float:
        """c of SPEC.md's invariant: 1 when r is applied on the output, else r (the caller applies it)."""
        return 1.0 if self.apply_routed_scaling_factor_on_output else self.routed_scaling_factor

    def replace(self, **changes: Any) -> RoutingConfig:
        """A copy with some fields changed, validated like any new config."""
        fields = asdict(self)
        fields.update(changes)
        return RoutingConfig(**fields)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (the inverse of `RoutingConfig(**d)`)."""
        return asdict(self)


def check_inputs(scores: Any, bias: Any, config: Any) -> None:
    """Validate `route`'s arguments (SPEC.md, "Inputs"); raise before anything is computed.

    scores: torch.Tensor [T, E], float32/float16/bfloat16, last dim contiguous, row stride >= E.
    bias: None or torch.Tensor [E], float32/bfloat16/float16, contiguous, on the scores' device.
    config: RoutingConfig.

    Strides are only checked where an implementation steps with them (SPEC.md: any layout torch calls
    contiguous is valid, and an empty tensor is valid whatever its strides): the column stride only when
    T > 0 and E > 1, the row stride only when T > 1, the bias stride only when E > 1. So T = 0 with any
    strides (`torch.tensor(np.empty((0, E)))` has strides (0, 0)), one row with any row stride, E = 1
    with any column stride, and a bias that is a view into a larger buffer are all valid.
    """
    if not isinstance(config, RoutingConfig):
        raise TypeError(f"config={config!r} ({type(config).__name__}), but config must be a RoutingConfig")
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"scores is a {type(scores).__name__}, but scores must be a torch.Tensor")
    if scores.dtype not in SCORE_DTYPES:
        raise TypeError(f"scores.dtype={scores.dtype}, but scores must be one of {SCORE_DTYPES}")
    if scores.dim() != 2:
        raise ValueError(f"scores.shape={tuple(scores.shape)}, but scores must be 2-D [T, E]")
    num_rows, num_cols = scores.shape
    if num_cols != config.num_experts:
        raise ValueError(
            f"scores.shape={tuple(scores.shape)}, but scores.shape[1] must equal "
            f"num_experts={config.num_experts}"
        )
    if num_rows > 0 and num_cols > 1 and scores.stride(1) != 1:
        raise ValueError(
            f"scores.stride()={scores.stride()} with scores.shape={tuple(scores.shape)}, but the last "
            "dimension must be contiguous (stride 1) when T > 0 and E > 1"
        )
    if num_rows > 1 and scores.stride(0) < num_cols:
        raise ValueError(
            f"scores.stride()={scores.stride()} with scores.shape={tuple(scores.shape)}, but the row "
            f"stride must be >= num_experts={num_cols} when T > 1 (rows must not overlap)"
        )
    if bias is None:
        return
    if not isinstance(bias, torch.Tensor):
        raise TypeError(f"bias is a {type(bias).__name__}, but bias must be None or a torch.Tensor")
    if bias.dtype not in BIAS_DTYPES:
        raise TypeError(f"bias.dtype={bias.dtype}, but bias must be one of {BIAS_DTYPES}")
    if tuple(bias.shape) != (config.num_experts,):
        raise ValueError(
            f"bias.shape={tuple(bias.shape)}, but bias must have shape "
            f"(num_experts,) = ({config.num_experts},)"
        )
    if config.num_experts > 1 and bias.stride(0) != 1:
        raise ValueError(
            f"bias.stride()={bias.stride()} with bias.shape={tuple(bias.shape)}, but bias must be "
            "contiguous (stride 1) when E > 1"
        )
    if bias.device != scores.device:
        raise TypeError(f"bias.device={bias.device}, but bias must be on the scores' device {scores.device}")
