"""Route each preset once at T = 262144 (bf16 logits, fp32 bias where the preset has one) for Nsight
Compute to profile moegate's kernel (docs/perf.md, session 8).

    ncu --clock-control none -k regex:route_ --section SpeedOfLight ... \
        python tools/ncu_presets.py [preset ...]

Inputs are made before the first launch; each preset runs once at T = 1 to warm up (compile and load;
that launch is the latency kernel, profiled too), then once at T = 262144.
"""

import sys

import torch

from moegate.optimized import route
from moegate.reference import get_preset, preset_has_bias

presets = sys.argv[1:] or ["deepseek-v3", "qwen3-moe", "glm-4.5-air", "deepseek-v2", "moonlight-16b-a3b"]
for name in presets:
    config = get_preset(name)
    E = config.num_experts
    bias = torch.randn(E, device="cuda") * 0.05 if preset_has_bias(name) else None
    scores = torch.randn(262144, E, device="cuda").to(torch.bfloat16)
    route(scores[:1], bias, config)
    torch.cuda.synchronize()
    route(scores, bias, config)
    torch.cuda.synchronize()
    print(name, "done", flush=True)
