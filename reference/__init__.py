"""moegate.reference: the readable PyTorch definition of the routing contract (SPEC.md).

`route(scores, bias, config)` is SPEC.md steps 1 to 8; each step is also a public function named after
it, so notebooks and tests can look at every stage.
"""

import torch as _torch

from .config import BIAS_DTYPES, SCORE_DTYPES, SCORING_FUNCS, SHARED_EXPERT_MODES, RoutingConfig, check_inputs
from .presets import PRESET_HAS_BIAS, PRESETS, get_preset, preset_has_bias, preset_names
from .routing import (
    RENORMALIZE_EPSILON,
    SPEC_STEPS,
    biased_scores,
    expert_selection,
    group_scores,
    group_selection,
    output_scaling,
    probabilities,
    route,
    routed_weights,
    shared_slots,
)
from .toy_layer import ToyMoE, make_toy_moe


def _warm_up_cpu_math() -> None:
    """Run torch's CPU exp once, so that no result of moegate depends on being a process's first call.

    Seen with torch 2.13.0 (CPU build) on a 2-core AVX-512 machine: in about one process in eight, the
    process's *first* CPU exp call returns values off by up to 1.5e-4 relative (float32; 3e-9 for
    float64); every later call, of any size or dtype, is exact to an ulp. One throw-away call absorbs it
    (checked over 30 processes each: a 1-element float32 or a float64 warm-up both fix later float32 calls).
    """
    _torch.exp(_torch.zeros(64, dtype=_torch.float32))
    _torch.exp(_torch.zeros(64, dtype=_torch.float64))


_warm_up_cpu_math()

__all__ = [
    "BIAS_DTYPES",
    "PRESETS",
    "PRESET_HAS_BIAS",
    "RENORMALIZE_EPSILON",
    "SCORE_DTYPES",
    "SCORING_FUNCS",
    "SHARED_EXPERT_MODES",
    "SPEC_STEPS",
    "RoutingConfig",
    "ToyMoE",
    "biased_scores",
    "check_inputs",
    "expert_selection",
    "get_preset",
    "group_scores",
    "group_selection",
    "make_toy_moe",
    "output_scaling",
    "preset_has_bias",
    "preset_names",
    "probabilities",
    "route",
    "routed_weights",
    "shared_slots",
]
