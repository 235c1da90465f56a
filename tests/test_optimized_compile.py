"""CPU tests of the fused kernel's source: route.cu compiles with nvcc for sm_80 and sm_90 with the run-time
options, every name expression of the dispatch table instantiated, warnings as errors.

No GPU needed, only nvcc (skipped with a visible reason where it is absent).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from moegate.optimized import KERNEL_SOURCE, KNOWN_DEFINES, name_expressions, nvcc_options
from moegate.optimized.build import instantiation_unit
from moegate.reference import SPEC_STEPS

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(
    NVCC is None, reason="nvcc is not on PATH (the CUDA toolkit is not installed)"
)


def _translation_unit(tmp_path: Path) -> Path:
    """A .cu file that #includes route.cu and takes the address of every compiled name expression, which
    instantiates each specialization and the generic kernel exactly as NVRTC's name expressions do."""
    path = tmp_path / "instantiate_all.cu"
    path.write_text(instantiation_unit(name_expressions()))
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


# Warp collectives (the intrinsics, and route.cu's helpers that are one): every lane of the mask must reach
# them. A call evaluated only by some lanes, as the right operand of && or ||, or a branch of ?:, waits
# forever for the others, or returns what the standard leaves undefined. Session 18 (docs/perf.md) sent
# one to the GPU, `live && key > __shfl_sync(...)`, and the kernel hung; nvcc said nothing.
WARP_COLLECTIVE = re.compile(
    r"\b(__shfl(?:_up|_down|_xor)?_sync|__ballot_sync|__all_sync|__any_sync|__reduce_\w+_sync|"
    r"__match_\w+_sync|__syncwarp|warp_sum|warp_argmax_index|segment_(?:max|min|count|row_sum))"
    r"\s*(?:<[^<>()]*>)?\s*\("
)
UNIFORM_MARK = "lanes agree:"  # in a comment on the call's line: why its condition is every lane's


def conditional_collectives(source: str) -> list[str]:
    """The lines of CUDA `source` where a warp collective is called inside an expression that only some
    lanes may evaluate: after a && or || or ? at its own or an enclosing parenthesis level of the same
    statement (an if's condition, closed before the call, is not counted). A line with UNIFORM_MARK in a
    comment is exempt."""
    found = []
    lines = source.splitlines()
    code = []
    in_block = False
    for line in lines:  # comments out, line numbers kept
        text = ""
        i = 0
        while i < len(line):
            if in_block:
                end = line.find("*/", i)
                if end < 0:
                    i = len(line)
                    continue
                in_block, i = False, end + 2
            elif line.startswith("/*", i):
                in_block, i = True, i + 2
            elif line.startswith("//", i):
                break
            else:
                text += line[i]
                i += 1
        code.append(text)
    levels = [False]
    for number, text in enumerate(code):
        collectives = {m.start(): m.group(1) for m in WARP_COLLECTIVE.finditer(text)}
        i = 0
        while i < len(text):
            two = text[i : i + 2]
            if i in collectives and any(levels) and UNIFORM_MARK not in lines[number]:
                found.append(f"line {number + 1}: {collectives[i]} in {lines[number].strip()}")
            if two in ("&&", "||"):
                levels[-1] = True
                i += 2
                continue
            ch = text[i]
            if ch == "?":
                levels[-1] = True
            elif ch in "([":
                levels.append(False)
            elif ch in ")]" and len(levels) > 1:
                levels.pop()
            elif ch in ";{},":
                levels[-1] = False
                if ch in ";{}":
                    levels = [False]
            i += 1
    return found


def test_the_collective_check_finds_calls_that_only_some_lanes_make() -> None:
    flagged = [
        "const bool proved = live && least > __shfl_sync(kFullMask, held, b);",
        "x = lane < 8 ? __reduce_max_sync(kFullMask, v) : 0u;",
        "ok = a || f(__ballot_sync(kFullMask, p) != 0u);",
        "y = done ? 0 : segment_max<L>(v);",
    ]
    clean = [
        "const u32 held = __shfl_sync(kFullMask, h, b);\nconst bool proved = live && least > held;",
        "u32 un = __ballot_sync(kFullMask, live && q == 0 && !proved);",
        "if (!(__all_sync(kFullMask, !doubt) && groups_proved)) return false;",
        "if (a && b) {\n  v = __shfl_sync(kFullMask, v, 0);\n}",
        "f(a && b, __shfl_xor_sync(kFullMask, v, 1));",
        "x = t == 0 ? base : __shfl_xor_sync(kFullMask, base, t);  // lanes agree: t is unrolled",
        "// a && __shfl_sync(kFullMask, v, 0) in a comment",
    ]
    for text in flagged:
        assert len(conditional_collectives(text)) == 1, text
    for text in clean:
        assert conditional_collectives(text) == [], text


