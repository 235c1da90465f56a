"""CPU tests of the fused kernel's source: route.cu compiles with nvcc for sm_80 and sm_90 with the run-time
options, every name expression of the dispatch table instantiated, warnings as errors.

No GPU needed, only nvcc (skipped with a visible reason where it is absent).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from moegate.optimized import KERNEL_SOURCE, KNOWN_DEFINES, name_expressions, nvcc_options
from moegate.reference import SPEC_STEPS

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(
    NVCC is None, reason="nvcc is not on PATH (the CUDA toolkit is not installed)"
)


def _translation_unit(tmp_path: Path) -> Path:
    """A .cu file that #includes route.cu and takes the address of every compiled name expression, which
    instantiates each specialization and the generic kernel exactly as NVRTC's name expressions do."""
    lines = [
        f'#include "{KERNEL_SOURCE}"',
        "extern void* const kInstantiated[];",
        "void* const kInstantiated[] = {",
        *[f"    reinterpret_cast<void*>(&{name})," for name in name_expressions()],
        "};",
    ]
    path = tmp_path / "instantiate_all.cu"
    path.write_text("\n".join(lines) + "\n")
    return path


def _nvcc(tmp_path: Path, defines: tuple[str, ...], archs: tuple[int, ...]) -> subprocess.CompletedProcess:
    assert NVCC is not None
    source = _translation_unit(tmp_path)
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    cmd = [NVCC, "-c", *nvcc_options(defines), "-Werror", "all-warnings", *gencode, str(source)]
    cmd += ["-o", str(tmp_path / "instantiate_all.o")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


@needs_nvcc
def test_route_cu_compiles_for_sm80_and_sm90_without_warnings(tmp_path: Path) -> None:
    result = _nvcc(tmp_path, (), (80, 90))
    assert result.returncode == 0, f"nvcc failed:\n{result.stdout}\n{result.stderr}"


@needs_nvcc
@pytest.mark.parametrize("define", KNOWN_DEFINES)
def test_route_cu_compiles_with_each_define(tmp_path: Path, define: str) -> None:
    result = _nvcc(tmp_path, (define,), (90,))
    assert result.returncode == 0, f"nvcc failed with -D{define}:\n{result.stdout}\n{result.stderr}"


def test_kernel_source_is_self_contained() -> None:
    # NVRTC compiles it with no include path: no #include at all, and the SPEC step names are findable.
    text = KERNEL_SOURCE.read_text()
    assert "#include" not in text
    for step in SPEC_STEPS:
        assert step in text, f"SPEC step {step!r} is not named in {KERNEL_SOURCE.name}"
    assert "use_fast_math" not in " ".join(nvcc_options())
