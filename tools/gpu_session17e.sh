#!/usr/bin/env bash
# Device session 17, part 5: the named keys with the lane's first expert index laundered once a row (an empty
# asm volatile: the compiler then folds e = first + j into the naming's add instead of holding the C indices
# in registers across the row loop; la2), and with the last winner's key taken from its round (uniform in the
# segment) instead of a shuffle and round k's key kept by a lane index read again each row (la3); against
# part 4's curla (each row requested ahead at 10 experts a lane). tools/source_probe.py, bitwise checked.
# Usage (GPU machine, repo root; .probe/s17 carried): OUT=dir bash tools/gpu_session17e.sh
source tools/gpu_env.sh
SECONDS=0
timeout 400 python3 tools/source_probe.py --variant curla=.probe/s17/route_curla.cu \
  --variant la2=.probe/s17/route_la2.cu --variant la3=.probe/s17/route_la3.cu --preset deepseek-v2 \
  --preset qwen3-moe --preset moonlight-16b-a3b --preset glm-4.5-air --preset gpt-oss-120b \
  --preset deepseek-v2-lite --rows 4096,65536,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "kernels \[" "$OUT/source_probe.log"
