"""User-written routing functions, as a kernel engineer would write an adapter for `moegate verify --impl
user_impl_example:route_ok` (tests/test_cli.py loads them by name and by file path).

route_ok: a correct implementation (the reference, called through a wrapper).
route_wrong_weight: the weights of the routed slots are 0.1% too large (the scaling bug class, small).
route_wrong_ids: slot 0 of row 3 points to the expert one past the correct one (a selection bug).
"""

from __future__ import annotations

import torch

from moegate.reference import RoutingConfig, route


def route_ok(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """scores [T, E] float32/float16/bfloat16, bias [E] or None -> ids int32, weights float32 [T, W]."""
    return route(scores, bias, config)


def route_wrong_weight(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference with every routed weight times 1.001 (a bug the weight tolerance must catch)."""
    ids, weights = route(scores, bias, config)
    weights = weights.clone()
    weights[:, : config.topk] *= 1.001
    return ids, weights


def route_wrong_ids(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference with row 3, slot 0 replaced by an expert the row did not select."""
    ids, weights = route(scores, bias, config)
    ids = ids.clone()
    if ids.shape[0] > 3:
        chosen = set(ids[3, : config.topk].tolist())
        other = next((e for e in range(config.num_experts) if e not in chosen), None)
        if other is not None:
            ids[3, 0] = other
    return ids, weights


NOT_CALLABLE = 42


def route_many_bugs(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """An adapter that breaks SPEC three ways at once, as a new user's first try might: it ignores the
    bias (selection by p), forgets the 1 / r on the shared slots (weight 1), and numbers the shared slots
    from E + 1 instead of E."""
    ids, weights = route(scores, None, config)
    ids, weights = ids.clone(), weights.clone()
    if config.num_shared_slots:
        ids[:, config.topk :] += 1
        weights[:, config.topk :] = 1.0
    return ids, weights
