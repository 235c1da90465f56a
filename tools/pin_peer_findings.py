"""Pin each peer finding of docs/peers.md as a fixture set under tests/peer_findings/<peer>/<finding>/.

    python tools/pin_peer_findings.py pin --survey DIR [--survey DIR ...]   # inputs from the surveys
    python tools/pin_peer_findings.py record [--out DIR]                    # on a GPU: the peer's output

`pin` takes each finding's shrunk counterexample from a survey (tools/peer_findings.py) and writes a fixture
set: the inputs, the reference's output as the expected ids/weights, what the peer returned on them as
peer_ids/peer_weights (or, when its launcher refused, the error in the metadata), and metadata naming the
peer, the finding, the oracle rule it breaks and the command that replays it. `record` runs each peer on the
pinned inputs again (at the recorded row stride) and rewrites its output, so the fixtures hold what this
version of the peer computes on this GPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1] / "tests" / "peer_findings"
VERSIONS = {"flashinfer-default": "flashinfer 0.7.2.post1", "flashinfer-cake": "flashinfer 0.7.2.post1",
            "vllm": "vllm 0.33.0"}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    peer: str
    name: str
    slice: str  # the survey slice whose counterexample pins it
    rule: str  # the oracle rule the peer's output breaks, or "launcher" (its launcher refuses the call)
    sentence: str  # what the run showed


FINDINGS = (
    Finding(
        "flashinfer-default",
        "empty-batch",
        "t0",
        "launcher",
        "T = 0 rows (valid per SPEC: empty outputs) fails at launch with 'invalid argument' (a grid of 0"
        " blocks).",
    ),
    Finding(
        "flashinfer-default",
        "nan-logit",
        "rows-nonfinite",
        "no_nan",
        "A row with NaN logits gets NaN weights in every slot, and NaN experts are selected (SPEC reads "
        "a NaN logit as -inf).",
    ),
    Finding(
        "flashinfer-default",
        "nan-bias",
        "bias-nonfinite",
        "group_selection",
        "A NaN bias entry makes its expert win slot 0 and its group kept (SPEC reads it as -inf): expert"
        " 154 (bias NaN) routed, group 0 dropped.",
    ),
    Finding(
        "flashinfer-default",
        "sigmoid-underflow",
        "rows-very_negative",
        "routed_weights",
        "Logits below about -17 give weight 0 in every slot: sigmoid computed as 0.5 * tanh(x / 2) + 0.5"
        " rounds to 0 there, where SPEC's 1 / (1 + exp(-x)) keeps the renormalized weights.",
    ),
    Finding(
        "flashinfer-default",
        "groups-past-8",
        "shape-G_gt_8",
        "group_selection",
        "n_group > 8 (declared: n_group <= 32): groups 8 and up are never scored, so the wrong group is "
        "kept (E = 20, G = 10).",
    ),
    Finding(
        "flashinfer-default",
        "kept-groups-past-4",
        "shape-Kg_gt_4",
        "expert_selection",
        "topk_group > 4 (declared: topk_group <= n_group): experts of the fifth and later kept groups "
        "are never candidates (E = 12, G = 6, Kg = 5).",
    ),
    Finding(
        "flashinfer-default",
        "one-expert-groups",
        "shape-one_expert_groups",
        "group_selection",
        "One expert per group (E = G): every group scores -inf + b (no second expert), so the lowest "
        "group index is kept whatever the scores.",
    ),
    Finding(
        "flashinfer-default",
        "grouped-E-past-256",
        "shape-E_gt_256_grouped",
        "launcher",
        "E = 384 with 12 groups of 32 (declared: n_group <= 32, E / n_group <= 32) is refused by the "
        "launcher: 'unsupported configuration' (its grouped path stops at E = 256).",
    ),
    Finding(
        "flashinfer-cake",
        "single-group-refused",
        "shape-single_group_K_gt_1",
        "launcher",
        "Every single-group model with topk > 1 (Kimi-K2 here, also Moonlight, GLM-4.5) is refused by "
        "the launcher: it asks topk_group * n_group >= topk, groups where experts are meant.",
    ),
    Finding(
        "flashinfer-cake",
        "groups-times-kept-below-k",
        "shape-Kg_times_G_lt_K",
        "launcher",
        "Grouped configurations with topk_group * n_group < topk (E = 6, G = 2, Kg = 1, K = 3) are "
        "refused by the launcher, although SPEC's K <= Kg * E / G holds.",
    ),
    Finding(
        "flashinfer-cake",
        "id-out-of-range",
        "rows-all_nan",
        "id_range",
        "A single expert (E = 1) with a NaN logit is routed to id 384, outside [0, E): the expert "
        "dispatch downstream would read past its table.",
    ),
    Finding(
        "flashinfer-cake",
        "nan-logit",
        "rows-nonfinite",
        "no_nan",
        "A row with NaN logits gets NaN weights in every slot (SPEC reads a NaN logit as -inf).",
    ),
    Finding(
        "flashinfer-cake",
        "nan-bias",
        "bias-nonfinite",
        "group_selection",
        "A NaN bias entry makes its expert win slot 0 and its group kept (SPEC reads it as -inf).",
    ),
    Finding(
        "flashinfer-cake",
        "sigmoid-underflow",
        "rows-very_negative",
        "routed_weights",
        "Logits below about -17 give weight 0 (tanh.approx sigmoid), where SPEC's renormalized weight is"
        " 0.26 (logit -47).",
    ),
    Finding(
        "flashinfer-cake",
        "fast-math-weights",
        "mainstream-float32",
        "routed_weights",
        "With float32 logits the weights are off by up to about 1e-4 relative (0.02650 for 0.02641): the"
        " build's --use_fast_math (tanh.approx, approximate reciprocal), where SPEC's float32 arithmetic"
        " keeps them within 1e-5.",
    ),
    Finding(
        "vllm",
        "empty-batch",
        "t0",
        "launcher",
        "T = 0 rows fails at launch with 'invalid argument' (a grid of 0 blocks); the op does not check "
        "the launch, so in vLLM the error stays pending for the next CUDA call that checks.",
    ),
    Finding(
        "vllm",
        "low-precision-sigmoid",
        "mainstream-bfloat16",
        "routed_weights",
        "With bfloat16 or float16 logits, p is rounded to the logits' dtype before the weights are "
        "formed, so the float32 weights are off by up to 2^-8 relative (0.8789 for 0.8808).",
    ),
    Finding(
        "vllm",
        "strided-rows",
        "layout-strided",
        "routed_weights",
        "Scores with a row stride larger than E are read as if dense: row 1 routes the padding between "
        "the rows (the op does not check the layout).",
    ),
    Finding(
        "vllm",
        "neg-inf-logits",
        "rows-all_neg_inf",
        "expert_selection",
        "A row of -inf logits (p = 0 everywhere, b = the bias) routes expert 0 instead of the expert "
        "with the largest bias.",
    ),
    Finding(
        "vllm",
        "neg-inf-weight",
        "rows-huge",
        "routed_weights",
        "A single -inf logit (float16) gets weight 1 where SPEC's weight is 0 (p = 0, renormalized by 0 "
        "+ 1e-20).",
    ),
    Finding(
        "vllm",
        "infinite-logits",
        "rows-nonfinite",
        "expert_selection",
        "Experts with +inf logits (p = 1) are passed over for a finite one (expert 2 instead of 4); NaN "
        "and infinite logits are not read as SPEC reads them.",
    ),
    Finding(
        "vllm",
        "inf-bias",
        "bias-nonfinite",
        "routed_weights",
        "An expert whose bias is +inf is routed with weight 0 where SPEC gives its p (0.428).",
    ),
    Finding(
        "vllm",
        "sigmoid-underflow",
        "rows-very_negative",
        "routed_weights",
        "Logits below about -17 give weight 0 in every slot (sigmoid as 0.5 * tanh(x / 2) + 0.5).",
    ),
    Finding(
        "vllm",
        "groups-past-8",
        "shape-G_gt_8",
        "group_selection",
        "n_group > 8 (declared: n_group <= 32): the wrong group is kept (E = 20, G = 10).",
    ),
    Finding(
        "vllm",
        "one-expert-groups",
        "shape-one_expert_groups",
        "group_selection",
        "One expert per group (E = G): the lowest group index is kept whatever the scores.",
    ),
)


def replay_command(peer: str, name: str) -> str:
    return f"moegate fixtures check tests/peer_findings/{peer}/{name} --impl {peer}"


def _t0_problem(peer: str):
    from moegate.properties.peers import get_peer
    from moegate.properties.problem import RoutingProblem
    from moegate.reference import get_preset

    config = get_peer(peer).contract.project(get_preset("deepseek-v3"))
    return RoutingProblem(config, torch.zeros(0, 256), torch.zeros(256), note="T = 0")


def cmd_pin(args: argparse.Namespace) -> None:
    from moegate.properties import fixtures as fx
    from moegate.properties.impls import load_impl
    from moegate.properties.peers import get_peer

    reference = load_impl("reference")
    for f in FINDINGS:
        peer_out = None
        if f.slice == "t0":
            problem, row_stride = _t0_problem(f.peer), "256"
            peer_out = {"error": f"PeerLaunchError: {f.peer}'s launcher failed (status 1): invalid argument"}
        else:
            found = [Path(s) / f.peer / f.slice for s in args.survey]
            source = next((d for d in found if d.is_dir()), None)
            if source is None:
                raise SystemExit(f"no survey holds {f.peer}/{f.slice}")
            case = fx.load_fixture_set(source)[0]
            problem, row_stride = case.problem, case.meta.get("row_stride", "")
            peer_out = json.loads((source / "peer_output.json").read_text())
        contract = get_peer(f.peer).contract
        meta = {
            "peer": f.peer,
            "peer_version": VERSIONS[f.peer],
            "finding": f.sentence,
            "rule": f.rule,
            "replay": replay_command(f.peer, f.name),
            "survey_slice": f.slice,
            "weight_dtype": str(contract.weight_dtype(problem.dtype)).replace("torch.", ""),
            "row_stride": row_stride,
        }
        pinned = fx.record_case(f.name, problem, reference, device="cpu", extra_meta=meta)
        pinned = _with_peer_output(pinned, peer_out)
        fx.write_fixture_set(
            ROOT / f.peer / f.name, [pinned], description=f"{f.peer}: {f.sentence}", force=True
        )
        print(f"pinned {f.peer}/{f.name}")


def _with_peer_output(case, peer_out: dict):
    if "error" in peer_out:
        return replace(case, meta={**case.meta, "peer_error": peer_out["error"][:500]})
    T, W = case.ids.shape
    ids = torch.tensor(peer_out["ids"], dtype=torch.int32).reshape(T, W)
    weights = torch.tensor(peer_out["weights"], dtype=torch.float32).reshape(T, W)
    meta = {k: v for k, v in case.meta.items() if k != "peer_error"}
    return replace(case, peer_ids=ids, peer_weights=weights, meta=meta)


def cmd_record(args: argparse.Namespace) -> None:
    """On a GPU: each pinned finding's peer output, recorded again from the peer itself."""
    from moegate.properties import fixtures as fx
    from moegate.properties.impls import load_impl

    out = Path(args.out)
    for peer_dir in sorted(p for p in ROOT.iterdir() if p.is_dir()):
        impl = load_impl(peer_dir.name)
        if impl.prepare is not None:
            impl.prepare("cuda")
        for finding_dir in sorted(p for p in peer_dir.iterdir() if (p / "manifest.json").is_file()):
            (case,) = fx.load_fixture_set(finding_dir)
            run = fx._with_recorded_stride(case.problem.to("cuda"), case.meta.get("row_stride", ""))
            try:
                ids, weights = impl.fn(run.scores, run.bias, run.config)
                torch.cuda.synchronize()
                peer_out = {"ids": ids.cpu().tolist(), "weights": weights.cpu().tolist()}
            except Exception as exc:
                peer_out = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
            recorded = _with_peer_output(case, peer_out)
            recorded = replace(recorded, meta={**recorded.meta, "device_name": torch.cuda.get_device_name()})
            target = out / peer_dir.name / finding_dir.name
            shutil.copytree(finding_dir, target, dirs_exist_ok=True)
            fx.write_fixture_set(target, [recorded], description=f"{peer_dir.name}: {case.meta['finding']}",
                                 force=True)  # fmt: skip
            print(f"recorded {peer_dir.name}/{finding_dir.name}: {str(peer_out)[:120]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pin")
    p.add_argument("--survey", action="append", required=True)
    p.set_defaults(func=cmd_pin)
    r = sub.add_parser("record")
    r.add_argument("--out", required=True)
    r.set_defaults(func=cmd_record)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
