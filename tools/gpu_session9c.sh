#!/usr/bin/env bash
# Device session 9, part 3: the latency kernel with and without its minimum of one block per SM
# (build/route_nominb.cu, carried), at T = 1 and 256 on every warp-kernel latency row, with the clock stamps.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session9c.sh
source tools/gpu_env.sh
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant new=optimized/kernels/route.cu --variant nominb=build/route_nominb.cu \
  --preset deepseek-v3 --preset deepseek-v2-lite --preset qwen3-moe --preset gpt-oss-120b --preset kimi-k2 \
  --preset moonlight-16b-a3b --preset deepseek-v2 --preset glm-4.5 --preset qwen3-next-80b-a3b --rows 1,256 --rounds 3 --stamps \
  > "$OUT/source_probe.log" 2>&1; echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe.log"
