"""Peers: the routing kernels that engines ship, built from their own sources and judged on their own
contracts, plus `torch.compile` of the reference.

One module per peer, each a declaration (a `Contract`: what it accepts and writes, read from its code),
a build and a call:

- `flashinfer-default`, `flashinfer-cake`: FlashInfer's `fused_topk_deepseek` (flashinfer.py)
- `vllm`: vLLM's `grouped_topk` CUDA op (vllm.py)
- `compile`: `torch.compile(moegate.reference.route)` (compiled.py)

`contract.py` holds the Contract and the strategy that draws what a contract accepts; `build.py` finds
sources (an installed package, a wheel or sdist, a directory: $MOEGATE_PEER_SOURCES) and builds them into
the cache ($MOEGATE_CACHE_DIR); `kernel.py` calls a built kernel through ctypes on torch's current stream.
FlashInfer and vLLM are never imported, and never dependencies of moegate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .build import PeerUnavailable, cache_dir
from .contract import SPEC_CONTRACT, Contract, contract_configs
from .kernel import CompiledPeer, PeerLaunchError

PEER_NAMES = ("flashinfer-default", "flashinfer-cake", "vllm", "compile")


@dataclass(frozen=True)
class Peer:
    """A peer by name: what it is, its contract, whether it can run here, and the callable.

    fn: `fn(scores, bias, config) -> (ids int32 [T, W], weights float32 [T, W])`.
    prepare: builds or compiles ahead of the first call (None when there is nothing to build).
    unavailable: why it cannot run here (sources, nvcc, GPU), or None.
    """

    name: str
    description: str
    contract: Contract
    fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    prepare: Callable[..., Any] | None
    unavailable: str | None


_INSTANCES: dict[str, CompiledPeer] = {}


def _compiled_peer(name: str) -> CompiledPeer:
    if name not in _INSTANCES:
        if name == "vllm":
            from .vllm import VllmPeer

            _INSTANCES[name] = VllmPeer()
        else:
            from .flashinfer import FlashInferPeer

            _INSTANCES[name] = FlashInferPeer(cake=name == "flashinfer-cake")
    return _INSTANCES[name]


def get_peer(name: str) -> Peer:
    """The peer `name` (one of PEER_NAMES). Nothing is built; `unavailable` says what is missing."""
    if name not in PEER_NAMES:
        raise ValueError(f"peer={name!r}, but peer must be one of {PEER_NAMES}")
    if name == "compile":
        from . import compiled

        return Peer(
            name="compile",
            description="torch.compile(moegate.reference.route) (SPEC-complete)",
            contract=compiled.CONTRACT,
            fn=compiled.route,
            prepare=None,
            unavailable=None,
        )
    peer = _compiled_peer(name)
    return Peer(
        name=name,
        description=peer.description,
        contract=peer.contract,
        fn=peer,
        prepare=peer.prepare,
        unavailable=peer.availability(),
    )


__all__ = [
    "PEER_NAMES",
    "SPEC_CONTRACT",
    "CompiledPeer",
    "Contract",
    "Peer",
    "PeerLaunchError",
    "PeerUnavailable",
    "cache_dir",
    "contract_configs",
    "get_peer",
]
