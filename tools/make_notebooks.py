"""Write the notebooks under notebooks/ from the cell lists below (run: python tools/make_notebooks.py).

The notebooks are plain JSON (nbformat 4); tests/test_notebooks.py executes their code cells in order, so
they stay true without a Jupyter kernel in CI.
"""

from __future__ import annotations

import json
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

WALKTHROUGH = [
    (
        "md",
        """# Routing, step by step (SPEC.md steps 1 to 8)

Every step of the routing contract is a small pure function in `moegate.reference`, named after the
step. This notebook routes one DeepSeek-V3 token through each of them and shows the intermediate
tensors, then checks SPEC.md's invariant on a toy MoE layer.""",
    ),
    (
        "code",
        """import torch
from moegate.reference import (get_preset, probabilities, biased_scores, group_scores, group_selection,
                               expert_selection, routed_weights, shared_slots, output_scaling, route,
                               make_toy_moe)

cfg = get_preset("deepseek-v3")
gen = torch.Generator().manual_seed(0)
scores = torch.randn(1, cfg.num_experts, generator=gen).to(torch.bfloat16)   # router logits [T, E]
bias = 0.05 * torch.randn(cfg.num_experts, generator=gen)                  # e_score_correction_bias [E]
cfg""",
    ),
    (
        "code",
        """p = probabilities(scores, cfg.scoring_func)          # step 1: sigmoid, float32
b = biased_scores(p, bias)                           # step 2: p + bias
gs = group_scores(b, cfg.num_expert_group, has_bias=True)   # step 3: top-2 sum per group
kept = group_selection(gs, cfg.topk_group)           # step 4: the best Kg groups
print("group scores:", [round(v, 4) for v in gs[0].tolist()])
print("kept groups :", kept[0].tolist())""",
    ),
    (
        "code",
        """ids = expert_selection(b, kept, cfg.num_expert_group, cfg.topk)   # step 5: top-K, kept groups
w = routed_weights(p, ids, cfg.renormalize)                         # step 6: unbiased p, renormalized
shared_ids, shared_w = shared_slots(cfg, 1, scores.device)          # step 7: shared slot, weight 1/r
print("experts       :", ids[0].tolist())
print("their b       :", [round(v, 4) for v in b[0, ids[0]].tolist()])
print("their p       :", [round(v, 4) for v in p[0, ids[0]].tolist()])
print("routed weights:", [round(v, 4) for v in w[0].tolist()], "sum", round(w.sum().item(), 6))
print("shared        :", shared_ids[0].tolist(), shared_w[0].tolist())""",
    ),
    (
        "code",
        """topk_ids, topk_weights = route(scores, bias, cfg)        # all eight steps
assert topk_ids[0, :cfg.topk].tolist() == ids[0].tolist()
scaled = route(scores, bias, cfg.replace(apply_routed_scaling_factor_on_output=True))[1]   # step 8
print("caller scales by r :", [round(v, 4) for v in topk_weights[0].tolist()])
print("scaled on output   :", [round(v, 4) for v in scaled[0].tolist()])""",
    ),
    (
        "md",
        """## The invariant

With `c = 1` when r is applied on the output and `c = r` otherwise, every shared slot's effective weight
`c * w` is 1 and the routed effective weights sum to r. On a toy layer, combining the fused output equals
the unfused formula `r * sum(w_i * E_i(x)) + sum(shared_j(x))`.""",
    ),
    (
        "code",
        """for apply in (False, True):
    c_cfg = cfg.replace(apply_routed_scaling_factor_on_output=apply)
    many = torch.randn(64, cfg.num_experts, generator=gen)
    ids_, w_ = route(many, bias, c_cfg)
    c = c_cfg.effective_scale
    layer = make_toy_moe(c_cfg, hidden=8, seed=1)
    x = torch.randn(64, 8, dtype=torch.float64, generator=gen)
    err = (layer.fused(x, ids_, w_) - layer.unfused(x, many, bias)).abs().max().item()
    print(f"apply_on_output={apply}: shared c*w = {c * w_[0, -1].item():.7f}, "
          f"routed c*sum = {c * w_[0, :cfg.topk].sum().item():.6f} (r = {cfg.routed_scaling_factor}), "
          f"max |fused - unfused| = {err:.2e}")
    assert err < 1e-5""",
    ),
]


def write(name: str, cells: list[tuple[str, str]]) -> Path:
    """Write one notebook (nbformat 4.5) and return its path."""
    nb_cells = []
    for index, (kind, text) in enumerate(cells):
        cell = {
            "cell_type": "markdown" if kind == "md" else "code",
            "id": f"cell-{index}",
            "metadata": {},
            "source": text.splitlines(keepends=True),
        }
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    notebook = {
        "cells": nb_cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = NOTEBOOKS / name
    path.write_text(json.dumps(notebook, indent=1) + "\n")
    return path


if __name__ == "__main__":
    print(write("01_routing_step_by_step.ipynb", WALKTHROUGH))
