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

from moegate.properties.peers import Contract
from moegate.reference import RoutingConfig, route

# A FlashInfer-like contract, the shape `verify` and the benchmark read.
FAKE_PEER_CONTRACT = Contract(
    name="fake-peer",
    source="tests/bench_fake_impls.py",
    bias="required",
    renormalize=(True,),
    scaling_on_output=(True,),
    max_shared=0,
    shared_modes=("split",),
    bias_dtypes=(torch.float32,),
    weights="scores",
    limits=("G > 1",),
)


def fake_peer(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference, weights written in the scores' dtype (handed over as float32, as the adapters do)."""
    ids, weights = route(scores, bias, config)
    return ids, weights.to(scores.dtype).float()


fake_peer.contract = FAKE_PEER_CONTRACT  # type: ignore[attr-defined]


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