def test_route_cu_calls_every_warp_collective_in_every_lane() -> None:
    text = KERNEL_SOURCE.read_text()
    assert conditional_collectives(text) == []
    assert text.count(UNIFORM_MARK) <= 2, "each exemption names why its condition is the same in every lane"


SORTING_NETWORK_CHECK = r"""
#include <cstdio>
// Every SortingNetwork<N, M> route.cu can instantiate for a segment lane (N = C experts, M = min(C, K)),
// run on the host over all 2^N inputs of zeros and ones: by the 0-1 principle, a comparator network whose
// first M outputs are the M largest inputs in descending order on every 0-1 input does so on every input.
// The pruned comparators write only what a later comparator or an output reads, so those values are the
// full network's. Prints "N M failures comparators" per pair.
template <int N, int M>
void check() {
  constexpr moegate::SortingNetwork<N, M> net{};
  long failures = 0;
  for (unsigned bits = 0; bits < (1u << N); ++bits) {
    int v[N];
    int ones = 0;
    for (int j = 0; j < N; ++j) {
      v[j] = static_cast<int>((bits >> j) & 1u);
      ones += v[j];
    }
    for (int i = 0; i < net.size; ++i) {
      const int a = net.a[i], b = net.b[i];
      const int first = v[a] > v[b] ? v[a] : v[b], second = v[a] > v[b] ? v[b] : v[a];
      if (net.kind[i] & 1) v[a] = first;
      if (net.kind[i] & 2) v[b] = second;
    }
    for (int m = 0; m < M; ++m) failures += v[m] != (m < ones ? 1 : 0);
  }
  std::printf("%d %d %ld %d\n", N, M, failures, net.size);
}
template <int N, int M = 1>
void check_all_m() {
  check<N, M>();
  if constexpr (M < N) check_all_m<N, M + 1>();
}
template <int N = 1>
void check_all() {
  check_all_m<N>();
  if constexpr (N < 16) check_all<N + 1>();
}
int main() {
  check_all();
  return 0;
}
"""


@needs_nvcc
def test_sorting_networks_put_the_m_largest_first_in_order(tmp_path: Path) -> None:
    """route.cu's SortingNetwork<N, M> (the segment kernel sorts a lane's keys with it) for every N <= 16 and
    M <= N, compiled for the host with nvcc and run on every 0-1 input; and the full network's size for N
    = 8 is that of Knuth's merge exchange (19 comparators), so the pruning and the construction both show."""
    assert NVCC is not None
    source = tmp_path / "sorting_networks.cu"
    source.write_text(f'#include "{KERNEL_SOURCE}"\n' + SORTING_NETWORK_CHECK)
    binary = tmp_path / "sorting_networks"
    cmd = [NVCC, "-std=c++17", "-arch=sm_90", "-Werror", "all-warnings", str(source), "-o", str(binary)]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, f"nvcc failed:\n{built.stdout}\n{built.stderr}"
    ran = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120, check=True)
    results = {
        (int(n), int(m)): (int(f), int(c))
        for n, m, f, c in (line.split() for line in ran.stdout.split("\n") if line)
    }
    assert len(results) == 16 * 17 // 2
    bad = {nm: f for nm, (f, _) in results.items() if f != 0}
    assert not bad, f"(N, M): failures on 0-1 inputs: {bad}"
    assert results[8, 8][1] == 19 and results[4, 4][1] == 5 and results[16, 16][1] == 63
    assert results[8, 1][1] == 7  # the maximum alone: a tree of N - 1 comparators
    assert all(results[n, m][1] <= results[n, n][1] for n, m in results)


