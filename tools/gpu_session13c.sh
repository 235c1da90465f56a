#!/bin/bash
# Session 13, step c: each row's logits requested one row ahead, in the segment kernel (seg) and also in the
# warp kernel's throughput plan (all), against the committed kernels.
source tools/gpu_env.sh
SECONDS=0
timeout 400 python3 tools/source_probe.py --variant head=build/route_head.cu --variant seg=build/seg_ahead.cu \
  --variant all=build/all_ahead.cu --preset qwen3-moe --preset deepseek-v2 --preset deepseek-v2-lite \
  --preset gpt-oss-120b --preset glm-4.5-air --preset moonlight-16b-a3b --preset llama-4-maverick \
  --preset qwen3-next-80b-a3b --preset kimi-k2 --rows 4096,65536,262144 > "$OUT/source_probe_13c.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe_13c.log"
