"""`moegate presets`: the model presets of SPEC.md with their sources."""

from __future__ import annotations

import argparse
from typing import Any

from moegate.reference import PRESET_HAS_BIAS, get_preset, preset_names

from .common import (
    Out,
    add_common,
    table,
)

# Where each preset's values come from (the published config.json the preset's comment in
# moegate/reference/presets.py cites). Kept here until reference/ grows its own table.
PRESET_SOURCES: dict[str, str] = {
    "deepseek-v3": "deepseek-ai/DeepSeek-V3 (and -R1) config.json",
    "deepseek-v2": "deepseek-ai/DeepSeek-V2 config.json",
    "deepseek-v2-lite": "deepseek-ai/DeepSeek-V2-Lite config.json",
    "kimi-k2": "moonshotai/Kimi-K2-Instruct config.json",
    "moonlight-16b-a3b": "moonshotai/Moonlight-16B-A3B config.json",
    "glm-4.5": "zai-org/GLM-4.5 config.json",
    "glm-4.5-air": "zai-org/GLM-4.5-Air config.json",
    "qwen3-moe": "Qwen/Qwen3-30B-A3B, Qwen/Qwen3-235B-A22B config.json",
    "qwen3-next-80b-a3b": "Qwen/Qwen3-Next-80B-A3B-Instruct config.json",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-v0.1 config.json",
    "gpt-oss-120b": "openai/gpt-oss-120b config.json",
    "llama-4-maverick": "meta-llama/Llama-4-Maverick-17B-128E config.json",
}


def cmd_presets(args: argparse.Namespace, out: Out) -> int:
    rows, docs = [], []
    for name in preset_names():
        c = get_preset(name)
        bias = "yes" if PRESET_HAS_BIAS[name] else "no"
        rows.append(
            (
                name,
                c.num_experts,
                c.topk,
                f"{c.num_expert_group}/{c.topk_group}",
                c.scoring_func,
                bias,
                "yes" if c.renormalize else "no",
                f"{c.routed_scaling_factor:g}",
                c.num_fused_shared_experts,
                c.output_width,
                PRESET_SOURCES.get(name, ""),
            )
        )
        docs.append(
            {
                "name": name,
                "config": c.to_dict(),
                "has_bias": PRESET_HAS_BIAS[name],
                "output_width": c.output_width,
                "source": PRESET_SOURCES.get(name, ""),
            }
        )
    headers = ("preset", "E", "K", "G/Kg", "scoring", "bias", "renorm", "r", "S", "W", "source")
    right = (False, True, True, True, False, False, False, True, True, True, False)
    if args.json:
        out.json({"command": "presets", "ok": True, "presets": docs})
    else:
        out(table(headers, rows, right))
    return 0


def add_parser(sub: Any) -> None:
    """Add this command to the `moegate` subparsers."""
    p = sub.add_parser(
        "presets", help="list the model presets", description="The presets of SPEC.md, with sources."
    )
    add_common(p)
    p.set_defaults(func=cmd_presets)
