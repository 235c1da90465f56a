"""The pinned findings about the peer kernels (tests/peer_findings, docs/peers.md), checked on the CPU from
what the peers returned on the H200, and on a GPU against the peers themselves.

CPU, for every pinned finding:
- the inputs are valid and the configuration is one the peer's contract accepts (a finding is never about
  something the peer did not offer);
- the expected outputs are the reference's on those inputs, and they satisfy the oracle;
- the peer's recorded output breaks exactly the SPEC rule the finding names (the oracle, judging weights at
  the precision the peer writes them), or the launcher refused the call (rule "launcher").
GPU (marker gpu; each peer built from the extracted sources): replaying each finding on the peer still
breaks that rule, or its launcher still refuses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from moegate.properties import fixtures as fx
from moegate.properties import oracle
from moegate.properties.peers import PEER_NAMES, get_peer
from moegate.reference import route

FINDINGS = Path(__file__).resolve().parent / "peer_findings"
CASES = sorted(p for p in FINDINGS.glob("*/*") if (p / "manifest.json").is_file())
ORACLE_RULES = set(oracle.RULES)


def load(path: Path) -> fx.FixtureCase:
    (case,) = fx.load_fixture_set(path)
    return case


def test_every_compiled_peer_has_pinned_findings() -> None:
    peers = {p.parent.name for p in CASES}
    assert peers == {name for name in PEER_NAMES if name != "compile"}


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_pinned_finding_is_a_spec_violation_of_a_call_the_peer_accepts(path: Path) -> None:
    case = load(path)
    meta, problem = case.meta, case.problem
    assert (
        meta["peer"] == path.parent.name
        and meta["finding"]
        and meta["replay"].endswith(f"--impl {meta['peer']}")
    )
    contract = get_peer(meta["peer"]).contract
    bias_dtype = None if problem.bias is None else problem.bias.dtype
    dense = meta.get("row_stride", str(problem.config.num_experts)) == str(problem.config.num_experts)
    rejects = contract.rejects(
        problem.config,
        problem.dtype,
        bias_dtype,
        num_rows=problem.num_rows,
        dense_rows=dense or problem.num_rows < 2,
    )
    assert rejects == [], f"{path.name}: the contract does not accept the pinned call: {rejects}"
    expected = route(problem.scores, problem.bias, problem.config)
    assert torch.equal(expected[0], case.ids) and torch.equal(expected[1], case.weights)
    assert oracle.check_routing(problem, *expected) == []
    if meta["rule"] == "launcher":
        assert case.peer_ids is None and "launcher failed" in meta["peer_error"]
        return
    assert meta["rule"] in ORACLE_RULES and case.peer_ids is not None
    found = oracle.check_routing(
        problem, case.peer_ids, case.peer_weights, weight_dtype=contract.weight_dtype(problem.dtype)
    )
    assert meta["rule"] in {v.rule for v in found}, [str(v) for v in found]


def test_the_findings_replay_command_fails_on_the_reference_only_where_the_peer_differs() -> None:
    # The pinned expected outputs are the reference's: replaying a finding against the reference passes.
    report = fx.check_fixture_set(CASES[0], fx_impl("reference"), device="cpu")
    assert report.ok, report.format()


def fx_impl(name: str):
    from moegate.properties.impls import load_impl

    return load_impl(name)


@pytest.mark.gpu
@pytest.mark.parametrize("peer", [name for name in PEER_NAMES if name != "compile"])
def test_each_peer_built_from_its_sources_still_shows_its_findings(peer: str) -> None:
    from moegate.properties.peers import PeerLaunchError

    found = get_peer(peer)
    if found.unavailable is not None:
        pytest.skip(f"{peer}: {found.unavailable}")
    found.prepare("cuda")
    for path in (p for p in CASES if p.parent.name == peer):
        case = load(path)
        run = fx._with_recorded_stride(case.problem.to("cuda"), case.meta.get("row_stride", ""))
        if case.meta["rule"] == "launcher":
            with pytest.raises(PeerLaunchError):
                found.fn(run.scores, run.bias, run.config)
            continue
        ids, weights = found.fn(run.scores, run.bias, run.config)
        violations = oracle.check_routing(
            case.problem,
            ids.cpu(),
            weights.cpu(),
            weight_dtype=found.contract.weight_dtype(case.problem.dtype),
        )
        assert case.meta["rule"] in {v.rule for v in violations}, f"{path.name} no longer reproduces"
