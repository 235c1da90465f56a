"""The mutant panel: every planted bug is killed by the suite, quickly, and the composer is the reference."""

from __future__ import annotations

import time

import pytest
import torch

from moegate.properties.mutants import MUTANTS, STEPS, compose, run_mutant_panel
from moegate.reference import SPEC_STEPS, get_preset, preset_names, route


def test_every_mutant_is_killed_within_two_minutes() -> None:
    start = time.perf_counter()
    results = run_mutant_panel()
    elapsed = time.perf_counter() - start
    survivors = [r.name for r in results if not r.killed]
    assert survivors == [], f"mutants survived the property suite: {survivors}"
    assert [r.name for r in results] == list(MUTANTS)
    assert all(r.killed_by is not None and r.examples >= 1 for r in results)
    assert elapsed < 120, f"the mutant panel took {elapsed:.1f}s (budget 120s)"


def test_panel_covers_the_issue_list() -> None:
    assert len(MUTANTS) >= 13
    required = {
        "review_bug",
        "scaling_twice",
        "scaling_missing",
        "group_score_max",
        "mask_zero",
        "bias_bf16",
        "weights_from_biased",
        "ties_high_index",
        "renorm_includes_shared",
        "replica_no_modulo",
        "no_epsilon",
        "nan_row_out_of_range",
        "topk_group_ignored",
    }
    assert required <= set(MUTANTS)
    assert all(m.description and callable(m.impl) for m in MUTANTS.values())


@pytest.mark.parametrize("name", preset_names())
def test_compose_without_overrides_is_the_reference(name: str) -> None:
    config = get_preset(name).replace(shared_expert_mode="replica")
    g = torch.Generator().manual_seed(2)
    scores = torch.randn(9, config.num_experts, generator=g).to(torch.bfloat16)
    bias = torch.randn(config.num_experts, generator=g) * 0.01
    expected = route(scores, bias, config)
    actual = compose()(scores, bias, config)
    assert torch.equal(expected[0], actual[0]) and torch.equal(expected[1], actual[1])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="override 'softmax'"):
        compose(softmax=lambda s: None)
    with pytest.raises(ValueError, match="names contains 'typo'"):
        run_mutant_panel(names=["typo"])
    assert set(STEPS) == set(SPEC_STEPS)
