#!/usr/bin/env bash
# Device session 13, part 8 (for the next session): the bound plan inside the segment kernel (session 13's
# try, build/seg_bound_try.cu) on top of the committed loads ahead, as built and held to 3 blocks per SM,
# against the committed kernel, for Moonlight and GLM-4.5-Air.
# Usage (GPU machine, repo root, build/ carried): OUT=dir bash tools/gpu_session13h.sh
source tools/gpu_env.sh
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant head=build/route_13.cu --variant sb=build/segbound_ahead.cu \
  --variant sb80=build/segbound_ahead80.cu --preset moonlight-16b-a3b --preset glm-4.5-air \
  --rows 4096,16384,65536,262144 > "$OUT/source_probe_13h.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe_13h.log"
