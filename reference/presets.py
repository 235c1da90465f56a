"""Routing configurations of real models (SPEC.md, "Real model configurations").

Each preset is a `RoutingConfig` read from the model's published `config.json` (Hugging Face Hub).
`PRESET_HAS_BIAS` records whether the model has an `e_score_correction_bias`: the bias is an input to
`route`, not a config field, but demos, tests and fixtures need to know whether to pass one.
"""

from __future__ import annotations

from .config import RoutingConfig

PRESETS: dict[str, RoutingConfig] = {
    # deepseek-ai/DeepSeek-V3 (and DeepSeek-R1) config.json: n_routed_experts=256, num_experts_per_tok=8,
    # n_group=8, topk_group=4, scoring_func="sigmoid", topk_method="noaux_tc", norm_topk_prob=true,
    # routed_scaling_factor=2.5, n_shared_experts=1.
    "deepseek-v3": RoutingConfig(
        num_experts=256,
        topk=8,
        num_expert_group=8,
        topk_group=4,
        scoring_func="sigmoid",
        renormalize=True,
        routed_scaling_factor=2.5,
        num_fused_shared_experts=1,
    ),
    # deepseek-ai/DeepSeek-V2 config.json: n_routed_experts=160, num_experts_per_tok=6, n_group=8,
    # topk_group=3, scoring_func="softmax", topk_method="group_limited_greedy", norm_topk_prob=false,
    # routed_scaling_factor=16.0, n_shared_experts=2.
    "deepseek-v2": RoutingConfig(
        num_experts=160,
        topk=6,
        num_expert_group=8,
        topk_group=3,
        scoring_func="softmax",
        renormalize=False,
        routed_scaling_factor=16.0,
        num_fused_shared_experts=2,
    ),
    # deepseek-ai/DeepSeek-V2-Lite config.json: n_routed_experts=64, num_experts_per_tok=6, n_group=1,
    # topk_group=1, scoring_func="softmax", topk_method="greedy", norm_topk_prob=false,
    # routed_scaling_factor=1.0, n_shared_experts=2.
    "deepseek-v2-lite": RoutingConfig(
        num_experts=64,
        topk=6,
        scoring_func="softmax",
        renormalize=False,
        routed_scaling_factor=1.0,
        num_fused_shared_experts=2,
    ),
    # moonshotai/Kimi-K2-Instruct config.json: n_routed_experts=384, num_experts_per_tok=8, n_group=1,
    # topk_group=1, scoring_func="sigmoid", topk_method="noaux_tc", norm_topk_prob=true,
    # routed_scaling_factor=2.827, n_shared_experts=1.
    "kimi-k2": RoutingConfig(
        num_experts=384,
        topk=8,
        scoring_func="sigmoid",
        renormalize=True,
        routed_scaling_factor=2.827,
        num_fused_shared_experts=1,
    ),
    # moonshotai/Moonlight-16B-A3B config.json: n_routed_experts=64, num_experts_per_tok=6, n_group=1,
    # topk_group=1, scoring_func="sigmoid", topk_method="noaux_tc", norm_topk_prob=true,
    # routed_scaling_factor=2.446, n_shared_experts=2.
    "moonlight-16b-a3b": RoutingConfig(
        num_experts=64,
        topk=6,
        scoring_func="sigmoid",
        renormalize=True,
        routed_scaling_factor=2.446,
        num_fused_shared_experts=2,
    ),
    # zai-org/GLM-4.5 config.json: n_routed_experts=160, num_experts_per_tok=8, n_group=1, topk_group=1,
    # (sigmoid router with e_score_correction_bias), norm_topk_prob=true, routed_scaling_factor=2.5,
    # n_shared_experts=1.
    "glm-4.5": RoutingConfig(
        num_experts=160,
        topk=8,
        scoring_func="sigmoid",
        renormalize=True,
        routed_scaling_factor=2.5,
        num_fused_shared_experts=1,
    ),
    # zai-org/GLM-4.5-Air config.json: n_routed_experts=128, num_experts_per_tok=8, n_group=1,
    # topk_group=1, (sigmoid router with e_score_correction_bias), norm_topk_prob=true,
    # routed_scaling_factor=1.0, n_shared_experts=1.
    "glm-4.5-air": RoutingConfig(
        num_experts=128,
        topk=8,
        scoring_func="sigmoid",
        renormalize=True,
        routed_scaling_factor=1.0,
        num_fused_shared_experts=1,
    ),
    # Qwen/Qwen3-30B-A3B and Qwen/Qwen3-235B-A22B config.json: num_experts=128, num_experts_per_tok=8,
    # norm_topk_prob=true, softmax router, no shared expert.
    "qwen3-moe": RoutingConfig(
        num_experts=128,
        topk=8,
        scoring_func="softmax",
        renormalize=True,
    ),
    # Qwen/Qwen3-Next-80B-A3B-Instruct config.json: num_experts=512, num_experts_per_tok=10,
    # norm_topk_prob=true, softmax router. Its shared expert has its own sigmoid gate, so it is not
    # folded into the routing output (S = 0).
    "qwen3-next-80b-a3b": RoutingConfig(
        num_experts=512,
        topk=10,
        scoring_func="softmax",
        renormalize=True,
    ),
    # mistralai/Mixtral-8x7B-v0.1 config.json: num_local_experts=8, num_experts_per_tok=2; the model
    # takes the softmax of the router logits, then top-2, then renormalizes.
    "mixtral-8x7b": RoutingConfig(
        num_experts=8,
        topk=2,
        scoring_func="softmax",
        renormalize=True,
    ),
    # openai/gpt-oss-120b config.json: num_local_experts=128, num_experts_per_tok=4 (experts_per_token).
    # Its code takes top-k of the logits, then a softmax over the chosen four: the same function as
    # softmax over the row, top-k, renormalize.
    "gpt-oss-120b": RoutingConfig(
        num_experts=128,
        topk=4,
        scoring_func="softmax",
        renormalize=True,
    ),
    # meta-llama/Llama-4-Maverick-17B-128E config.json: num_local_experts=128, num_experts_per_tok=1,
    # one shared expert. Its code takes top-1 of the logits, then a sigmoid: the same function as
    # sigmoid, top-1, no renormalization.
    "llama-4-maverick": RoutingConfig(
        num_experts=128,
        topk=1,
        scoring_func="sigmoid",
        renormalize=False,
        routed_scaling_factor=1.0,
        num_fused_shared_experts=1,
    ),
}

