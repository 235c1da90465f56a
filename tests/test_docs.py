"""The repository's copy of the routing contract stays identical to the project's shared SPEC.md."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_SPEC = REPO.parent / "shared" / "SPEC.md"


@pytest.mark.skipif(not SHARED_SPEC.exists(), reason="no ../shared/SPEC.md beside this checkout")
def test_docs_spec_is_the_shared_spec() -> None:
    assert (REPO / "docs" / "SPEC.md").read_text() == SHARED_SPEC.read_text(), (
        "docs/SPEC.md drifted from ../shared/SPEC.md: copy it again (cp ../shared/SPEC.md docs/SPEC.md) "
        "and change code and tests with it"
    )
