"""FlashInfer's fused DeepSeek routing (`flashinfer.fused_moe.fused_topk_deepseek`), both backends.

- `flashinfer-default`: the TensorRT-LLM `noaux_tc` kernel (`deepseek_v3_topk_kernel`).
- `flashinfer-cake`: the "cake" kernels, the same file built with `-DFLASHINFER_CAKE_BACKEND
  --use_fast_math`, as FlashInfer's JIT spec (`flashinfer/jit/dsv3_optimizations.py`,
  `gen_dsv3_fused_routing_module`) builds it.

Built from the sources the `flashinfer-python` wheel ships (0.7.2.post1 is what this adapter was written
against): `flashinfer/data/csrc/fused_moe/noAuxTcKernels.cu` without its TVM-FFI binding, the headers it
includes, and the `.cpp`/`.cu` files the JIT spec lists; our shim (`shims/flashinfer_entry.cu`) calls
FlashInfer's host launcher `invokeNoAuxTc`, the function its binding calls. FlashInfer's Python runtime is
never imported.

The declared contract is the public API's docstring (`fused_topk_deepseek`): sigmoid only, a bias always
(in the scores' dtype), renormalize always, r applied on the output, no shared slots, weights written in the
scores' dtype, contiguous tensors, and its per-branch limits. One sentence of that docstring is left out on
purpose: "topk_group * n_group >= topk" constrains groups where experts are meant (SPEC's K <= Kg * E / G);
it would exclude every single-group model (Kimi-K2, Moonlight, GLM-4.5), for which the kernel has a
384-expert path. Whether a launcher enforces it is then a finding, not an assumption.
"""

from __future__ import annotations

import ctypes
from importlib import resources

import torch

from moegate.reference import RoutingConfig

from .build import BuildPlan, SourceLayout, Sources, cuda_include_dirs, find_nvcc, trim_source
from .contract import Contract
from .kernel import DTYPE_CODES, CompiledPeer

_DATA = "flashinfer/data"
_NV = f"{_DATA}/csrc/nv_internal"

# The files a build reads (nvcc -M of the shim and the JIT spec's sources, FlashInfer 0.7.2.post1).
LAYOUT = SourceLayout(
    package="FlashInfer",
    module="flashinfer",
    files=(
        f"{_DATA}/csrc/fused_moe/noAuxTcKernels.cu",
        f"{_DATA}/csrc/fused_moe/moeTopKFuncs.cuh",
        f"{_DATA}/csrc/fused_moe/cake_deepseek_fused_routing_launch.cuh",
        f"{_DATA}/csrc/fused_moe/cake_deepseek_fused_routing/cake_deepseek_fused_routing_kernels.cu",
        f"{_NV}/cpp/common/envUtils.cpp",
        f"{_NV}/cpp/common/logger.cpp",
        f"{_NV}/cpp/common/stringUtils.cpp",
        f"{_NV}/cpp/common/tllmException.cpp",
        f"{_NV}/cpp/common/memoryUtils.cu",
        f"{_NV}/include/tensorrt_llm/common/assert.h",
        f"{_NV}/include/tensorrt_llm/common/cudaBf16Wrapper.h",
        f"{_NV}/include/tensorrt_llm/common/cudaFp8Utils.h",
        f"{_NV}/include/tensorrt_llm/common/cudaUtils.h",
        f"{_NV}/include/tensorrt_llm/common/logger.h",
        f"{_NV}/include/tensorrt_llm/common/quantization.h",
        f"{_NV}/include/tensorrt_llm/common/stringUtils.h",
        f"{_NV}/include/tensorrt_llm/common/tllmException.h",
        f"{_NV}/tensorrt_llm/common/cudaBf16Fallbacks.cuh",
        f"{_NV}/tensorrt_llm/common/cudaDriverWrapper.h",
        f"{_NV}/tensorrt_llm/common/cudaTypeUtils.cuh",
        f"{_NV}/tensorrt_llm/common/envUtils.h",
        f"{_NV}/tensorrt_llm/common/memoryUtils.h",
        f"{_DATA}/include/flashinfer/arch_condition.h",
        f"{_DATA}/include/flashinfer/exception.h",
        f"{_DATA}/include/flashinfer/trtllm/fused_moe/noAuxTcKernels.h",
        "flashinfer/_build_meta.py",
    ),
    version_file="flashinfer/_build_meta.py",
    version_pattern=r'^__version__\s*=\s*"([^"]+)"',
    archive_pattern=r"flashinfer_python-.*\.whl",
    hint="Download the wheel with `pip download --no-deps flashinfer-python==0.7.2.post1` (62 MB).",
)

# The JIT spec's sources besides the kernel file (compiled as they are).
_SUPPORT_UNITS = (
    f"{_NV}/cpp/common/envUtils.cpp",
    f"{_NV}/cpp/common/logger.cpp",
    f"{_NV}/cpp/common/stringUtils.cpp",
    f"{_NV}/cpp/common/tllmException.cpp",
    f"{_NV}/cpp/common/memoryUtils.cu",
)
# Options: what FlashInfer 0.7.2's build of this module amounts to for one architecture (-O3, C++17,
# BF16 instantiations, relaxed constexpr), plus -include cmath, which its headers assume.
OPTIONS = ("-O3", "-std=c++17", "-DNDEBUG", "-DENABLE_BF16", "-include", "cmath", "--expt-relaxed-constexpr")
CAKE_OPTIONS = ("-DFLASHINFER_CAKE_BACKEND", "--use_fast_math")  # the JIT spec's extra_cuda_cflags for cake
# Headers FlashInfer's common headers include for type names only (cuBLAS, cuRAND).
_TOOLKIT_HEADERS = ("cublas_v2.h", "cublasLt.h", "curand_kernel.h")

