"""The inputs that fixture sets record: random inputs of the presets and the golden edge sets.

`preset_cases_problems` and `edge_problems` return (case name, preset or "", RoutingProblem) triples
that `fixtures.record_problems` runs through an implementation; everything here is generated on the
CPU from a seed, so a set can be recorded again bit for bit. Also the score dtypes by name
(`DTYPES`, `parse_dtype`, `dtype_name`), which the command line shares.

`moegate.properties.fixtures` re-exports every public name here, so `fixtures.edge_problems` and the
like keep working.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from moegate.reference import PRESET_HAS_BIAS, RoutingConfig, get_preset, preset_names

from .problem import RoutingProblem

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
_DTYPE_ALIASES = {"fp32": "float32", "f32": "float32", "float": "float32", "bf16": "bfloat16",
                  "fp16": "float16", "f16": "float16", "half": "float16"}  # fmt: skip


def dtype_name(dtype: torch.dtype) -> str:
    """ "float32", "bfloat16" or "float16" for a torch dtype."""
    return str(dtype).replace("torch.", "")


def parse_dtype(name: str) -> torch.dtype:
    """A score dtype from its name ("float32", "bfloat16", "float16", or fp32/bf16/fp16/half).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    key = str(name).strip().lower()
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPES:
        raise ValueError(
            f"dtype={name!r}, but dtype must be one of {', '.join(DTYPES)} (or fp32, bf16, fp16)"
        )
    return DTYPES[key]


