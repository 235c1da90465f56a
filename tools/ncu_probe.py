"""Launch each implementation at T=1 and T=262144 (DeepSeek-V3, bf16) for Nsight Compute to profile.

    ncu --clock-control none -k regex:'route_|deepseek|cake|topk' --section SpeedOfLight ... \
        python tools/ncu_probe.py [impl ...]
Inputs are made before the first profiled launch; each implementation runs once to warm up (compile,
build, load), then once per T.
"""

import sys

import torch

from moegate.properties.impls import load_impl
from moegate.reference import get_preset

names = sys.argv[1:] or ["optimized", "flashinfer-default", "flashinfer-cake", "vllm"]
base = get_preset("deepseek-v3")
inputs = {}
for rows in (1, 262144):
    inputs[rows] = (
        torch.randn(rows, 256, device="cuda").to(torch.bfloat16),
        (torch.randn(256, device="cuda") * 0.05).to(torch.bfloat16),
    )
for name in names:
    impl = load_impl(name)
    config = base if impl.contract is None else impl.contract.project(base)
    impl.fn(*inputs[1], config)
    torch.cuda.synchronize()
    for rows in (1, 262144):
        impl.fn(*inputs[rows], config)
        torch.cuda.synchronize()
    print(name, "done", flush=True)
