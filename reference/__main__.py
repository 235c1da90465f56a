"""`python -m moegate.reference`: route a random batch through every preset and print a table."""

from __future__ import annotations

import time

import torch

from . import PRESET_HAS_BIAS, get_preset, preset_names, route


def main(num_rows: int = 4096, seed: int = 0) -> None:
    """Route `num_rows` random rows per preset on the CPU; print ids, weights and the invariant."""
    gen = torch.Generator().manual_seed(seed)
    print(f"{'preset':<20} {'E':>4} {'K':>3} {'G/Kg':>5} {'W':>3} {'ms':>7}  row 0 ids")
    for name in preset_names():
        cfg = get_preset(name)
        scores = torch.randn(num_rows, cfg.num_experts, generator=gen)
        bias = 0.1 * torch.randn(cfg.num_experts, generator=gen) if PRESET_HAS_BIAS[name] else None
        start = time.perf_counter()
        ids, _weights = route(scores, bias, cfg)
        ms = 1e3 * (time.perf_counter() - start)
        groups = f"{cfg.num_expert_group}/{cfg.topk_group}"
        print(
            f"{name:<20} {cfg.num_experts:>4} {cfg.topk:>3} {groups:>5} {cfg.output_width:>3} {ms:>7.1f}  "
            f"{ids[0].tolist()}"
        )


if __name__ == "__main__":
    main()
