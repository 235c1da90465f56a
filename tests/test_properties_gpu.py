"""The property suite on the GPU: the fused kernel passes on every dtype, the planted review bug is killed.

Skipped with a reason where no GPU and CuPy are usable (tests/conftest.py). Profile: $MOEGATE_PROFILE,
else ci (quick); `MOEGATE_PROFILE=deep` for the long run (or tools/verify_gpu.py).
"""

from __future__ import annotations

import pytest

from moegate.properties.suite import verify

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_fused_kernel_passes_the_suite(dtype: str) -> None:
    from moegate.optimized import route

    report = verify(route, device="cuda", dtypes=[dtype], impl_name="moegate.optimized.route")
    assert report.ok, report.format()


def test_planted_review_bug_is_killed() -> None:
    from moegate.optimized import build_route

    buggy = build_route(defines=("MOEGATE_PLANT_REVIEW_BUG",))
    report = verify(
        buggy, device="cuda", stop_on_failure=True, impl_name="optimized+MOEGATE_PLANT_REVIEW_BUG"
    )
    assert not report.ok, "the planted review bug survived the property suite"
    failed = next(r for r in report.results if not r.ok)
    assert failed.name in ("oracle", "differential")
    assert failed.counterexample is not None
    if failed.name == "oracle":
        assert "[invariant]" in failed.failure
