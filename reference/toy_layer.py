"""A toy MoE layer, so that SPEC.md's invariant can be stated end to end.

Each expert is a small random matrix: E_i(x) = x @ W_i. `fused` combines a fused routing result (routed
and shared slots in one [T, W] output); `unfused` computes the layer the way a model without fused
shared experts does: `r * sum(w_i * E_i(x)) + sum(shared_j(x))`. SPEC.md says the two are equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import RoutingConfig
from .routing import (
    biased_scores,
    expert_selection,
    group_scores,
    group_selection,
    probabilities,
    routed_weights,
)


@dataclass(frozen=True)
class ToyMoE:
    """Random expert matrices for one RoutingConfig.

    routed: [E, H, H] float64, one matrix per routed expert.
    shared: [S, H, H] float64 in split mode (S distinct shared experts); [1, H, H] in replica mode
        (the S ids E..E+S-1 are copies of one shared expert); [0, H, H] when S = 0.
    """

    config: RoutingConfig
    routed: torch.Tensor
    shared: torch.Tensor

    def shared_expert_for_id(self, expert_id: int) -> torch.Tensor:
        """The [H, H] matrix behind a shared id E + j (all replicas share one matrix)."""
        j = expert_id - self.config.num_experts
        return self.shared[0] if self.config.shared_expert_mode == "replica" else self.shared[j]

    def fused(self, x: torch.Tensor, topk_ids: torch.Tensor, topk_weights: torch.Tensor) -> torch.Tensor:
        """Combine a fused routing output: c * sum over slots of w_slot * Expert[id](x).

        x [T, H], topk_ids [T, W] int, topk_weights [T, W] float -> [T, H] float64. c = 1 when r is
        applied on the output, else r (the caller's scaling).
        """
        E = self.config.num_experts
        out = torch.zeros(x.shape, dtype=torch.float64)
        xs = x.to(torch.float64).cpu()
        ids, ws = topk_ids.cpu().tolist(), topk_weights.to(torch.float64).cpu()
        for t, row_ids in enumerate(ids):
            for slot, expert_id in enumerate(row_ids):
                matrix = self.routed[expert_id] if expert_id < E else self.shared_expert_for_id(expert_id)
                out[t] += ws[t, slot] * (xs[t] @ matrix)
        return self.config.effective_scale * out

    def unfused(self, x: torch.Tensor, scores: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The unfused layer: r * sum(w_i * E_i(x)) + sum(shared_j(x)), routing by steps 1 to 6 only.

        x [T, H], scores [T, E], bias [E] or None -> [T, H] float64.
        """
        cfg = self.config
        p = probabilities(scores, cfg.scoring_func)
        b = biased_scores(p, bias)
        kept = group_selection(group_scores(b, cfg.num_expert_group, bias is not None), cfg.topk_group)
        ids = expert_selection(b, kept, cfg.num_expert_group, cfg.topk)
        w = routed_weights(p, ids, cfg.renormalize).to(torch.float64).cpu()
        xs = x.to(torch.float64).cpu()
        routed_out = torch.einsum("tk,tkh->th", w, torch.einsum("th,tkhj->tkj", xs, self.routed[ids.cpu()]))
        shared_out = torch.zeros_like(xs)
        for matrix in self.shared:  # replica mode: one shared expert, counted once
            shared_out += xs @ matrix
        return cfg.routed_scaling_factor * routed_out + shared_out


def make_toy_moe(config: RoutingConfig, hidden: int = 8, seed: int = 0) -> ToyMoE:
    """A ToyMoE with random float64 experts of size [hidden, hidden] drawn from `seed`."""
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden={hidden!r}, but hidden must be an int >= 1")
    gen = torch.Generator().manual_seed(seed)
    routed = torch.randn(config.num_experts, hidden, hidden, generator=gen, dtype=torch.float64)
    num_shared = (
        config.num_fused_shared_experts
        if config.shared_expert_mode == "split"
        else min(config.num_fused_shared_experts, 1)
    )
    shared = torch.randn(num_shared, hidden, hidden, generator=gen, dtype=torch.float64)
    return ToyMoE(config=config, routed=routed, shared=shared)
