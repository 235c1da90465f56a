"""Shared pytest set-up: GPU tests (marker `gpu`) skip with a visible reason where no GPU is usable."""

from __future__ import annotations

import pytest
import torch

from moegate.properties.verify import load_profile

# Hypothesis profile for every @given test and verify(): moegate-ci unless $MOEGATE_PROFILE says otherwise;
# pytest's --hypothesis-profile=moegate-deep overrides both.
load_profile()


def _gpu_unavailable_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch (GPU tests run on the device machine: `make gpu-test`)"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed (pip install 'moegate[gpu]')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _gpu_unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"gpu: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
