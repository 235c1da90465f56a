"""Input layouts (SPEC.md, "Inputs"): strides are only read where they are used to step.

Every layout torch calls contiguous is valid, and an empty tensor is valid whatever its strides: the
reference must accept them and give the same output as on a freshly allocated copy of the same values
(standard strides), and the oracle must accept that output. Layouts that really cannot be stepped are
still rejected, with a message naming the parameter, the value and the rule. The fixture code records
and replays these layouts too, and a failure report can rebuild an empty problem.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from moegate.properties import fixtures as fx
from moegate.properties import oracle
from moegate.properties.impls import load_impl
from moegate.properties.problem import RoutingProblem, problem_literal
from moegate.reference import RoutingConfig, check_inputs, get_preset, route

V3 = get_preset("deepseek-v3")  # E = 256, 8 groups, a bias, S = 1
QWEN = get_preset("qwen3-moe")  # E = 128, softmax, no bias
E1 = RoutingConfig(num_experts=1, topk=1, routed_scaling_factor=2.0, num_fused_shared_experts=2)


def _fresh(t: torch.Tensor) -> torch.Tensor:
    """The same values in a new tensor with standard (row-major) strides and no storage offset."""
    return torch.empty(t.shape, dtype=t.dtype).copy_(t)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _bias_view(num_experts: int) -> torch.Tensor:
    """A contiguous bias that is a view at an offset into a larger buffer."""
    return (0.1 * _randn(num_experts + 11, seed=1))[5 : 5 + num_experts]


# (name, config, scores factory, bias factory): every layout here is valid by SPEC.md.
VALID_LAYOUTS: list[tuple[str, RoutingConfig, Callable[[], torch.Tensor], Callable[[], object]]] = [
    ("empty-from-numpy-strides-0-0", V3, lambda: torch.tensor(np.empty((0, 256), np.float32)),
     lambda: 0.1 * _randn(256)),
    ("empty-transposed-strides-1-1", QWEN, lambda: torch.empty(128, 0).t(), lambda: None),
    ("empty-any-strides-bf16", V3, lambda: torch.empty(64, dtype=torch.bfloat16).as_strided((0, 256), (7, 3)),
     lambda: _bias_view(256)),
    ("one-row-row-stride-1000", V3, lambda: _randn(1, 1000)[:, :256], lambda: 0.1 * _randn(256)),
    ("one-row-row-stride-3", QWEN, lambda: _randn(1, 128).as_strided((1, 128), (3, 1)), lambda: None),
    ("one-row-row-stride-0-fp16", V3, lambda: _randn(1, 256).half().as_strided((1, 256), (0, 1)),
     lambda: 0.1 * _randn(256)),
    ("e1-column-stride-5", E1, lambda: _randn(3, 5).t()[:, :1], lambda: None),
    ("e1-row-slice-of-wider", E1, lambda: _randn(6, 4)[:, 2:3], lambda: _randn(3)[1:2]),
    ("e1-size-1-bias-odd-stride", E1, lambda: _randn(4, 1), lambda: _randn(9)[::3][1:2]),
    ("one-by-one-odd-strides", E1, lambda: _randn(5, 9).as_strided((1, 1), (5, 9)),
     lambda: _randn(9)[::3][:1]),
    ("bias-view-at-offset", V3, lambda: _randn(7, 256), lambda: _bias_view(256)),
    ("bias-view-bf16", V3, lambda: _randn(7, 256).bfloat16(),
     lambda: _bias_view(256).to(torch.bfloat16)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "config", "make_scores", "make_bias"), VALID_LAYOUTS,
                         ids=[v[0] for v in VALID_LAYOUTS])  # fmt: skip
def test_valid_layouts_route_like_a_fresh_copy_and_pass_the_oracle(
    name: str, config: RoutingConfig, make_scores, make_bias
) -> None:
    scores, bias = make_scores(), make_bias()
    check_inputs(scores, bias, config)
    ids, weights = route(scores, bias, config)
    shape = (scores.shape[0], config.output_width)
    assert ids.shape == shape and ids.dtype == torch.int32, name
    assert weights.shape == shape and weights.dtype == torch.float32, name
    fresh_bias = None if bias is None else _fresh(bias)
    expected = route(_fresh(scores), fresh_bias, config)
    assert torch.equal(ids, expected[0]) and torch.equal(weights, expected[1]), name
    problem = RoutingProblem(config, scores, bias)
    assert oracle.check_routing(problem, ids, weights) == [], name
    # Each row of a batch routed alone gives the same output (a one-row slice keeps the odd strides).
    for row in range(scores.shape[0]):
        one = route(scores[row : row + 1], bias, config)
        assert torch.equal(one[0], ids[row : row + 1]) and torch.equal(one[1], weights[row : row + 1]), name


def test_the_reported_empty_numpy_tensor_gives_empty_outputs() -> None:
    scores = torch.tensor(np.empty((0, 256), np.float32))
    assert scores.stride() == (0, 0) and scores.is_contiguous()
    ids, weights = route(scores, None, V3)
    assert ids.shape == (0, 9) and weights.shape == (0, 9)


# (scores, bias, config, words the message must hold): layouts that really cannot be stepped.
INVALID_LAYOUTS = [
    # Columns not contiguous, E > 1, T > 0: a transposed or column-strided tensor.
    (lambda: _randn(256, 2).t(), None, V3,
     ["scores.stride()=(1, 2)", "shape=(2, 256)", "last dimension must be contiguous", "T > 0 and E > 1"]),
    (lambda: _randn(1, 512)[:, ::2], None, V3, ["scores.stride()=(512, 2)", "contiguous (stride 1)"]),
    # Rows overlap: row stride < E with T > 1.
    (lambda: torch.zeros(600).as_strided((3, 256), (8, 1)), None, V3,
     ["scores.stride()=(8, 1)", "row stride must be >= num_experts=256", "T > 1"]),
    (lambda: torch.zeros(1, 256).expand(4, 256), None, V3, ["scores.stride()=(0, 1)", "row stride"]),
    # A bias that is not contiguous with E > 1.
    (lambda: _randn(2, 256), _randn(512)[::2], V3, ["bias.stride()=(2,)", "contiguous", "E > 1"]),
    (lambda: _randn(2, 256), torch.zeros(1).expand(256), V3, ["bias.stride()=(0,)", "contiguous"]),
]  # fmt: skip


@pytest.mark.parametrize(("make_scores", "bias", "config", "words"), INVALID_LAYOUTS)
def test_layouts_that_cannot_be_stepped_are_rejected_naming_value_and_rule(
    make_scores, bias, config: RoutingConfig, words: list[str]
) -> None:
    with pytest.raises(ValueError) as info:
        route(make_scores(), bias, config)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_fixtures_record_and_replay_every_valid_layout(tmp_path: Path) -> None:
    reference = load_impl("reference")
    cases = [
        fx.record_case(name, RoutingProblem(config, make_scores(), make_bias()), reference)
        for name, config, make_scores, make_bias in VALID_LAYOUTS
    ]
    fx.write_fixture_set(tmp_path, cases)
    loaded = fx.load_fixture_set(tmp_path)
    for case, (name, _, make_scores, make_bias) in zip(loaded, VALID_LAYOUTS, strict=True):
        scores, bias = make_scores(), make_bias()
        assert case.name == name and torch.equal(case.problem.scores, scores), name
        assert (bias is None) == (case.problem.bias is None), name
        if bias is not None:
            assert torch.equal(case.problem.bias, bias), name
    report = fx.check_fixture_set(tmp_path, reference)
    assert report.ok, report.format()


def test_problem_literal_rebuilds_an_empty_problem() -> None:
    problem = RoutingProblem(V3, torch.tensor(np.empty((0, 256), np.float32)).bfloat16(), torch.zeros(256))
    namespace: dict[str, object] = {}
    exec(problem_literal(problem), namespace)
    scores = namespace["scores"]
    assert isinstance(scores, torch.Tensor)
    assert scores.shape == (0, 256) and scores.dtype == torch.bfloat16
    check_inputs(scores, namespace["bias"], namespace["config"])
