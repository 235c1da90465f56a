"""Count the rows the named keys cannot prove (route.cu: select_by_named_keys), on the CPU (docs/perf.md).

    python tools/named_keys_count.py [--rows 400000] [--seed 0]

For each table row with named keys (Specialization.has_named_keys): random N(0, 1) logits rounded to bf16,
p by torch in float32 (the kernels' p up to the softmax sum's order), a float32 bias of 0.1 N(0, 1) where the
preset has one, and the keys ord(p + bias). It replays the named keys' rule: the key's low b bits replaced by
2^b - 1 - e (E <= 2^b; 0 for the experts of the groups the reference's steps 3-4 drop), the K winners and the
largest key left by (k >> b, -e), then counts the rows whose
last winner shares its bucket with the largest key left (each lane's exact check runs), and the rows the
kernel leaves to the exact rounds: two adjacent winners of one bucket out of SPEC's order, or an expert left
out of that bucket above the last winner. A warp holds 32 / L rows and falls back when one of them does.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from moegate.optimized.dispatch import SPECIALIZATIONS, WARP_SIZE
from moegate.reference import PRESETS, preset_has_bias
from moegate.reference.routing import group_scores, group_selection


def id_bits(num_experts: int) -> int:
    """route.cu's kIdBits: the bits that name an expert (5 to 8)."""
    return next(b for b in (5, 6, 7, 8) if num_experts <= 1 << b)


def shape_key(config) -> tuple[str, int, int, int, int]:
    """What the dispatch matches (Specialization.key) for `config`."""
    return (config.scoring_func, config.num_experts, config.num_expert_group, config.topk_group, config.topk)


def count(name: str, rows: int, seed: int) -> str:
    config = PRESETS[name]
    spec = next(s for s in SPECIALIZATIONS if s.key == shape_key(config))
    E, K = config.num_experts, config.topk
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, E, generator=g).to(torch.bfloat16).float()
    p = torch.softmax(x, dim=1) if config.scoring_func == "softmax" else torch.sigmoid(x)
    if preset_has_bias(name):
        p = p + 0.1 * torch.randn(E, generator=g)
    candidate = np.ones((rows, E), dtype=bool)
    if config.has_groups:
        G = config.num_expert_group
        kept = group_selection(group_scores(p, G, preset_has_bias(name)), config.topk_group)
        in_kept = torch.zeros(rows, G, dtype=torch.bool).scatter_(1, kept, True)
        candidate = in_kept.repeat_interleave(E // G, dim=1).numpy()
    u = p.numpy().view(np.uint32).astype(np.int64)
    key = np.where(u >> 31 == 1, (~u) & 0xFFFFFFFF, u | 0x80000000)
    key = np.where(candidate, key, 0)  # a dropped group's expert: below every candidate, never checked
    bits = id_bits(E)
    named = np.where(candidate, (key | ((1 << bits) - 1)) - np.arange(E), 0)
    order = np.argsort(-named, axis=1)
    exact = np.take_along_axis(key, order, 1)
    bucket = np.take_along_axis(named, order, 1) >> bits
    checked = bucket[:, K] == bucket[:, K - 1]
    out_of_order = ((bucket[:, : K - 1] == bucket[:, 1:K]) & (exact[:, : K - 1] < exact[:, 1:K])).any(axis=1)
    left_out_above = ((bucket[:, K:] == bucket[:, K - 1 : K]) & (exact[:, K:] > exact[:, K - 1 : K])).any(
        axis=1
    )
    falls_back = out_of_order | left_out_above
    per_warp = WARP_SIZE // spec.lanes
    whole = rows // per_warp * per_warp
    warps = falls_back[:whole].reshape(-1, per_warp).any(axis=1).mean()
    return (
        f"{name:18s} E={E:3d} K={K} b={bits} bias={preset_has_bias(name)!s:5s} "
        f"rows checked {checked.mean():.4f}"
        f"  falling back {falls_back.mean():.5f} (out of order {out_of_order.mean():.5f}, left out above "
        f"{left_out_above.mean():.5f})  warps of {per_warp} rows falling back {warps:.5f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=400000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    named = {s.key for s in SPECIALIZATIONS if s.has_named_keys}
    for name, config in PRESETS.items():
        if shape_key(config) in named:
            print(count(name, args.rows, args.seed), flush=True)


if __name__ == "__main__":
    main()
