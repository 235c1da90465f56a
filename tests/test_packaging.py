"""The package installs as `moegate.*` only; a plain (non-editable) wheel imports from outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(out),
        str(REPO),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    (built,) = out.glob("moegate-*.whl")
    return built


def test_wheel_holds_only_the_moegate_namespace_and_the_kernel_sources(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {name.split("/")[0] for name in names}
    assert {t for t in top_levels if not t.endswith(".dist-info")} == {"moegate"}, top_levels
    for package in ("reference", "optimized", "properties"):
        assert f"moegate/{package}/__init__.py" in names
    kernels = REPO / "optimized" / "kernels"
    kernel_sources = sorted([*kernels.glob("*.cu"), *kernels.glob("*.cpp")])  # route.cu, launcher.cpp
    assert {s.name for s in kernel_sources} >= {"route.cu", "launcher.cpp"}
    for source in kernel_sources:
        assert f"moegate/optimized/kernels/{source.name}" in names
    assert not any(name.startswith(("reference/", "properties/", "optimized/")) for name in names)


def test_plain_wheel_install_imports_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import moegate.reference as r, moegate.optimized, moegate.properties, torch\n"
        "print(r.__file__)\n"
        "ids, w = r.route(torch.randn(4, 256), torch.zeros(256), r.get_preset('deepseek-v3'))\n"
        "print(tuple(ids.shape))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, check=True, capture_output=True, text=True
    )
    first, second = result.stdout.splitlines()[:2]
    assert first.startswith(str(target)), first  # imported from the wheel, not from the checkout
    assert second == "(4, 9)"
