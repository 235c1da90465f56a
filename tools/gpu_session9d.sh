#!/usr/bin/env bash
# Device session 9, part 4: the rank count's ties by one match over the lanes (the working tree) against
# a per-position threshold (build/route_nomatch.cu, carried), at T = 1 and 256 on the latency rows.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session9d.sh
source tools/gpu_env.sh
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant match=optimized/kernels/route.cu --variant nomatch=build/route_nomatch.cu \
  --preset deepseek-v3 --preset deepseek-v2-lite --preset qwen3-moe --preset gpt-oss-120b --preset kimi-k2 \
  --preset moonlight-16b-a3b --preset deepseek-v2 --preset glm-4.5 --preset glm-4.5-air --rows 1,256 --rounds 3 \
  > "$OUT/source_probe.log" 2>&1; echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe.log"
