"""The routing contract of SPEC.md, one small pure function per step, and `route`, their calls in order.

Every step takes and returns float32 tensors (int64 for indices) on the input's device and never
modifies its arguments. Shapes: T rows (tokens), E experts, G groups of n = E / G experts, Kg kept
groups, K routed experts, W output slots.

Tie rule, written down once: wherever two candidates compare equal, the lower index wins. `torch.topk`
does not define its tie order, so selection here is a *stable* ascending sort of the negated key: equal
keys keep their index order, so the lower index comes first.
"""

from __future__ import annotations

import torch

from .config import RoutingConfig, check_inputs

# SPEC.md's steps 1 to 8, in order: each is a function here, a device function or labelled section of
# optimized/kernels/route.cu, and a check or rule of properties/oracle.py, under the same name.
SPEC_STEPS = (
    "probabilities",
    "biased_scores",
    "group_scores",
    "group_selection",
    "expert_selection",
    "routed_weights",
    "shared_slots",
    "output_scaling",
)

NEG_INF = float("-inf")
RENORMALIZE_EPSILON = 1e-20  # SPEC step 6: added to the routed sum, so an all-zero row gives 0, not NaN.


def _nan_to_neg_inf(x: torch.Tensor) -> torch.Tensor:
    """SPEC step 2's non-finite rule: a NaN, wherever it enters or arises, is read as -inf."""
    return torch.where(torch.isnan(x), torch.full_like(x, NEG_INF), x)


def _stable_descending_order(keys: torch.Tensor) -> torch.Tensor:
    """Indices that sort `keys` [..., N] in descending order, ties broken toward the lower index.

    Keys must not be NaN (every NaN was read as -inf before this point).
    """
    return torch.sort(-keys, dim=-1, stable=True).indices


def probabilities(scores: torch.Tensor, scoring_func: str) -> torch.Tensor:
    """Step 1: p = sigmoid(x) = 1 / (1 + exp(-x)) or softmax(x) over the row, in float32.

    scores [T, E] float32/float16/bfloat16 -> p [T, E] float32.

    A NaN logit is read as -inf. sigmoid(+inf) = 1 and sigmoid(-inf) = 0. Softmax of a row holding +inf
    gives the +inf entries equal shares of 1 and 0 elsewhere; a row of all -inf gives p = 0.
    """
    x = _nan_to_neg_inf(scores.to(torch.float32))
    if scoring_func == "sigmoid":
        # Written out rather than torch.sigmoid: on the CPU torch.sigmoid takes another code path for short
        # tails, so the same row could get other bits at another batch position (SPEC: each row depends
        # only on that row). exp is position-independent, and this is the formula CUDA kernels use.
        return 1.0 / (1.0 + torch.exp(-x))
    if scoring_func != "softmax":
        raise ValueError(f"scoring_func={scoring_func!r}, but scoring_func must be 'sigmoid' or 'softmax'")
    row_max = x.amax(dim=-1, keepdim=True)
    # Finite row maximum: the usual max-subtracted softmax.
    finite_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(x - finite_max)
    p = e / e.sum(dim=-1, keepdim=True)
    # A row holding +inf: the +inf entries share 1 equally.
    is_pos_inf = (x == float("inf")).to(torch.float32)
    p = torch.where(row_max == float("inf"), is_pos_inf / is_pos_inf.sum(dim=-1, keepdim=True), p)
    # A row of all -inf: p = 0 everywhere.
    return torch.where(row_max == NEG_INF, torch.zeros_like(p), p)


