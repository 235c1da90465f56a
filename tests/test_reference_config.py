"""RoutingConfig validation, derived sizes, presets, and `route`'s input checks (SPEC.md, "Inputs")."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from moegate.reference import PRESET_HAS_BIAS, PRESETS, RoutingConfig, get_preset, preset_has_bias, route

GOOD = dict(num_experts=16, topk=4, num_expert_group=4, topk_group=2)


def make(**changes) -> RoutingConfig:
    return RoutingConfig(**{**GOOD, **changes})


# ---- every field's rule: (changes, exception, words the message must contain) ------------------------
INVALID_CONFIGS = [
    (dict(num_experts=0), ValueError, ["num_experts=0", ">= 1"]),
    (dict(num_experts=16.0), TypeError, ["num_experts=16.0", "int"]),
    (dict(num_experts=True), TypeError, ["num_experts=True", "int"]),
    (dict(num_expert_group=0), ValueError, ["num_expert_group=0", ">= 1"]),
    (dict(num_expert_group=5), ValueError, ["num_expert_group=5", "divide", "num_experts=16"]),
    (dict(topk_group=0), ValueError, ["topk_group=0", ">= 1"]),
    (dict(topk_group=5), ValueError, ["topk_group=5", "<= num_expert_group=4"]),
    (dict(topk=0), ValueError, ["topk=0", ">= 1"]),
    (dict(topk=9), ValueError, ["topk=9", "2 * 16 / 4 = 8"]),
    (dict(topk="4"), TypeError, ["topk='4'", "int"]),
    (dict(scoring_func="relu"), ValueError, ["scoring_func='relu'", "sigmoid", "softmax"]),
    (dict(scoring_func=None), TypeError, ["scoring_func=None", "str"]),
    (dict(renormalize=1), TypeError, ["renormalize=1", "bool"]),
    (dict(routed_scaling_factor=0.0), ValueError, ["routed_scaling_factor=0.0", "finite and > 0"]),
    (dict(routed_scaling_factor=-2.5), ValueError, ["routed_scaling_factor=-2.5", "> 0"]),
    (dict(routed_scaling_factor=math.inf), ValueError, ["routed_scaling_factor=inf", "finite"]),
    (dict(routed_scaling_factor=math.nan), ValueError, ["routed_scaling_factor=nan", "finite"]),
    (dict(routed_scaling_factor="2.5"), TypeError, ["routed_scaling_factor='2.5'", "float"]),
    (dict(routed_scaling_factor=True), TypeError, ["routed_scaling_factor=True", "float"]),
    (dict(num_fused_shared_experts=-1), ValueError, ["num_fused_shared_experts=-1", ">= 0"]),
    (dict(num_fused_shared_experts=1.0), TypeError, ["num_fused_shared_experts=1.0", "int"]),
    (dict(shared_expert_mode="copy"), ValueError, ["shared_expert_mode='copy'", "split", "replica"]),
    (dict(shared_expert_mode=1), TypeError, ["shared_expert_mode=1", "str"]),
    (
        dict(apply_routed_scaling_factor_on_output="yes"),
        TypeError,
        ["apply_routed_scaling_factor_on_output='yes'"],
    ),
]


@pytest.mark.parametrize(("changes", "error", "words"), INVALID_CONFIGS, ids=lambda v: str(v)[:40])
def test_invalid_config_raises_naming_field_value_and_rule(changes, error, words) -> None:
    with pytest.raises(error) as info:
        make(**changes)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_boundary_values_are_valid() -> None:
    make(topk=8)  # K = Kg * E / G
    make(topk_group=4, topk=16)  # every group kept, K = E
    RoutingConfig(num_experts=1, topk=1)  # the smallest router
    RoutingConfig(num_experts=8, topk=1, num_expert_group=8, topk_group=8)  # one expert per group
    make(num_fused_shared_experts=0, shared_expert_mode="replica")  # replica with S = 0: no slot


def test_config_is_frozen_and_keyword_only() -> None:
    cfg = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.topk = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        RoutingConfig(16, 4)  # type: ignore[misc]


def test_routed_scaling_factor_is_stored_as_float() -> None:
    assert make(routed_scaling_factor=2).routed_scaling_factor == 2.0
    assert isinstance(make(routed_scaling_factor=2).routed_scaling_factor, float)


@pytest.mark.parametrize(
    ("changes", "width"),
    [
        (dict(), 4),  # S = 0: K
        (dict(num_fused_shared_experts=3), 7),  # split: K + S
        (dict(num_fused_shared_experts=3, shared_expert_mode="replica"), 5),  # replica: K + 1
        (dict(num_fused_shared_experts=0, shared_expert_mode="replica"), 4),
    ],
)
def test_output_width(changes, width: int) -> None:
    cfg = make(**changes)
    assert cfg.output_width == width
    ids, weights = route(torch.randn(3, 16), None, cfg)
    assert ids.shape == weights.shape == (3, width)


def test_derived_sizes() -> None:
    cfg = make()
    assert (cfg.experts_per_group, cfg.max_topk, cfg.num_shared_slots) == (4, 8, 0)
    assert make(routed_scaling_factor=2.5).effective_scale == 2.5
    assert make(routed_scaling_factor=2.5, apply_routed_scaling_factor_on_output=True).effective_scale == 1.0


def test_replace_and_to_dict_round_trip() -> None:
    cfg = make(routed_scaling_factor=2.5)
    assert RoutingConfig(**cfg.to_dict()) == cfg
    assert cfg.replace(topk=2).topk == 2
    with pytest.raises(ValueError, match="topk=99"):
        cfg.replace(topk=99)


# ---- presets ----------------------------------------------------------------------------------------
# SPEC.md's table, typed in again here: E, K, G, Kg, scoring, bias, renorm, r, S
SPEC_TABLE = {
    "deepseek-v3": (256, 8, 8, 4, "sigmoid", True, True, 2.5, 1),
    "deepseek-v2": (160, 6, 8, 3, "softmax", False, False, 16.0, 2),
    "deepseek-v2-lite": (64, 6, 1, 1, "softmax", False, False, 1.0, 2),
    "kimi-k2": (384, 8, 1, 1, "sigmoid", True, True, 2.827, 1),
    "moonlight-16b-a3b": (64, 6, 1, 1, "sigmoid", True, True, 2.446, 2),
    "glm-4.5": (160, 8, 1, 1, "sigmoid", True, True, 2.5, 1),
    "glm-4.5-air": (128, 8, 1, 1, "sigmoid", True, True, 1.0, 1),
    "qwen3-moe": (128, 8, 1, 1, "softmax", False, True, 1.0, 0),
    "qwen3-next-80b-a3b": (512, 10, 1, 1, "softmax", False, True, 1.0, 0),
    "mixtral-8x7b": (8, 2, 1, 1, "softmax", False, True, 1.0, 0),
    "gpt-oss-120b": (128, 4, 1, 1, "softmax", False, True, 1.0, 0),
    "llama-4-maverick": (128, 1, 1, 1, "sigmoid", False, False, 1.0, 1),
}


@pytest.mark.parametrize("name", list(SPEC_TABLE))
def test_presets_match_spec_table(name: str) -> None:
    cfg = get_preset(name)
    E, K, G, Kg, scoring, bias, renorm, r, S = SPEC_TABLE[name]
    got = (cfg.num_experts, cfg.topk, cfg.num_expert_group, cfg.topk_group, cfg.scoring_func)
    assert got == (E, K, G, Kg, scoring)
    assert (PRESET_HAS_BIAS[name], cfg.renormalize, cfg.routed_scaling_factor) == (bias, renorm, r)
    assert cfg.num_fused_shared_experts == S
    assert preset_has_bias(name) == bias
    assert set(PRESETS) == set(SPEC_TABLE)


def test_preset_lookup_aliases_and_typos() -> None:
    assert get_preset("DeepSeek-R1") is PRESETS["deepseek-v3"]
    assert get_preset("qwen3-235b-a22b") is PRESETS["qwen3-moe"]
    with pytest.raises(ValueError) as info:
        get_preset("deepseek-v4")
    assert (
        "deepseek-v4" in str(info.value)
        and "kimi-k2" in str(info.value)
        and "mixtral-8x7b" in str(info.value)
    )
    with pytest.raises(TypeError, match="str"):
        get_preset(3)  # type: ignore[arg-type]


# ---- route's input checks ---------------------------------------------------------------------------
CFG = make()
INVALID_INPUTS = [
    (lambda: ([[0.0] * 16], None, CFG), TypeError, ["scores", "torch.Tensor"]),
    (lambda: (torch.zeros(2, 16, dtype=torch.float64), None, CFG), TypeError, ["scores.dtype=torch.float64"]),
    (lambda: (torch.zeros(2, 16, dtype=torch.int32), None, CFG), TypeError, ["scores.dtype=torch.int32"]),
    (lambda: (torch.zeros(16), None, CFG), ValueError, ["scores.shape=(16,)", "2-D"]),
    (lambda: (torch.zeros(2, 15), None, CFG), ValueError, ["scores.shape=(2, 15)", "num_experts=16"]),
    (lambda: (torch.zeros(16, 2).t(), None, CFG), ValueError, ["stride", "contiguous"]),
    (lambda: (torch.zeros(2, 16), [0.0] * 16, CFG), TypeError, ["bias", "torch.Tensor"]),
    (
        lambda: (torch.zeros(2, 16), torch.zeros(16, dtype=torch.float64), CFG),
        TypeError,
        ["bias.dtype=torch.float64"],
    ),
    (lambda: (torch.zeros(2, 16), torch.zeros(15), CFG), ValueError, ["bias.shape=(15,)", "(16,)"]),
    (
        lambda: (torch.zeros(2, 16), torch.zeros(32)[::2], CFG),
        ValueError,
        ["bias.stride()=(2,)", "contiguous"],
    ),
    (lambda: (torch.zeros(2, 16), None, "deepseek-v3"), TypeError, ["config='deepseek-v3'", "RoutingConfig"]),
]


@pytest.mark.parametrize(("args", "error", "words"), INVALID_INPUTS)
def test_invalid_inputs_raise_before_computing(args, error, words) -> None:
    with pytest.raises(error) as info:
        route(*args())
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_row_stride_smaller_than_e_is_rejected() -> None:
    overlapping = torch.zeros(100).as_strided((3, 16), (8, 1))
    with pytest.raises(ValueError, match="row stride must be >= num_experts=16"):
        route(overlapping, None, CFG)
