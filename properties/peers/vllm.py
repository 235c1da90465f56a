"""vLLM's fused grouped top-k routing: the CUDA op `grouped_topk` (`csrc/moe/grouped_topk_kernels.cu`, with
`csrc/moe/moeTopKFuncs.cuh`).

Built from vLLM's source distribution (`vllm-0.33.0.tar.gz` is what this adapter was written against;
vLLM's wheel carries no csrc/ and needs its own torch): the kernel file without its torch-stable op binding
(which needs libtorch's C shim), and our shim (`shims/vllm_entry.cu`) that calls vLLM's host launcher
`vllm::moe::invokeNoAuxTc` as the op does for `scoring_func=1` (sigmoid), with the op's PDL rule. vLLM itself
is never imported.

The declared contract is the op's own checks (`grouped_topk` in that file): n_group <= 32, topk <= 32, the
SPEC constraints, scoring sigmoid (1) or none (0: scores already probabilities, which SPEC does not have), a
bias tensor always (float32, bfloat16 or float16, any pairing with the scores), renormalize on or off, r
always multiplied into the output, no shared slots, float32 weights and int32 ids. The op does not check
the scores' layout: that it reads rows at their stride is part of what a run tests.
"""

from __future__ import annotations

import ctypes
from importlib import resources

import torch

from moegate.reference import RoutingConfig

from .build import BuildPlan, SourceLayout, Sources, trim_source
from .contract import Contract
from .kernel import DTYPE_CODES, CompiledPeer

LAYOUT = SourceLayout(
    package="vLLM",
    module=None,  # vLLM's wheel ships no csrc/
    files=("csrc/moe/grouped_topk_kernels.cu", "csrc/moe/moeTopKFuncs.cuh", "PKG-INFO"),
    version_file="PKG-INFO",
    version_pattern=r"^Version:\s*(\S+)",
    archive_pattern=r"vllm-[0-9][^/]*\.tar\.gz",
    hint="Download the source distribution vllm-0.33.0.tar.gz (47 MB) from the package index "
    "(https://pypi.org/simple/vllm/).",
)

OPTIONS = ("-O3", "-std=c++17", "-DNDEBUG", "--expt-relaxed-constexpr", "--expt-extended-lambda")

CONTRACT = Contract(
    name="vllm",
    source="vllm 0.33.0: csrc/moe/grouped_topk_kernels.cu (the grouped_topk op's checks, invokeNoAuxTc), "
    "vllm/model_executor/layers/fused_moe/router/grouped_topk_router.py (fused_grouped_topk)",
    scoring_funcs=("sigmoid",),
    bias="required",
    renormalize=(False, True),
    scaling_on_output=(True,),
    max_shared=0,
    shared_modes=("split",),
    limits=("G <= 32", "K <= 32"),
    min_compute_capability=(8, 0),
    notes=(
        "weights = p * r / (sum(p) + 1e-20) with renormalize, else p * r: r is always multiplied in",
        "scoring_func=0 (no activation: the caller passes probabilities) is not a SPEC scoring function; "
        "vLLM reaches softmax that way (torch.softmax, then the op), which is outside this adapter",
        "the op does not check the scores' layout (row stride)",
    ),
)


class VllmPeer(CompiledPeer):
    """vLLM's grouped_topk CUDA op, sigmoid scoring."""

    name = "vllm"
    description = "vLLM grouped_topk CUDA op (csrc/moe/grouped_topk_kernels.cu), sigmoid scoring"
    contract = CONTRACT
    argtypes = (
        ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
        ctypes.c_longlong, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_longlong,
        ctypes.c_int, ctypes.c_double, ctypes.c_void_p,
    )  # fmt: skip

    def layout(self) -> SourceLayout:
        return LAYOUT

    def plan(self, sources: Sources, arch: str) -> BuildPlan:
        kernel_file = sources.path(LAYOUT.files[0])
        trimmed = trim_source(
            kernel_file.read_text(),
            str(kernel_file),
            remove_lines=(
                "#include <torch/csrc/stable/tensor.h>",
                "#include <torch/headeronly/core/ScalarType.h>",
                '#include "torch_utils.h"',
            ),
            cut_at="std::tuple<torch::stable::Tensor, torch::stable::Tensor> grouped_topk(",
        )
        shim = resources.files("moegate.properties.peers").joinpath("shims/vllm_entry.cu").read_text()
        return BuildPlan(
            name=self.name,
            units=(("shim.cu", ()),),
            generated=(("peer_source.cu", trimmed), ("shim.cu", shim)),
            include_dirs=(sources.path("csrc/moe"),),
            options=OPTIONS,
            arch=arch,
            source_digest=sources.digest(),
            version=f"vllm {sources.version}",
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
            int(config.renormalize),
            config.routed_scaling_factor,
            stream,
        )
