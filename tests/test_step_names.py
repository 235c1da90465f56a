"""Every SPEC.md step has one name in the reference, the kernel and the oracle (a newcomer greps one word)."""

from __future__ import annotations

from pathlib import Path

import moegate.reference as reference
from moegate.optimized import KERNEL_SOURCE
from moegate.properties import oracle
from moegate.properties.mutants import STEPS


def test_spec_steps_are_named_alike_everywhere() -> None:
    kernel = KERNEL_SOURCE.read_text()
    oracle_source = Path(oracle.__file__).read_text()
    assert len(reference.SPEC_STEPS) == 8
    for number, step in enumerate(reference.SPEC_STEPS, start=1):
        function = getattr(reference, step)
        assert function.__doc__.startswith(f"Step {number}:"), (step, function.__doc__[:20])
        assert step in kernel, f"{step} is not named in {KERNEL_SOURCE.name}"
        assert step in oracle_source, f"{step} is not named in properties/oracle.py"
    # the mutant panel overrides steps by these names, and only by these
    assert set(STEPS) == set(reference.SPEC_STEPS)
