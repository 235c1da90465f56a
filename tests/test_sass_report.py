"""CPU tests of tools/sass_report.py's parsers, on canned nvcc and cuobjdump output (no toolchain needed)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import sass_report  # noqa: E402

SASS = """
	code for sm_90
		Function : _Z4loopPii
	.headerflags	@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;                     /* 0x00000a00ff017b82 */
                                                                              /* 0x000fe20000000800 */
        /*0010*/                   S2R R0, SR_TID.X ;                         /* 0x0000000000007919 */
        /*0020*/                   IADD3 R0, R0, 0x20, RZ ;                   /* 0x0000000000007919 */
        /*0030*/                   BRA.DIV UR4, 0x90 ;                        /* 0x0000000000007919 */
        /*0040*/                   ISETP.GE.AND P0, PT, R0, 0x40, PT ;        /* 0x0000000000007919 */
        /*0050*/              @!P0 BRA 0x20 ;                                 /* 0x0000000000007919 */
        /*0060*/                   EXIT ;                                     /* 0x0000000000007919 */
        /*0070*/                   BRA 0x70;                                  /* 0x0000000000007919 */
        /*0080*/                   NOP;                                       /* 0x0000000000007918 */
		Function : _Z8straightPf
        /*0000*/                   FADD R5, R0, R0 ;                          /* 0x0000000000057221 */
        /*0010*/                   EXIT ;                                     /* 0x000000000000794d */
        /*0020*/                   BRA 0x0 ;                                  /* 0x0000000000007947 */
"""

PTXAS = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z4loopPii' for 'sm_90'
ptxas info    : Function properties for _Z4loopPii
    24 bytes stack frame, 44 bytes spill stores, 40 bytes spill loads
ptxas info    : Used 64 registers, used 0 barriers, 24 bytes cumulative stack size, 27648 bytes smem
ptxas info    : Function properties for _Z6calleev
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Compiling entry function '_Z8straightPf' for 'sm_90'
ptxas info    : Function properties for _Z8straightPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 8 registers, used 0 barriers
"""


def test_functions_are_split_and_their_padding_dropped() -> None:
    functions = sass_report.split_functions(SASS)
    assert list(functions) == ["_Z4loopPii", "_Z8straightPf"]
    assert [a for a, _ in functions["_Z4loopPii"]] == [0x0, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60]
    assert functions["_Z4loopPii"][5] == (0x50, "@!P0 BRA 0x20")
    # an unconditional branch backwards is kept where it is code, not the trailing self-branch
    assert functions["_Z8straightPf"][-1] == (0x20, "BRA 0x0")


def test_the_longest_loop_is_a_conditional_backward_branch() -> None:
    functions = sass_report.split_functions(SASS)
    assert sass_report.longest_loop(functions["_Z4loopPii"]) == 4  # 0x20 .. 0x50
    assert sass_report.longest_loop(functions["_Z8straightPf"]) == 0  # BRA 0x0 is no loop test


def test_ptxas_counts_belong_to_their_entry_function() -> None:
    counts = sass_report.parse_ptxas(PTXAS)
    assert counts == {"_Z4loopPii": (64, 44, 40), "_Z8straightPf": (8, 0, 0)}


def test_the_default_source_is_this_checkouts_route_cu() -> None:
    assert sass_report.CHECKOUT_SOURCE == REPO / "optimized" / "kernels" / "route.cu"
    assert sass_report.CHECKOUT_SOURCE.is_file()


def test_an_install_from_another_checkout_is_refused(monkeypatch, capsys, tmp_path) -> None:
    # The kernel list and the compile options come from the installed moegate: an install of another tree
    # (a clean-clone CI run's `pip install -e`) would report on that tree's kernels without a word.
    other = tmp_path / "other" / "optimized" / "kernels" / "route.cu"
    monkeypatch.setattr(sass_report, "KERNEL_SOURCE", other)
    assert sass_report.main(["--kernel", "no such kernel"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "other") in err and "pip install" in err