def _rule_agrees_under_nvcc(tmp_path: Path, rule: str, cases: list[tuple], python_rule) -> int:
    """Compile one static_assert per case that route.cu's constexpr `rule`(scoring code, *shape) equals
    `python_rule`(scoring, *shape); fail with nvcc's message where one differs. Returns the true cases."""
    from moegate.optimized.dispatch import SCORING_CODES

    lines = [f'#include "{KERNEL_SOURCE}"']
    for scoring, *shape in cases:
        want = "true" if python_rule(scoring, *shape) else "false"
        args = ", ".join(str(v) for v in (SCORING_CODES[scoring], *shape))
        lines.append(f'static_assert(moegate::{rule}({args}) == {want}, "{scoring} {args}");')
    source = tmp_path / f"{rule}.cu"
    source.write_text("\n".join(lines) + "\n")
    assert NVCC is not None
    cmd = [NVCC, "-c", *nvcc_options(()), "-arch=sm_90", str(source), "-o", str(tmp_path / f"{rule}.o")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"nvcc failed:\n{result.stdout}\n{result.stderr}"
    return sum("== true" in line for line in lines)


def _segment_rule_cases(groupings: tuple[tuple[int, int], ...]) -> list[tuple]:
    """(scoring, E, G, Kg, K, lanes) over a grid of shapes, the (G, Kg) `groupings` and every segment size,
    for the segment kernels' rules."""
    from moegate.optimized.dispatch import SEGMENT_LANES

    return [
        (scoring, e, g, kg, k, lanes)
        for scoring in ("sigmoid", "softmax")
        for e in (32, 64, 96, 128, 160, 256, 288)
        for g, kg in groupings
        for k in (1, 2, 6, 8, 9, 16)
        for lanes in SEGMENT_LANES
        if e % g == 0 and k <= kg * (e // g)
    ]


@needs_nvcc
def test_route_cu_segment_bound_plan_rule_is_the_dispatchs(tmp_path: Path) -> None:
    """route.cu's segment_bound_plan_applies (which its segment bound kernels static_assert) against
    dispatch.py's, over a grid of shapes and segment sizes: each case a static_assert compiled by nvcc."""
    from moegate.optimized.dispatch import segment_bound_plan_applies

    cases = _segment_rule_cases(((1, 1), (2, 1), (8, 3)))
    assert len(cases) > 300
    true_cases = _rule_agrees_under_nvcc(
        tmp_path, "segment_bound_plan_applies", cases, segment_bound_plan_applies
    )
    assert true_cases >= 10


@needs_nvcc
def test_route_cu_named_keys_rule_is_the_dispatchs(tmp_path: Path) -> None:
    """route.cu's named_keys_apply (which decides a segment throughput kernel's kNamedKeys) against
    dispatch.py's, over a grid of shapes and segment sizes: each case a static_assert compiled by nvcc."""
    from moegate.optimized.dispatch import named_keys_apply

    cases = _segment_rule_cases(((1, 1), (2, 2), (2, 1), (8, 3)))
    assert len(cases) > 400
    true_cases = _rule_agrees_under_nvcc(tmp_path, "named_keys_apply", cases, named_keys_apply)
    assert true_cases >= 20


@needs_nvcc
def test_route_cu_lazy_named_plan_rule_is_the_dispatchs(tmp_path: Path) -> None:
    """route.cu's lazy_named_plan_applies (which decides a segment bound kernel's kLazyNamed) against
    dispatch.py's, over a grid of shapes, segment sizes and scores dtypes: each case a static_assert compiled
    by nvcc."""
    from moegate.optimized.dispatch import SCORE_DTYPE_CODES, lazy_named_plan_applies

    dtype_of = {code: dtype for dtype, code in SCORE_DTYPE_CODES.items()}
    cases = [
        (*case, code) for case in _segment_rule_cases(((1, 1), (2, 2), (2, 1), (8, 3))) for code in dtype_of
    ]
    cases += [  # K on either side of the 16-bit limit of 4
        (scoring, 128, 1, 1, k, 16, code)
        for scoring in ("sigmoid", "softmax")
        for k in (3, 4, 5)
        for code in dtype_of
    ]
    assert len(cases) > 600

    def rule(scoring, e, g, kg, k, lanes, code):
        return lazy_named_plan_applies(scoring, e, g, kg, k, lanes, dtype_of[code])

    true_cases = _rule_agrees_under_nvcc(tmp_path, "lazy_named_plan_applies", cases, rule)
    assert true_cases >= 20


@needs_nvcc
def test_route_cu_bound_plan_rule_is_the_dispatchs(tmp_path: Path) -> None:
    """route.cu's bound_plan_applies (which its bound kernels static_assert) against dispatch.py's, over a
    grid of shapes: each case a static_assert in a translation unit compiled by nvcc."""
    from moegate.optimized.dispatch import bound_plan_applies

    cases = []
    for scoring in ("sigmoid", "softmax"):
        for e in (32, 64, 80, 96, 128, 160, 256, 288, 384, 512):
            for g, kg in ((1, 1), (2, 1), (4, 2), (8, 1), (8, 4), (8, 8), (16, 3)):
                if e % g or (g > 1 and (e // g) % max(1, e // 32)):
                    continue  # not a warp-kernel shape (groups on whole lanes)
                for k in (1, 2, 6, 8, 9, 16, 31):
                    if k <= kg * (e // g):
                        cases.append((scoring, e, g, kg, k))
    assert len(cases) > 100
    assert _rule_agrees_under_nvcc(tmp_path, "bound_plan_applies", cases, bound_plan_applies) >= 10
