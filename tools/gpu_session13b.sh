#!/bin/bash
# Session 13, step b: the bound plan inside the segment kernel (GLM-4.5-Air, Moonlight) against the committed
# kernel: as built (no register cap) and held to 3 blocks per SM (80 registers).
source tools/gpu_env.sh
SECONDS=0
timeout 300 python3 tools/source_probe.py --variant head=build/route_head.cu --variant seg=build/seg_a.cu \
  --variant seg80=build/seg_mb3.cu --preset glm-4.5-air --preset moonlight-16b-a3b \
  --rows 4096,16384,65536,262144 > "$OUT/source_probe_13b.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe_13b.log"
