#!/usr/bin/env bash
# Device session 14, part 1: the launcher's allocations and stream from C++ (tools/launcher_probe.py, session
# 13's launcher.cpp kept as build/launcher_13.cpp), the segment kernel's bound plan (its GPU tests), and the
# grid's cap against the kernels' resident blocks (tools/grid_probe.py).
# Usage (GPU machine, repo root, build/ carried): OUT=dir bash tools/gpu_session14a.sh
source tools/gpu_env.sh
SECONDS=0
timeout 150 python3 tools/launcher_probe.py --rounds 7 head=build/launcher_13.cpp new=installed \
  > "$OUT/launcher_probe.log" 2>&1
echo "launcher_probe exit $? in ${SECONDS}s"; cat "$OUT/launcher_probe.log" | grep -v "^\s*$" | tail -8
gpu_suite 200 bound tests/test_optimized_gpu.py tests/test_native_gpu.py \
  -k "bound or plans_agree or switch or segment or native or launcher"
SECONDS=0
timeout 200 python3 tools/grid_probe.py --preset glm-4.5-air --preset moonlight-16b-a3b \
  --preset qwen3-next-80b-a3b --preset deepseek-v3 --preset kimi-k2 --rows 16384,65536,262144 \
  --caps 3,4,6,8 --rounds 2 > "$OUT/grid_probe.log" 2>&1
echo "grid_probe exit $? in ${SECONDS}s"; cat "$OUT/grid_probe.log"
