"""`RoutingProblem`: one routing call's inputs, the unit that strategies draw, oracles judge and fixtures
store."""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields, replace

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


def format_config(config: RoutingConfig) -> str:
    """The config as it would be written in Python: `RoutingConfig(num_experts=256, topk=8, ...)`, with the
    fields that differ from their defaults (E and K always)."""
    if not isinstance(config, RoutingConfig):
        raise TypeError(f"config={config!r} ({type(config).__name__}), but config must be a RoutingConfig")
    defaults = {f.name: f.default for f in fields(RoutingConfig) if f.default is not MISSING}
    parts = [
        f"{name}={value!r}"
        for name, value in config.to_dict().items()
        if name not in defaults or defaults[name] != value
    ]
    return f"RoutingConfig({', '.join(parts)})"


def _float_literal(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def tensor_literal(x: torch.Tensor) -> str:
    """A Python expression that rebuilds x exactly (values, dtype; on CPU, contiguous), for failure reports.
    Uses the names `torch`, `nan` and `inf` (`from math import nan, inf`)."""
    if x.numel() == 0:  # a nested list cannot say the shape of an empty tensor ([0, E] would become [0])
        return f"torch.empty({tuple(x.shape)}, dtype={x.dtype})"
    values = x.detach().to("cpu", torch.float64).tolist()
    if x.dim() == 1:
        body = "[" + ", ".join(_float_literal(v) for v in values) + "]"
    else:
        body = (
            "[\n" + "".join(f"    [{', '.join(_float_literal(v) for v in row)}],\n" for row in values) + "]"
        )
    return f"torch.tensor({body}, dtype=torch.float64).to({x.dtype})"


def problem_literal(problem: RoutingProblem) -> str:
    """Python lines that rebuild `problem` exactly (scores contiguous, on CPU): config, scores, bias."""
    bias = "None" if problem.bias is None else tensor_literal(problem.bias)
    return (
        "import torch\nfrom math import nan, inf\nfrom moegate.reference import RoutingConfig\n"
        f"config = {format_config(problem.config)}\n"
        f"scores = {tensor_literal(problem.scores)}\n"
        f"bias = {bias}\n"
    )
