"""The scale property (properties/scale.py) on the CPU: the rows it samples, the sizes it routes, that the
reference passes it, and that a kernel right on every small batch but wrong past an offset boundary is
caught by it and by nothing else."""

from __future__ import annotations

import torch

from moegate.properties import oracle
from moegate.properties.mutants import MUTANTS, ROW_OFFSET_WRAP
from moegate.properties.problem import RoutingProblem
from moegate.properties.scale import (
    SCALE_CPU_ELEMENTS,
    SCALE_GPU_ELEMENTS,
    check_scale,
    sample_rows,
    scale_rows_for,
)
from moegate.properties.suite import PROPERTIES, verify
from moegate.reference import get_preset, route


def test_sampled_rows_hold_the_ends_the_powers_of_two_and_every_element_boundary() -> None:
    num_rows, stride, width = 20_000, 256, 9
    rows = sample_rows(num_rows, stride, width, seed=7)
    values = rows.tolist()
    assert values == sorted(set(values)) and rows.dtype == torch.int64
    assert values[0] == 0 and values[-1] == num_rows - 1
    for k in range(15):  # 2^14 = 16384 < 20000
        assert {2**k - 1, 2**k} <= set(values)
    # Input element boundaries 2^k: the first row at or past 2^k / 256, and its neighbours.
    for k in range(10, 23):  # 2^22 / 256 = 16384 rows < 20000
        first = -(-(2**k) // stride)
        assert {first - 1, first} <= set(values), k
    # Output element boundaries 2^k / W (W = 9 does not divide a power of two).
    for k in range(10, 17):
        first = -(-(2**k) // width)
        assert {first - 1, first, first + 1} & set(range(num_rows)) <= set(values), k
    assert all(0 <= v < num_rows for v in values)
    assert sample_rows(num_rows, stride, width, seed=7).tolist() == values  # a seed gives the same sample


def test_sizes_cross_2_21_elements_on_the_cpu_and_2_32_on_a_gpu() -> None:
    for experts in (1, 8, 64, 256, 384, 1024):
        rows = scale_rows_for(experts, 9, torch.float32, torch.device("cpu"))
        assert rows * experts > SCALE_CPU_ELEMENTS - experts and rows * experts > 2**21
    # DeepSeek-V3 on a GPU: past 2^32 / 256 rows, so a 32-bit element offset wraps (this does not touch a
    # GPU: the size is arithmetic, capped by SCALE_GPU_BYTES when no GPU is visible).
    rows = scale_rows_for(256, 9, torch.bfloat16, torch.device("cuda"))
    assert rows * 256 >= SCALE_GPU_ELEMENTS > 2**32


def test_the_reference_passes_the_scale_property() -> None:
    report = verify(route, properties=["scale"], profile="ci")
    assert report.ok, report.format()
    assert report.results[0].examples == 4  # the profile's scale budget, not its 100 examples


def test_scale_sees_a_wrong_replica_id_at_the_big_calls_row_index() -> None:
    config = get_preset("deepseek-v3").replace(num_fused_shared_experts=3, shared_expert_mode="replica")

    def replica_from_zero(scores, bias, cfg):  # the sampled rows' replica ids as if each were row 0
        ids, weights = route(scores, bias, cfg)
        ids[:, -1] = cfg.num_experts
        return ids, weights

    problem = RoutingProblem(config, torch.zeros(1, 256), torch.randn(256) * 0.01)
    check_scale(route, problem, seed=1)
    try:
        check_scale(replica_from_zero, problem, seed=1)
    except AssertionError as exc:
        assert "[shared_slots]" in str(exc) and "row numbers are the big call's" in str(exc)
    else:
        raise AssertionError("the scale property missed replica ids that ignore the row index")


def test_the_oracle_follows_the_row_index_of_sampled_rows() -> None:
    config = get_preset("deepseek-v3").replace(num_fused_shared_experts=3, shared_expert_mode="replica")
    scores, bias = torch.randn(2, 256), torch.randn(256) * 0.01
    ids, weights = route(scores, bias, config)  # rows 0 and 1 of a call
    problem = RoutingProblem(config, scores, bias)
    # The same two rows taken from rows 7 and 11 of a bigger call: their replica ids must be E + 7 % 3 and
    # E + 11 % 3.
    assert oracle.check_routing(problem, ids, weights, row_index=torch.tensor([0, 1])) == []
    found = oracle.check_routing(problem, ids, weights, row_index=torch.tensor([7, 11]))
    assert {v.rule for v in found} == {"shared_slots"}
    ids[:, -1] = torch.tensor([256 + 1, 256 + 2], dtype=torch.int32)
    assert oracle.check_routing(problem, ids, weights, row_index=torch.tensor([7, 11])) == []


def test_the_row_offset_mutant_is_caught_by_the_scale_property_alone() -> None:
    wrong = MUTANTS["row_offset_wraps"].impl
    others = [name for name in PROPERTIES if name != "scale"]
    assert verify(wrong, properties=others, profile="ci").ok  # right on every small batch
    report = verify(wrong, properties=["scale"], profile="ci")
    assert not report.ok
    failure = report.results[0].failure or ""
    assert "scale (" in failure
    # The rows it names lie past the wrap (2^20 elements), where another row's logits were read.
    config = report.results[0].counterexample.config
    first_wrapped = ROW_OFFSET_WRAP // config.num_experts
    rows = [int(word) for word in failure.replace(",", " ").split() if word.isdigit()]
    assert any(r >= first_wrapped for r in rows), failure
