"""Registers, spills and SASS instruction counts of the dispatch table's kernels, without a GPU.

    python tools/sass_report.py [--source route.cu] [--against other_route.cu] [--kernel REGEX] [--arch 90]

Compiles `--source` (default: this checkout's optimized/kernels/route.cu; the installed moegate must be this
checkout, whose dispatch table names the kernels) with nvcc and the run-time options for sm_<arch>,
every name expression of the dispatch table (or those matching --kernel) instantiated, reads ptxas's
registers and spill bytes per kernel and cuobjdump's SASS, and prints one line per kernel: registers, spill
stores/loads in bytes, SASS instructions in all, and the longest loop (the instructions between a backward
branch and its target: the row loop of a kernel whose warps loop over rows). With --against, the same for
that source beside it, and whether each kernel's SASS is the same (addresses aside): what a claim like
"the other kernels compile to the same SASS" rests on (docs/perf.md). A kernel's instruction count is not
its time; count, predict, then measure on the GPU.

Needs nvcc and cuobjdump on PATH (or $CUOBJDUMP): the CUDA toolkit, or `pip download
nvidia-cuda-cuobjdump` unpacked.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from moegate.optimized import KERNEL_SOURCE, name_expressions, nvcc_options
from moegate.optimized.build import instantiation_unit

# This checkout's route.cu, the default --source. Not moegate's KERNEL_SOURCE: that is the installed package's
# tree, which a clean-clone CI run or another checkout's `pip install -e` may have pointed elsewhere (session
# 19 compared another checkout's route.cu that way, unnoticed); main() refuses such an install.
CHECKOUT_SOURCE = Path(__file__).resolve().parent.parent / "optimized" / "kernels" / "route.cu"

INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);")
BRANCH = re.compile(r"\bBRA(?:\.[A-Z.]+)?\s+(?:[!A-Z0-9]+,\s*)?(0x[0-9a-f]+)")


@dataclass(frozen=True)
class KernelSass:
    """One kernel's counts: registers and spill bytes from ptxas, instructions from its SASS."""

    registers: int
    spill_stores: int
    spill_loads: int
    instructions: int
    longest_loop: int
    text: str  # the SASS with addresses and encodings removed, for comparison


def split_functions(sass: str) -> dict[str, list[tuple[int, str]]]:
    """cuobjdump -sass output -> {mangled function name: [(address, instruction text)]}, without the
    padding after a function's code (the branch to itself and the NOPs)."""
    functions: dict[str, list[tuple[int, str]]] = {}
    current: list[tuple[int, str]] | None = None
    for line in sass.splitlines():
        name = re.search(r"Function : (\S+)", line)
        if name:
            current = functions.setdefault(name.group(1), [])
            continue
        match = INSTRUCTION.search(line)
        if match and current is not None:
            current.append((int(match.group(1), 16), " ".join(match.group(2).split())))
    for instructions in functions.values():
        while instructions and (
            instructions[-1][1] == "NOP" or instructions[-1][1] == f"BRA {instructions[-1][0]:#x}"
        ):
            instructions.pop()
    return functions


