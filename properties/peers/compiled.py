"""`compile`: `torch.compile(moegate.reference.route)`, what a user would otherwise pick for speed.

It implements the whole SPEC (its contract is SPEC's), on any device torch.compile supports; the compiled
function is made once per process, on first use. torch.compile re-specializes per RoutingConfig (a
frozen dataclass: its fields are guards) and per dtype; past torch._dynamo's recompile limit a new
configuration runs the reference eagerly, which is what a user of torch.compile gets too.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import torch

from moegate.reference import RoutingConfig
from moegate.reference import route as reference_route

from .contract import Contract

CONTRACT = Contract(
    name="compile",
    source="SPEC.md (it compiles moegate.reference.route)",
    notes=("compiled with torch.compile(dynamic=True) on first use; recompiles per config and dtype",),
)

_lock = threading.Lock()


@functools.cache
def _compiled() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    return torch.compile(reference_route, dynamic=True)


def route(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """`torch.compile(moegate.reference.route)(scores, bias, config)`: scores [T, E], bias [E] or None, on
    any device; ids int32 [T, W], weights float32 [T, W]."""
    with _lock:
        fn = _compiled()
    return fn(scores, bias, config)