def case_seed(base_seed: int, name: str) -> int:
    """A per-case seed: stable across runs and platforms (crc32 of the name), different per case."""
    return (int(base_seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


def preset_problem(
    preset: str,
    dtype: torch.dtype,
    num_rows: int,
    seed: int,
    *,
    bias_dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> RoutingProblem:
    """Random inputs for a preset: scores [num_rows, E] ~ N(0, 1) in `dtype`; a bias [E] ~ 0.1 * N(0, 1)
    in `bias_dtype` (default: `dtype`) when the preset's model has one. Generated on the CPU from `seed`.

    Raises:
        ValueError: unknown preset, num_rows < 0.
    """
    config = get_preset(preset)
    if isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 0:
        raise ValueError(f"num_rows={num_rows!r}, but num_rows must be an int >= 0")
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(num_rows, config.num_experts, generator=gen).to(dtype)
    bias = None
    if PRESET_HAS_BIAS[_canonical_preset(preset)]:
        bias = (0.1 * torch.randn(config.num_experts, generator=gen)).to(bias_dtype or dtype)
    problem = RoutingProblem(config, scores, bias, seed=seed, note=f"preset {_canonical_preset(preset)}")
    return problem if torch.device(device).type == "cpu" else problem.to(device)


def _canonical_preset(name: str) -> str:
    config = get_preset(name)
    return next(n for n in preset_names() if get_preset(n) is config)


def resolve_presets(names: Iterable[str]) -> list[str]:
    """Canonical preset names for `names` ("all" expands to every preset; duplicates dropped).

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    out: list[str] = []
    for name in names:
        expanded = preset_names() if name.strip().lower() == "all" else [_canonical_preset(name)]
        out.extend(n for n in expanded if n not in out)
    return out


def preset_cases_problems(
    presets: Sequence[str], dtypes: Sequence[torch.dtype], num_rows: int, seed: int
) -> list[tuple[str, str, RoutingProblem]]:
    """(case name, preset, problem) for every preset x dtype: names like "deepseek-v3-bfloat16"."""
    out = []
    for preset in resolve_presets(presets):
        for dtype in dtypes:
            name = f"{preset}-{dtype_name(dtype)}"
            out.append((name, preset, preset_problem(preset, dtype, num_rows, case_seed(seed, name))))
    return out


def edge_problems(seed: int = 0) -> list[tuple[str, str, RoutingProblem]]:
    """(case name, preset or "", problem): the golden edge sets of issue 5, small and deterministic.

    ties: integer-valued logits (many exact ties in p and b, and between groups) with and without a bias;
    nonfinite: NaN, +inf, -inf entries, all-NaN / all--inf / all-+inf rows, a NaN bias entry;
    empty: T = 0; replica: shared_expert_mode="replica" with S = 3; scaling: r applied on the output;
    strided: row stride > E (stored contiguous); mixed bias dtype: bf16 scores with a float32 bias and the
    reverse; awkward: odd E, G, K and T.
    """
    v3 = get_preset("deepseek-v3")
    out: list[tuple[str, str, RoutingProblem]] = []

    def add(
        name: str, preset: str, config: RoutingConfig, scores: torch.Tensor, bias: Any, note: str
    ) -> None:
        out.append(
            (name, preset, RoutingProblem(config, scores, bias, seed=case_seed(seed, name), note=note))
        )

    def gen(name: str) -> torch.Generator:
        return torch.Generator().manual_seed(case_seed(seed, name))

    # Ties: logits on a coarse grid, so p (and b) collide within rows and group scores collide too.
    for preset, dtype in (("deepseek-v3", torch.float32), ("deepseek-v3", torch.bfloat16),
                          ("qwen3-moe", torch.float16), ("mixtral-8x7b", torch.float32)):  # fmt: skip
        name = f"edge-ties-{preset}-{dtype_name(dtype)}"
        cfg = get_preset(preset)
        g = gen(name)
        scores = (torch.randint(-2, 3, (32, cfg.num_experts), generator=g) * 0.5).to(dtype)
        scores[0] = 0.0  # a row of identical logits: the lowest indices (and groups) must win
        bias = None
        if PRESET_HAS_BIAS[preset]:
            bias = (torch.randint(-1, 2, (cfg.num_experts,), generator=g) * 0.125).to(torch.float32)
        add(name, preset, cfg, scores, bias, "exact ties: logits on a 0.5 grid, row 0 all equal")

    # Non-finite values in every score dtype, with a bias (sigmoid, groups) and without (softmax).
    for preset in ("deepseek-v3", "qwen3-moe", "llama-4-maverick"):
        for dtype in DTYPES.values():
            name = f"edge-nonfinite-{preset}-{dtype_name(dtype)}"
            cfg = get_preset(preset)
            g = gen(name)
            scores = torch.randn(24, cfg.num_experts, generator=g)
            nan, inf = float("nan"), float("inf")
            mask = torch.rand(scores.shape, generator=g)
            scores = torch.where(mask < 0.05, nan, scores)
            scores = torch.where((mask >= 0.05) & (mask < 0.08), inf, scores)
            scores = torch.where((mask >= 0.08) & (mask < 0.11), -inf, scores)
            scores[1] = nan  # all-NaN row
            scores[2] = -inf  # all -inf row
            scores[3] = inf  # all +inf row
            scores[4, :] = -inf
            scores[4, 5] = inf  # one +inf among -inf
            scores[5, :] = nan
            scores[5, -1] = 0.0  # one finite entry among NaN
            bias = None
            if PRESET_HAS_BIAS[preset]:
                bias = 0.1 * torch.randn(cfg.num_experts, generator=g)
                bias[7] = nan
                bias = bias.to(dtype)
            add(name, preset, cfg, scores.to(dtype), bias, "NaN/+-inf entries, all-NaN/-inf/+inf rows")

    # T = 0.
    for preset in ("deepseek-v3", "qwen3-moe"):
        cfg = get_preset(preset)
        bias = torch.zeros(cfg.num_experts) if PRESET_HAS_BIAS[preset] else None
        add(f"edge-empty-{preset}", preset, cfg, torch.empty(0, cfg.num_experts), bias, "T = 0")

    # Replica mode: one shared slot, id E + row % S.
    for preset, dtype in (("deepseek-v3", torch.bfloat16), ("moonlight-16b-a3b", torch.float32)):
        name = f"edge-replica-{preset}-{dtype_name(dtype)}"
        cfg = get_preset(preset).replace(shared_expert_mode="replica", num_fused_shared_experts=3)
        g = gen(name)
        scores = torch.randn(40, cfg.num_experts, generator=g).to(dtype)
        bias = (0.1 * torch.randn(cfg.num_experts, generator=g)).to(dtype)
        add(name, preset, cfg, scores, bias, "replica mode, S = 3")

    # Scaling applied on the output (renormalized and not).
    for preset in ("deepseek-v3", "deepseek-v2"):
        name = f"edge-scaling-on-output-{preset}"
        cfg = get_preset(preset).replace(apply_routed_scaling_factor_on_output=True)
        g = gen(name)
        scores = torch.randn(32, cfg.num_experts, generator=g)
        bias = (0.1 * torch.randn(cfg.num_experts, generator=g)) if PRESET_HAS_BIAS[preset] else None
        add(name, preset, cfg, scores, bias, "apply_routed_scaling_factor_on_output")

    # Row-strided input: the recorder sees the strided view; the file stores it contiguous.
    name = "edge-strided-deepseek-v3"
    g = gen(name)
    wide = torch.randn(32, v3.num_experts + 64, generator=g).to(torch.bfloat16)
    add(name, "deepseek-v3", v3, wide[:, : v3.num_experts], 0.1 * torch.randn(v3.num_experts, generator=g),
        "row stride E + 64 (stored contiguous)")  # fmt: skip

    # The bias in another dtype than the scores (a known kernel bug class).
    for sd, bd in (
        (torch.bfloat16, torch.float32),
        (torch.float32, torch.bfloat16),
        (torch.float16, torch.float32),
    ):
        name = f"edge-bias-dtype-deepseek-v3-{dtype_name(sd)}-bias-{dtype_name(bd)}"
        g = gen(name)
        scores = torch.randn(32, v3.num_experts, generator=g).to(sd)
        bias = (0.1 * torch.randn(v3.num_experts, generator=g)).to(bd)
        add(name, "deepseek-v3", v3, scores, bias, f"bias dtype {dtype_name(bd)}")

    # Awkward shapes: odd E, G, K; K = the whole kept set; one row.
    awkward = (
        ("edge-awkward-e72-g6", RoutingConfig(num_experts=72, topk=7, num_expert_group=6, topk_group=2,
                                              routed_scaling_factor=1.7, num_fused_shared_experts=2), 33),
        ("edge-awkward-k-max", RoutingConfig(num_experts=12, topk=6, num_expert_group=4, topk_group=2,
                                             scoring_func="softmax"), 17),
        ("edge-awkward-one-row", RoutingConfig(num_experts=5, topk=1, scoring_func="softmax",
                                               renormalize=False, num_fused_shared_experts=1), 1),
    )  # fmt: skip
    for name, cfg, rows in awkward:
        g = gen(name)
        scores = torch.randn(rows, cfg.num_experts, generator=g)
        bias = 0.1 * torch.randn(cfg.num_experts, generator=g) if cfg.scoring_func == "sigmoid" else None
        add(name, "", cfg, scores, bias, "awkward shape")
    return out
