#!/usr/bin/env bash
# Device session 10, part 3: the committed route.cu (build/route_head.cu), part 2's tree (build/route_v1.cu:
# every loop compiled per layout) and the working tree (the latency kernel keeps one loop; Qwen3-Next's
# throughput kernel held to three blocks per SM) on every preset at T = 1, 256 and 262144. Logs under $OUT.
# Usage (GPU machine, repo root, both build files carried): OUT=dir bash tools/gpu_session10c.sh
source tools/gpu_env.sh
SECONDS=0
timeout 240 python3 tools/source_probe.py --variant head=build/route_head.cu --variant v1=build/route_v1.cu \
  --variant tree=optimized/kernels/route.cu --preset deepseek-v3 --preset kimi-k2 --preset moonlight-16b-a3b \
  --preset glm-4.5 --preset glm-4.5-air --preset qwen3-moe --preset qwen3-next-80b-a3b --preset deepseek-v2 \
  --preset deepseek-v2-lite --preset gpt-oss-120b --preset llama-4-maverick --preset mixtral-8x7b \
  --rows 1,256,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1; echo "source_probe exit $? in ${SECONDS}s"
cat "$OUT/source_probe.log"