def biased_scores(p: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Step 2: b = p + bias, in float32. p [T, E] float32, bias [E] any float or None -> [T, E] float32.

    The bias is read as float32 whatever its dtype; a NaN bias entry is read as -inf.
    """
    if bias is None:
        return p.clone()
    return _nan_to_neg_inf(p + _nan_to_neg_inf(bias.to(device=p.device, dtype=torch.float32)))


def group_scores(b: torch.Tensor, num_expert_group: int, has_bias: bool) -> torch.Tensor:
    """Step 3: score of each group. b [T, E] float32 -> [T, G] float32.

    With a bias: the sum of the two largest b in the group (the one b when a group holds one expert).
    Without a bias: the largest b in the group. An inf - inf in the sum is read as -inf.
    """
    num_rows, num_experts = b.shape
    grouped = b.reshape(num_rows, num_expert_group, num_experts // num_expert_group)
    if not has_bias:
        return grouped.amax(dim=-1)
    top_two = torch.sort(grouped, dim=-1, descending=True).values[..., :2]
    return _nan_to_neg_inf(top_two.sum(dim=-1))


def group_selection(group_score: torch.Tensor, topk_group: int) -> torch.Tensor:
    """Step 4: the Kg groups with the largest group score; ties: the lower group index wins.

    group_score [T, G] float32 -> kept group indices [T, Kg] int64, in descending order of score.
    """
    return _stable_descending_order(group_score)[:, :topk_group]


def expert_selection(
    b: torch.Tensor, kept_groups: torch.Tensor, num_expert_group: int, topk: int
) -> torch.Tensor:
    """Step 5: the K experts of the kept groups with the largest b, in descending order of b.

    b [T, E] float32, kept_groups [T, Kg] int64 -> expert ids [T, K] int64. Ties: the lower expert index
    wins. Only experts of kept groups are candidates, even when their b is -inf: no sentinel value can
    let an expert of a dropped group in.
    """
    num_rows, num_experts = b.shape
    n = num_experts // num_expert_group
    # Candidates in ascending expert-id order, so that the stable sort breaks ties by expert index.
    groups_ascending = torch.sort(kept_groups, dim=-1).values
    candidates = (groups_ascending.unsqueeze(-1) * n + torch.arange(n, device=b.device)).reshape(
        num_rows, kept_groups.shape[1] * n
    )
    order = _stable_descending_order(torch.gather(b, 1, candidates))[:, :topk]
    return torch.gather(candidates, 1, order)


def routed_weights(p: torch.Tensor, expert_ids: torch.Tensor, renormalize: bool) -> torch.Tensor:
    """Step 6: the unbiased p of each selected expert, divided by (their sum + 1e-20) with `renormalize`.

    p [T, E] float32, expert_ids [T, K] int64 -> [T, K] float32.
    """
    w = torch.gather(p, 1, expert_ids)
    if renormalize:
        w = w / (w.sum(dim=-1, keepdim=True) + RENORMALIZE_EPSILON)
    return w


def shared_slots(
    config: RoutingConfig, num_rows: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 7: ids [T, W - K] int64 and weights [T, W - K] float32 of the shared slots; each weight is 1 / r.

    split: S slots with ids E, ..., E + S - 1. replica (S >= 1): one slot, id E + (row % S), where row is
    the row's index in the call. S = 0: no slot.
    """
    E, S = config.num_experts, config.num_fused_shared_experts
    rows = torch.arange(num_rows, device=device, dtype=torch.int64)
    if config.num_shared_slots == 0:
        ids = torch.empty(num_rows, 0, dtype=torch.int64, device=device)
    elif config.shared_expert_mode == "split":
        ids = (E + torch.arange(S, device=device, dtype=torch.int64)).expand(num_rows, S)
    else:
        ids = (E + rows % S).unsqueeze(-1)
    one = torch.ones((), dtype=torch.float32, device=device)
    r = torch.full((), config.routed_scaling_factor, dtype=torch.float32, device=device)
    weights = (one / r).expand(ids.shape)
    return ids, weights


def output_scaling(weights: torch.Tensor, config: RoutingConfig) -> torch.Tensor:
    """Step 8: multiply every weight, routed and shared, by r if `apply_routed_scaling_factor_on_output`.

    weights [T, W] float32 -> [T, W] float32.
    """
    if not config.apply_routed_scaling_factor_on_output:
        return weights
    r = torch.full((), config.routed_scaling_factor, dtype=torch.float32, device=weights.device)
    return weights * r


def route(
    scores: torch.Tensor, bias: torch.Tensor | None, config: RoutingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Biased grouped top-k routing with fused shared experts: SPEC.md steps 1 to 8.

    Args:
        scores: router logits [T, E], float32/float16/bfloat16, CPU or CUDA. T >= 0; the last dim is
            contiguous, the row stride may exceed E; strides are checked only where they step (any
            layout torch calls contiguous is valid, an empty tensor whatever its strides). Read only.
        bias: e_score_correction_bias [E], float32/bfloat16/float16, or None; read as float32. Read only.
        config: the RoutingConfig.

    Returns:
        topk_ids [T, W] int32 and topk_weights [T, W] float32 on the scores' device, W = config.output_width.

    Algorithm (all float32):
        1. p = sigmoid(x) or softmax(x); a NaN logit is read as -inf.
        2. b = p + bias (NaN read as -inf).
        3. group score = sum of the top-2 b in the group (with a bias) or the top b (without).
        4. keep the Kg best groups, lower group index first on ties.
        5. the K best b of the kept groups, descending, lower expert index first on ties.
        6. weights = p of those experts, renormalized by (sum + 1e-20) if `renormalize`.
        7. shared slots after the routed ones, weight 1 / r (split: ids E..E+S-1; replica: E + row % S).
        8. every weight times r if `apply_routed_scaling_factor_on_output`.

    Raises:
        TypeError, ValueError: invalid arguments (see `check_inputs`), before anything is computed.
    """
    check_inputs(scores, bias, config)
    num_rows = scores.shape[0]
    p = probabilities(scores, config.scoring_func)
    b = biased_scores(p, bias)
    group_score = group_scores(b, config.num_expert_group, has_bias=bias is not None)
    kept_groups = group_selection(group_score, config.topk_group)
    expert_ids = expert_selection(b, kept_groups, config.num_expert_group, config.topk)
    weights = routed_weights(p, expert_ids, config.renormalize)
    shared_ids, shared_weights = shared_slots(config, num_rows, scores.device)
    topk_ids = torch.cat([expert_ids, shared_ids], dim=-1).to(torch.int32)
    topk_weights = output_scaling(torch.cat([weights, shared_weights], dim=-1), config)
    return topk_ids, topk_weights.contiguous()