_SOURCE = (
    "flashinfer 0.7.2.post1: flashinfer/fused_moe/fused_routing_dsv3.py (fused_topk_deepseek's docstring "
    "and _check_dsv3_fused_routing_supported), flashinfer/data/csrc/fused_moe/noAuxTcKernels.cu "
    "(invokeNoAuxTc, the NoAuxTc binding's checks)"
)

_COMMON = {
    "scoring_funcs": ("sigmoid",),
    "bias": "required",
    "renormalize": (True,),
    "scaling_on_output": (True,),
    "max_shared": 0,
    "shared_modes": ("split",),
    "bias_dtypes": "scores",
    "weights": "scores",
    "row_stride": "contiguous",
}

DEFAULT_CONTRACT = Contract(
    name="flashinfer-default",
    source=_SOURCE,
    limits=(
        "G <= 32",
        "K <= 8",
        "G == 1 or n <= 32",
        "G == 1 or n * Kg <= 128",
        "G > 1 or E <= 384",
    ),
    min_compute_capability=(8, 9),
    notes=(
        "weights = p * r / (sum(p) + 1e-20), always (renormalize and r on the output are fixed); "
        "written in the scores' dtype",
        "the docstring also asks topk_group * n_group >= topk, which would exclude single-group models; "
        "left out of this contract (module docstring): SPEC's K <= Kg * E / G applies",
        "launched with programmatic dependent launch, as the API's default launch_with_pdl=True",
    ),
    **_COMMON,
)

CAKE_CONTRACT = Contract(
    name="flashinfer-cake",
    source=_SOURCE + "; _is_cake_dsv3_fused_routing_supported (the cake backend's executable contract)",
    limits=(
        "K <= 8",
        "G > 1 or E <= 384",
        "G == 1 or G <= 8",
        "G == 1 or Kg <= 4",
        "G == 1 or E <= 256",
        "G == 1 or 2 <= n <= 32",
        "G == 1 or n * Kg <= 128",
    ),
    min_rows=1,
    min_compute_capability=(9, 0),
    notes=(
        "FlashInfer's Python API offers cake only on SM100/SM103; moegate builds the same kernels for the "
        "GPU at hand (sm_90a on Hopper), where they compile and run",
        "built with --use_fast_math (tanh.approx sigmoid, approximate reciprocals), as FlashInfer builds it",
        "the docstring's topk_group * n_group >= topk is left out, as for the default backend",
    ),
    **_COMMON,
)


class FlashInferPeer(CompiledPeer):
    """One FlashInfer backend; `cake` selects the cake build."""

    argtypes = (
        ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
        ctypes.c_longlong, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_longlong,
        ctypes.c_double, ctypes.c_int, ctypes.c_void_p,
    )  # fmt: skip

    def __init__(self, cake: bool) -> None:
        super().__init__()
        self.cake = cake
        self.name = "flashinfer-cake" if cake else "flashinfer-default"
        self.contract = CAKE_CONTRACT if cake else DEFAULT_CONTRACT
        self.description = (
            "FlashInfer fused_topk_deepseek, backend 'cake' (fast-math kernels)"
            if cake
            else "FlashInfer fused_topk_deepseek, backend 'default' (TensorRT-LLM noaux_tc kernel)"
        )

    def layout(self) -> SourceLayout:
        return LAYOUT

    def plan(self, sources: Sources, arch: str) -> BuildPlan:
        kernel_file = sources.path(LAYOUT.files[0])
        trimmed = trim_source(
            kernel_file.read_text(),
            str(kernel_file),
            remove_lines=('#include "tvm_ffi_utils.h"', "using tvm::ffi::Optional;"),
            cut_at="namespace flashinfer::trtllm_dsv3_fused_routing {",
        )
        shim = resources.files("moegate.properties.peers").joinpath("shims/flashinfer_entry.cu").read_text()
        nv = sources.path(_NV)
        includes = (
            sources.path(f"{_DATA}/csrc/fused_moe"),
            sources.path(f"{_DATA}/include"),
            sources.path(f"{_DATA}/csrc"),
            nv,
            nv / "include",
            *cuda_include_dirs(find_nvcc(), _TOOLKIT_HEADERS),
        )
        extra = CAKE_OPTIONS if self.cake else ()
        return BuildPlan(
            name=self.name,
            units=(("shim.cu", extra), *((str(sources.path(u)), ()) for u in _SUPPORT_UNITS)),
            generated=(("peer_source.cu", trimmed), ("shim.cu", shim)),
            include_dirs=includes,
            options=OPTIONS,
            arch=arch,
            source_digest=sources.digest(),
            version=f"flashinfer {sources.version}",
        )

    def launch(
        self,
        lib: ctypes.CDLL,
        scores: torch.Tensor,
        bias: torch.Tensor,
        config: RoutingConfig,
        values: torch.Tensor,
        ids: torch.Tensor,
        stream: int,
    ) -> int:
        return lib.moegate_peer_route(
            DTYPE_CODES[scores.dtype],
            DTYPE_CODES[bias.dtype],
            scores.data_ptr(),
            bias.data_ptr(),
            values.data_ptr(),
            ids.data_ptr(),
            scores.shape[0],
            config.num_experts,
            config.num_expert_group,
            config.topk_group,
            config.topk,
            config.routed_scaling_factor,
            1,  # launch_with_pdl: the API's default
            stream,
        )
