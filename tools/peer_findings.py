"""Survey the peer kernels for findings: the property suite on slices of each peer's contract, in parallel.

    python tools/peer_findings.py --out DIR [--peers flashinfer-default,...] [--profile dev] [--jobs 14]
        [--deep]

A run of `verify` stops each property at its first failure, so one finding can hide the others. The survey
runs each peer on narrow slices of what its contract accepts (the mainstream shapes with finite inputs;
each kind of non-finite or extreme row alone; each unusual shape class alone; strided rows), each in its own
process on the GPU, and saves every failing slice's shrunk counterexample with what the peer returned:

    DIR/summary.json                         one entry per (peer, slice): verdict, examples, seconds,
                                             failing properties and their first lines
    DIR/<peer>/<slice>/manifest.json, ...    the counterexample as a fixture set (expected = the reference)
    DIR/<peer>/<slice>/peer_output.json      what the peer returned on it (ids, weights) or raised

With --deep, each peer's mainstream slice also runs at the deep profile (10,500 examples), and so does the
whole contract (which fails early where a finding lies). Nothing here is judged by hand: docs/peers.md is
written from summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

FINITE_ROWS = ("gaussian", "ties", "near_ties", "bf16_small")  # tie_block may hold NaN and inf
FINITE_BIAS = ("deepseek", "ties", "large", "negative", "zero")
# The shapes every kernel is written for: one group, or DeepSeek-like groups.
MAINSTREAM = "G == 1 or (G <= 8 and Kg <= 4 and n >= 2 and E <= 256)"


@dataclass(frozen=True)
class Slice:
    """One narrowing of a peer's contract: verify's row/bias kinds, extra limits, layout, properties."""

    name: str
    limits: tuple[str, ...]
    row_kinds: tuple[str, ...] = FINITE_ROWS
    bias_kinds: tuple[str, ...] = FINITE_BIAS
    properties: tuple[str, ...] = ("oracle",)
    row_stride: str = "contiguous"
    profile: str = "dev"
    dtypes: tuple[str, ...] = ()
    min_rows: int = 1  # T = 0 is probed on its own (t0_probe): it would hide everything else
    extra: dict = field(default_factory=dict)


def slices_for(peer: str, contract, deep: bool) -> list[Slice]:
    base = (MAINSTREAM,) + (("G > 1 or K == 1", "G == 1 or Kg * G >= K") if peer == "flashinfer-cake" else ())
    every = ("oracle", "differential", "expert_permutation", "bias_shift", "batch_invariance", "row_order",
             "determinism")  # fmt: skip
    out = [
        Slice(f"mainstream-{d}", base, properties=every, dtypes=(d,))
        for d in ("float32", "bfloat16", "float16")
    ]
    kinds = ("nonfinite", "all_nan", "all_neg_inf", "huge", "very_negative", "tie_block")
    out += [Slice(f"rows-{k}", base, row_kinds=(k,)) for k in kinds]
    out += [Slice("bias-nonfinite", base, row_kinds=("gaussian",), bias_kinds=("nonfinite",))]
    tame = "(G <= 8 and Kg <= 4)"
    shapes = {
        "shape-G_gt_8": "G > 8 and n >= 2 and Kg <= 4",
        "shape-Kg_gt_4": "G > 1 and G <= 8 and Kg > 4 and n >= 2",
        "shape-one_expert_groups": f"G > 1 and n == 1 and {tame}",
        "shape-E_gt_256_grouped": f"G > 1 and E > 256 and n >= 2 and {tame}",
        "shape-single_group_K_gt_1": "G == 1 and K > 1",
        "shape-K_gt_8": f"K > 8 and (G == 1 or (n >= 2 and {tame}))",
        "shape-Kg_times_G_lt_K": f"G > 1 and Kg * G < K and n >= 2 and {tame}",
    }
    out += [Slice(name, (expr,)) for name, expr in shapes.items()]
    if contract is None or contract.row_stride == "any":
        out.append(Slice("layout-strided", base, row_stride="padded"))
    if peer == "compile":  # SPEC-complete: the mainstream, non-finite inputs and strided rows are enough
        keep = (
            "mainstream-float32",
            "mainstream-bfloat16",
            "rows-nonfinite",
            "bias-nonfinite",
            "layout-strided",
        )
        out = [s for s in out if s.name in keep]
    if deep:
        out.append(Slice("mainstream-deep", base, properties=every, profile="deep"))
    return out


TAME_ROWS = ("ties", "near_ties", "bf16_small")  # finite and small: past the findings about extreme logits


def targeted_slices(peer: str) -> list[Slice]:
    """The second look, past the first findings: small finite logits (no sigmoid underflow), float32 for
    vLLM's shapes (no reduced-precision p), and cake's bfloat16 and float16 mainstream again."""
    base = (MAINSTREAM,) + (("G > 1 or K == 1", "G == 1 or Kg * G >= K") if peer == "flashinfer-cake" else ())
    every = ("oracle", "differential", "expert_permutation", "bias_shift", "batch_invariance", "row_order",
             "determinism")  # fmt: skip
    out = [
        Slice(f"tame-{d}", base, row_kinds=TAME_ROWS, properties=every, dtypes=(d,))
        for d in ("float32", "bfloat16")
    ]
    if peer == "flashinfer-cake":
        out += [
            Slice(f"mainstream-{d}", base, properties=every, dtypes=(d,)) for d in ("bfloat16", "float16")
        ]
    if peer == "vllm":
        tame = "(G <= 8 and Kg <= 4)"
        shapes = {
            "f32-K_gt_8": f"K > 8 and (G == 1 or (n >= 2 and {tame}))",
            "f32-Kg_gt_4": "G > 1 and G <= 8 and Kg > 4 and n >= 2",
            "f32-single_group_K_gt_1": "G == 1 and K > 1",
            "f32-E_gt_256_grouped": f"G > 1 and E > 256 and n >= 2 and {tame}",
        }
        out += [
            Slice(name, (expr,), row_kinds=TAME_ROWS, dtypes=("float32",)) for name, expr in shapes.items()
        ]
    return out


def t0_probe(peer: str, device: str) -> dict:
    """What the peer does with T = 0 rows (valid per SPEC: empty outputs), called directly."""
    import torch

    from moegate.properties.impls import load_impl
    from moegate.reference import get_preset

    impl = load_impl(peer)
    config = get_preset("deepseek-v3")
    if impl.contract is not None:
        config = impl.contract.project(config)
    bias = torch.zeros(256, device=device)
    try:
        ids, weights = impl.fn(torch.zeros(0, 256, device=device), bias, config)
        return {"peer": peer, "slice": "t0", "status": "PASS" if ids.shape[0] == 0 else "FAIL",
                "result": f"ids {tuple(ids.shape)} weights {tuple(weights.shape)}"}  # fmt: skip
    except Exception as exc:
        return {"peer": peer, "slice": "t0", "status": "FAIL", "result": f"{type(exc).__name__}: {exc}"[:500]}


def run_slice(peer: str, sl: Slice, out_dir: str, device: str = "cuda") -> dict:
    """One slice in this (worker) process: verify, then save the counterexample and the peer's output."""
    import torch

    torch.set_num_threads(1)
    from moegate.properties import fixtures as fx
    from moegate.properties.impls import load_impl
    from moegate.properties.suite import verify

    impl = load_impl(peer)
    if impl.prepare is not None:
        impl.prepare(device)
    start = time.perf_counter()
    try:
        report = verify(
            impl.fn,
            device=device,
            profile=sl.profile,
            properties=list(sl.properties),
            impl_name=peer,
            contract=impl.contract,
            row_kinds=list(sl.row_kinds) or None,
            bias_kinds=list(sl.bias_kinds) or None,
            limits=sl.limits,
            row_stride=sl.row_stride,
            dtypes=list(sl.dtypes) or None,
            min_rows=sl.min_rows,
        )
    except ValueError as exc:  # the slice is empty for this contract
        return {"peer": peer, "slice": sl.name, "status": "n/a", "reason": str(exc)}
    entry = {
        "peer": peer,
        "slice": sl.name,
        "profile": sl.profile,
        "limits": list(sl.limits),
        "row_kinds": list(sl.row_kinds),
        "bias_kinds": list(sl.bias_kinds),
        "row_stride": sl.row_stride,
        "dtypes": list(sl.dtypes),
        "status": "PASS" if report.ok else "FAIL",
        "examples": report.examples,
        "seconds": round(time.perf_counter() - start, 1),
        "properties": [r.to_dict() for r in report.results],
    }
    failed = [r for r in report.results if r.counterexample is not None]
    if failed:
        first = failed[0]
        problem = first.counterexample
        target = Path(out_dir) / peer / sl.name
        reference = load_impl("reference")
        meta = {"peer": peer, "slice": sl.name, "property": first.name}
        case = fx.record_case("counterexample", problem, reference, device="cpu", extra_meta=meta)
        fx.write_fixture_set(target, [case], description=f"{peer} {sl.name}: {first.name}")
        moved = problem.to(device)
        try:
            ids, weights = impl.fn(moved.scores, moved.bias, moved.config)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            peer_out = {"ids": ids.cpu().tolist(), "weights": weights.cpu().tolist()}
        except Exception as exc:
            peer_out = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:500]}"}
        (target / "peer_output.json").write_text(json.dumps(peer_out))
        entry["counterexample"] = str(target)
        entry["first_failure"] = (first.failure or "")[:3000]
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--peers", default="flashinfer-default,flashinfer-cake,vllm")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--deep", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated slice names")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--targeted", action="store_true", help="the second look (targeted_slices) only")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from moegate.properties.impls import load_impl

    jobs = []
    for peer in args.peers.split(","):
        chosen = (
            targeted_slices(peer) if args.targeted else slices_for(peer, load_impl(peer).contract, args.deep)
        )
        for sl in chosen:
            if not args.only or sl.name in args.only.split(","):
                jobs.append((peer, sl))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    results = []
    start = time.perf_counter()
    import multiprocessing

    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_slice, peer, sl, args.out, args.device): (peer, sl) for peer, sl in jobs}
        for future in as_completed(futures):
            peer, sl = futures[future]
            try:
                entry = future.result()
            except Exception:
                entry = {
                    "peer": peer,
                    "slice": sl.name,
                    "status": "CRASH",
                    "reason": traceback.format_exc()[-2000:],
                }
            results.append(entry)
            fails = [p["name"] for p in entry.get("properties", []) if not p["ok"]]
            print(f"[{time.perf_counter() - start:6.1f}s] {peer:19s} {sl.name:28s} {entry['status']:5s} "
                  f"{entry.get('examples', '')} {','.join(fails)}", flush=True)  # fmt: skip
    for peer in args.peers.split(","):
        if peer != "compile" and not args.targeted:
            results.append(t0_probe(peer, args.device))
    results.sort(key=lambda e: (e["peer"], e["slice"]))
    (Path(args.out) / "summary.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