def longest_loop(instructions: list[tuple[int, str]]) -> int:
    """The most instructions between a conditional backward branch (`@P0 BRA`: a loop's test) and its
    target, both included; 0 without one. The unconditional branches back from the divergence fallbacks
    (BRA.DIV's code, at a function's end) are no loops. Instructions are 16 bytes on sm_70 and later."""
    longest = 0
    for address, text in instructions:
        match = BRANCH.search(text)
        if match and text.startswith("@") and ".DIV" not in text:
            target = int(match.group(1), 16)
            if target <= address:
                longest = max(longest, (address - target) // 16 + 1)
    return longest


def parse_ptxas(log: str) -> dict[str, tuple[int, int, int]]:
    """nvcc -Xptxas -v output -> {mangled name: (registers, spill store bytes, spill load bytes)}."""
    found: dict[str, tuple[int, int, int]] = {}
    current = None
    spills = (0, 0)
    for line in log.splitlines():
        entry = re.search(r"Compiling entry function '(\S+)'", line)
        if entry:
            current, spills = entry.group(1), (0, 0)
            continue
        spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if spill and current is not None and current not in found:
            spills = (int(spill.group(1)), int(spill.group(2)))
        used = re.search(r"Used (\d+) registers", line)
        if used and current is not None and current not in found:
            found[current] = (int(used.group(1)), *spills)
    return found


def compile_report(source: Path, names: list[str], arch: int) -> dict[str, KernelSass]:
    """{mangled name: KernelSass} for `names` compiled from `source` for sm_<arch>."""
    nvcc = shutil.which("nvcc")
    cuobjdump = os.environ.get("CUOBJDUMP") or shutil.which("cuobjdump")
    if nvcc is None or cuobjdump is None:
        raise SystemExit("sass_report needs nvcc and cuobjdump on PATH (or $CUOBJDUMP)")
    with tempfile.TemporaryDirectory() as tmp:
        unit = Path(tmp) / "unit.cu"
        unit.write_text(instantiation_unit(names, source))
        cubin = Path(tmp) / "unit.cubin"
        cmd = [
            nvcc,
            "-cubin",
            f"-arch=sm_{arch}",
            *nvcc_options(),
            "-Xptxas",
            "-v",
            str(unit),
            "-o",
            str(cubin),
        ]
        built = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if built.returncode != 0:
            raise SystemExit(f"nvcc failed on {source}:\n{built.stderr[-2000:]}")
        counts = parse_ptxas(built.stderr + built.stdout)
        sass = subprocess.run(
            [cuobjdump, "-sass", str(cubin)], capture_output=True, text=True, check=True
        ).stdout
    report = {}
    for name, instructions in split_functions(sass).items():
        registers, stores, loads = counts.get(name, (0, 0, 0))
        report[name] = KernelSass(
            registers=registers,
            spill_stores=stores,
            spill_loads=loads,
            instructions=len(instructions),
            longest_loop=longest_loop(instructions),
            text="\n".join(text for _, text in instructions),
        )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=CHECKOUT_SOURCE)
    parser.add_argument("--against", type=Path, default=None)
    parser.add_argument("--kernel", default=None, help="a regex on the name expressions")
    parser.add_argument("--arch", type=int, default=90)
    args = parser.parse_args(argv)
    if Path(KERNEL_SOURCE).resolve() != CHECKOUT_SOURCE:
        # The kernel list (the dispatch table) and the compile options come from the installed package.
        print(
            f"sass_report: moegate is installed from {Path(KERNEL_SOURCE).resolve().parents[2]}, not this "
            f"checkout ({CHECKOUT_SOURCE.parents[2]}): run `pip install --no-deps -e .` here first",
            file=sys.stderr,
        )
        return 2
    names = [n for n in name_expressions() if args.kernel is None or re.search(args.kernel, n)]
    if not names:
        raise SystemExit(f"no name expression matches {args.kernel!r}")
    mine = compile_report(args.source, names, args.arch)
    other = compile_report(args.against, names, args.arch) if args.against else None
    same = 0
    for mangled in sorted(mine):
        k = mine[mangled]
        short = re.sub(r"^_ZN7moegate\d+", "", mangled).split("EEEv")[0]  # route_warp_kernelILi1ELi0...
        line = (
            f"{short:60s} regs {k.registers:3d} spill {k.spill_stores:3d}/{k.spill_loads:3d} "
            f"instr {k.instructions:5d} loop {k.longest_loop:5d}"
        )
        if other is not None:
            o = other.get(mangled)
            if o is None:
                line += "  | not in --against"
            elif o.text == k.text:
                line += "  | same SASS"
                same += 1
            else:
                line += (
                    f"  | against: regs {o.registers:3d} spill {o.spill_stores:3d}/{o.spill_loads:3d} "
                    f"instr {o.instructions:5d} loop {o.longest_loop:5d}"
                )
        print(line)
    if other is not None:
        print(f"{same} of {len(mine)} kernels compile to the same SASS as {args.against}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
