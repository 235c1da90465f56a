"""A peer kernel built from its engine's sources and called through ctypes, in moegate's signature.

`CompiledPeer` is what the FlashInfer and vLLM adapters share: check the call against SPEC (`check_inputs`)
and against the peer's `Contract` (a `ValueError` naming what it does not support), allocate the outputs the
engine allocates, launch on torch's current stream through the library's `moegate_peer_route`, and hand the
outputs back as `(ids int32 [T, K], weights float32 [T, K])` (weights written in the scores' dtype are
widened exactly). A launcher that rejects a call the contract accepts raises `PeerLaunchError`: in `verify`
that is a failure, a finding about the peer.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from moegate.reference import RoutingConfig, check_inputs

from .build import PeerUnavailable, build_library, find_nvcc, find_sources, gpu_arch
from .contract import Contract

# moegate.optimized.dispatch.SCORE_DTYPE_CODES, which the shims use too.
DTYPE_CODES: dict[torch.dtype, int] = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}


def _indexed(device: torch.device) -> torch.device:
    """A CUDA device with its index (the current one when none is given)."""
    return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())


class PeerLaunchError(RuntimeError):
    """The peer's own launcher rejected a call, or its launch failed."""


@dataclass(frozen=True)
class PeerInfo:
    """What `moegate peers` shows about a peer that needs no build: name, description, contract."""

    name: str
    description: str
    contract: Contract


class CompiledPeer:
    """A peer kernel built from sources. Subclasses define `layout`, `plan(sources, arch)` (the
    BuildPlan), `argtypes` and `call(lib, ...)`; see flashinfer.py and vllm.py.

    The library is built (or found in the cache) on first use, once per process and GPU architecture.
    """

    name: str
    description: str
    contract: Contract

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._libraries: dict[str, ctypes.CDLL] = {}

    # -- to be defined by each peer
    argtypes: tuple[type, ...]  # moegate_peer_route's parameter types (ctypes)

    def layout(self):
        raise NotImplementedError

    def plan(self, sources, arch: str):
        raise NotImplementedError

    def launch(self, lib: ctypes.CDLL, scores: torch.Tensor, bias: torch.Tensor, config: RoutingConfig,
               values: torch.Tensor, ids: torch.Tensor, stream: int) -> int:  # fmt: skip
        raise NotImplementedError

    # -- shared
    def availability(self) -> str | None:
        """Why this peer cannot run here (sources, nvcc, GPU), or None. Builds nothing."""
        try:
            find_sources(self.layout())
            find_nvcc()
            capability, _ = gpu_arch()
        except PeerUnavailable as exc:
            return str(exc)
        needed = self.contract.min_compute_capability
        if needed is not None and capability < needed:
            return (
                f"the GPU's compute capability {capability[0]}.{capability[1]} is older than the "
                f"{needed[0]}.{needed[1]} {self.name} needs"
            )
        return None

    def library(self, device: torch.device) -> ctypes.CDLL:
        """The built library for the GPU of `device` (built on first use)."""
        capability, arch = gpu_arch(device.index)
        needed = self.contract.min_compute_capability
        if needed is not None and capability < needed:
            raise PeerUnavailable(
                f"{self.name} needs compute capability >= {needed[0]}.{needed[1]}; "
                f"{device} is {capability[0]}.{capability[1]}"
            )
        with self._lock:
            if arch not in self._libraries:
                sources = find_sources(self.layout())
                path = build_library(self.plan(sources, arch))
                lib = ctypes.CDLL(str(path))
                lib.moegate_peer_error.restype = ctypes.c_char_p
                lib.moegate_peer_route.restype = ctypes.c_int
                lib.moegate_peer_route.argtypes = list(self.argtypes)
                self._libraries[arch] = lib
            return self._libraries[arch]

    def prepare(self, device: str | torch.device = "cuda") -> Path | None:
        """Build (or load) the library now, so that the first timed or verified call does not."""
        self.library(_indexed(torch.device(device)))
        return None

    def __call__(
        self, scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Route with the peer kernel: scores [T, E] and bias [E] on a CUDA device, as its contract says.

        Returns ids int32 [T, K] and weights float32 [T, K] on the scores' device. Raises ValueError for
        what SPEC or the contract rejects (before any GPU work), PeerUnavailable when it cannot be built
        here, PeerLaunchError when its own launcher rejects the call.
        """
        check_inputs(scores, bias, config)
        if scores.device.type != "cuda":
            raise TypeError(f"scores.device={scores.device}, but {self.name} runs on CUDA tensors only")
        dense = scores.shape[0] <= 1 or scores.stride(0) == config.num_experts
        reasons = self.contract.rejects(
            config,
            scores.dtype,
            None if bias is None else bias.dtype,
            num_rows=scores.shape[0],
            dense_rows=dense,
        )
        if reasons:
            raise ValueError(f"{self.name} does not support this call: " + "; ".join(reasons))
        if bias is None:  # every contract built from sources requires one; rejects() said so already
            raise ValueError(f"bias=None, but {self.name} requires a bias")
        device = _indexed(scores.device)
        lib = self.library(device)
        num_rows, topk = scores.shape[0], config.topk
        values = torch.empty((num_rows, topk), dtype=self.contract.weight_dtype(scores.dtype), device=device)
        ids = torch.empty((num_rows, topk), dtype=torch.int32, device=device)
        with torch.cuda.device(device):
            stream = torch.cuda.current_stream(device).cuda_stream
            status = self.launch(lib, scores, bias, config, values, ids, stream)
        if status != 0:
            message = (lib.moegate_peer_error() or b"").decode(errors="replace")
            raise PeerLaunchError(
                f"{self.name}'s launcher failed (status {status}): {message or 'no message'}"
            )
        return ids, values.to(torch.float32)
