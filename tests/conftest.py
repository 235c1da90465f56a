"""Shared pytest set-up: GPU tests (marker `gpu`) skip with a visible reason where no GPU is usable."""

from __future__ import annotations

import pytest

from moegate.properties.impls import gpu_unavailable_reason
from moegate.properties.suite import load_profile

# Hypothesis profile for every @given test and verify(): moegate-ci unless $MOEGATE_PROFILE says otherwise;
# pytest's --hypothesis-profile=moegate-deep overrides both.
load_profile()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = gpu_unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"gpu: {reason} (run the GPU tests on a GPU: `make gpu-test`)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
