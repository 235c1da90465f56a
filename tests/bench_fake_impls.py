"""Implementations for the benchmark's tests (tests/test_bench.py loads them by file path).

fake_peer: a peer with a FlashInfer-like contract: it rejects configurations without expert groups
    (Kimi-K2, Moonlight), always renormalizes, applies r on the output and has no shared slots (so it
    routes DeepSeek-V3 with S = 0), takes a float32 bias and writes its weights in the scores' dtype.
    It computes with the reference.
route_raises: raises on every call (a row with status "error").
route_wrong_shape: returns one slot too few.
route_syncs: the reference behind a device synchronize, which cannot be captured in a CUDA graph.
"""

from __future__ import annotations

import torch

from moegate.reference import RoutingConfig, route


class FakePeerContract:
    """The contract interface the benchmark reads (`moegate.properties.benchmark`'s docstring)."""

    summary = "fake peer: grouped configs only, renormalize, r on output, no shared slots"

    def project(self, config: RoutingConfig) -> RoutingConfig:
        return config.replace(
            renormalize=True, apply_routed_scaling_factor_on_output=True, num_fused_shared_experts=0
        )

    def accepts(self, config: RoutingConfig, scores_dtype: torch.dtype, bias_dtype: object) -> list[str]:
        reasons = []
        if config.num_expert_group == 1:
            reasons.append(f"num_expert_group={config.num_expert_group}, but it needs expert groups")
        if bias_dtype is None:
            reasons.append("it needs a bias")
        return reasons

    def bias_dtype(self, scores_dtype: torch.dtype) -> torch.dtype:
        return torch.float32

    def weight_dtype(self, scores_dtype: torch.dtype) -> torch.dtype:
        return scores_dtype


def fake_peer(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference, weights written in the scores' dtype."""
    ids, weights = route(scores, bias, config)
    return ids, weights.to(scores.dtype)


fake_peer.contract = FakePeerContract()  # type: ignore[attr-defined]


def route_raises(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    raise RuntimeError("boom: this kernel always fails")


def route_wrong_shape(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    ids, weights = route(scores, bias, config)
    return ids[:, :-1], weights[:, :-1]


def route_syncs(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    if scores.is_cuda:
        torch.cuda.synchronize(scores.device)
    return route(scores, bias, config)
