"""Run the property suite against the fused kernel on the GPU, one dtype at a time, then check that the
planted review bug is killed. Prints the card, and for each run the examples, seconds and verdict.

Usage (GPU machine, repo root):  python tools/verify_gpu.py [--profile deep] [--dtype bf16 ...]
                                                           [--examples N] [--seed S]
Exit status 0 when the kernel passes every dtype and the planted bug is killed.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from moegate.properties.suite import PROFILES, PROPERTIES, verify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="deep", choices=sorted(PROFILES))
    parser.add_argument(
        "--dtype", action="append", default=None, help="float32, float16, bfloat16 (repeatable)"
    )
    parser.add_argument(
        "--examples", type=int, default=None, help="examples per property (default: profile's)"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--skip-planted", action="store_true", help="do not check the planted review bug")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("verify_gpu: no CUDA device visible to torch", file=sys.stderr)
        return 2
    from moegate.optimized import build_route, route

    card = torch.cuda.get_device_name(0)
    profile = PROFILES[args.profile]
    per_property = args.examples or profile.examples
    print(
        f"card: {card}; torch {torch.__version__}; profile {profile.name}: {per_property} examples x "
        f"{len(PROPERTIES)} properties per dtype, T <= {profile.max_rows}",
        flush=True,
    )
    ok = True
    total_start = time.perf_counter()
    for dtype in args.dtype or ["float32", "float16", "bfloat16"]:
        report = verify(
            route,
            device="cuda",
            profile=profile.name,
            dtypes=[dtype],
            max_examples=args.examples,
            seed=args.seed,
            impl_name="moegate.optimized.route",
        )
        print(
            f"\n[{dtype}] {'PASS' if report.ok else 'FAIL'}: {report.examples} examples in "
            f"{report.seconds:.1f}s on {card}",
            flush=True,
        )
        print(report.table() if report.ok else report.format(), flush=True)
        ok = ok and report.ok
    if not args.skip_planted:
        buggy = build_route(defines=("MOEGATE_PLANT_REVIEW_BUG",))
        report = verify(
            buggy,
            device="cuda",
            profile="ci",
            stop_on_failure=True,
            impl_name="optimized+MOEGATE_PLANT_REVIEW_BUG",
        )
        killer = next((r for r in report.results if not r.ok), None)
        verdict = f"killed by {killer.name}" if killer else "SURVIVED"
        print(
            f"\n[planted review bug] {verdict}: {report.examples} examples in {report.seconds:.1f}s",
            flush=True,
        )
        if killer is not None:
            print(killer.failure.splitlines()[0] if killer.failure else "", flush=True)
        ok = ok and killer is not None
    print(f"\nverify_gpu: {'PASS' if ok else 'FAIL'} ({time.perf_counter() - total_start:.1f}s on {card})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
