"""moegate.reference: the readable PyTorch definition of the routing contract (SPEC.md).

`route(scores, bias, config)` is SPEC.md steps 1 to 8; each step is also a public function named after
it, so notebooks and tests can look at every stage.
"""

from .config import BIAS_DTYPES, SCORE_DTYPES, SCORING_FUNCS, SHARED_EXPERT_MODES, RoutingConfig, check_inputs
from .presets import PRESET_HAS_BIAS, PRESETS, get_preset, preset_has_bias, preset_names
from .routing import (
    RENORMALIZE_EPSILON,
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

__all__ = [
    "BIAS_DTYPES",
    "PRESETS",
    "PRESET_HAS_BIAS",
    "RENORMALIZE_EPSILON",
    "SCORE_DTYPES",
    "SCORING_FUNCS",
    "SHARED_EXPERT_MODES",
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
