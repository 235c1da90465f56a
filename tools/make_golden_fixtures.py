"""Re-record the golden fixtures in tests/fixtures/ with the reference, on purpose.

    python tools/make_golden_fixtures.py [--out tests/fixtures] [--rows 64] [--seed 0]

Every preset x {float32, bfloat16, float16} (`--rows` rows each) plus the edge sets of
`moegate.properties.fixtures.edge_problems` (ties, NaN/inf, T = 0, replica, scaling on the output,
row-strided input, mixed bias dtypes, awkward shapes). Before writing, every recorded output must pass
`oracle.check_routing`: a golden file is never just "what the code produced". Files are byte-for-byte
deterministic, so re-recording an unchanged reference leaves git clean; a diff in tests/fixtures/ means
the reference's output changed.

Run this only when a change of the reference's output is intended (and SPEC.md says so); commit the
new fixtures together with that change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moegate.properties import fixtures as fx
from moegate.properties import oracle
from moegate.properties.impls import load_impl

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(REPO / "tests" / "fixtures"), help="fixture directory")
    parser.add_argument("--rows", type=int, default=64, help="rows per preset x dtype case")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    args = parser.parse_args(argv)
    reference = load_impl("reference")
    problems = fx.preset_cases_problems(["all"], list(fx.DTYPES.values()), args.rows, args.seed)
    problems += fx.edge_problems(args.seed)
    cases = fx.record_problems(problems, reference, device="cpu")
    bad = 0
    for case in cases:
        violations = oracle.check_routing(case.problem, case.ids, case.weights)
        for v in violations[:3]:
            print(f"{case.name}: oracle violation: {v}", file=sys.stderr)
        bad += bool(violations)
    if bad:
        print(f"{bad} cases violate the oracle: nothing written", file=sys.stderr)
        return 1
    out = Path(args.out)
    # force: the old set is replaced as a whole (cases that no longer exist do not linger); the README
    # and any other file that is not part of the set are kept.
    fx.write_fixture_set(
        out,
        cases,
        description=f"golden fixtures: the reference's outputs (tools/make_golden_fixtures.py --rows "
        f"{args.rows} --seed {args.seed}); re-record only when the reference changes on purpose",
        force=True,
    )
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"wrote {len(cases)} cases, {size / 1e6:.2f} MB, to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