# Whether the model has an e_score_correction_bias (SPEC.md's "bias" column).
PRESET_HAS_BIAS: dict[str, bool] = {
    "deepseek-v3": True,
    "deepseek-v2": False,
    "deepseek-v2-lite": False,
    "kimi-k2": True,
    "moonlight-16b-a3b": True,
    "glm-4.5": True,
    "glm-4.5-air": True,
    "qwen3-moe": False,
    "qwen3-next-80b-a3b": False,
    "mixtral-8x7b": False,
    "gpt-oss-120b": False,
    "llama-4-maverick": False,
}

# Aliases that SPEC.md's table names in parentheses.
PRESET_ALIASES: dict[str, str] = {
    "deepseek-r1": "deepseek-v3",
    "qwen3-30b-a3b": "qwen3-moe",
    "qwen3-235b-a22b": "qwen3-moe",
}


def preset_names() -> list[str]:
    """The canonical preset names, in SPEC.md's table order."""
    return list(PRESETS)


def get_preset(name: str) -> RoutingConfig:
    """The preset called `name` (case-insensitive; SPEC.md's aliases such as "deepseek-r1" accepted).

    Raises:
        TypeError: `name` is not a str.
        ValueError: unknown name; the message lists the valid names.
    """
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} ({type(name).__name__}), but a preset name must be a str")
    key = name.strip().lower().replace("_", "-")
    key = PRESET_ALIASES.get(key, key)
    if key not in PRESETS:
        valid = ", ".join([*PRESETS, *PRESET_ALIASES])
        raise ValueError(f"preset={name!r} is not a known preset; valid names: {valid}")
    return PRESETS[key]


def preset_has_bias(name: str) -> bool:
    """Whether the preset's model has an e_score_correction_bias."""
    key = name.strip().lower().replace("_", "-")
    key = PRESET_ALIASES.get(key, key)
    get_preset(key)
    return PRESET_HAS_BIAS[key]
