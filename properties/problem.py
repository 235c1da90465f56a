"""`RoutingProblem`: one routing call's inputs, the unit that strategies draw, oracles judge and fixtures
store."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from moegate.reference import RoutingConfig, check_inputs


@dataclass(frozen=True)
class RoutingProblem:
    """The inputs of one `route` call.

    config: the RoutingConfig.
    scores: [T, E] float32/float16/bfloat16 (row stride may exceed E), CPU or CUDA.
    bias: [E] float32/bfloat16/float16 on the scores' device, or None.
    seed: the seed that generated it, when one did (reports print it so a failure can be replayed).
    note: a short human label ("all-NaN rows", "preset deepseek-v3").
    """

    config: RoutingConfig
    scores: torch.Tensor
    bias: torch.Tensor | None
    seed: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        check_inputs(self.scores, self.bias, self.config)

    @property
    def num_rows(self) -> int:
        """T."""
        return int(self.scores.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        """The scores' dtype."""
        return self.scores.dtype

    @property
    def device(self) -> torch.device:
        """The scores' device."""
        return self.scores.device

    def to(self, device: str | torch.device) -> RoutingProblem:
        """The same problem with its tensors on `device` (rows become contiguous)."""
        bias = None if self.bias is None else self.bias.to(device)
        return replace(self, scores=self.scores.to(device), bias=bias)

    def rows(self, start: int, stop: int) -> RoutingProblem:
        """The problem restricted to rows [start, stop) (a view, strides kept)."""
        return replace(self, scores=self.scores[start:stop])

    def describe(self) -> str:
        """One line: config, dtype, bias dtype, T, seed, note."""
        bias = "none" if self.bias is None else str(self.bias.dtype).replace("torch.", "")
        dtype = str(self.dtype).replace("torch.", "")
        return (
            f"{self.config} scores={dtype}[{self.num_rows}, {self.config.num_experts}] bias={bias} "
            f"device={self.device} seed={self.seed} {self.note}".rstrip()
        )
