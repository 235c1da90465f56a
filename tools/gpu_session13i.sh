#!/usr/bin/env bash
# Device session 13, part 9 (for the next session): where the bound plan inside the segment kernel (on top of
# the loads ahead; build/segbound_ahead*.cu) starts to pay, T = 24576 to 262144, Moonlight and GLM-4.5-Air.
# Usage (GPU machine, repo root, build/ carried): OUT=dir bash tools/gpu_session13i.sh
source tools/gpu_env.sh
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant head=build/route_13.cu --variant sb=build/segbound_ahead.cu \
  --variant sb80=build/segbound_ahead80.cu --preset moonlight-16b-a3b --preset glm-4.5-air \
  --rows 24576,32768,49152,98304,131072 > "$OUT/source_probe_13i.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe_13i.log"
