#!/usr/bin/env bash
# Device session 15, part 1: the grid capped at the kernel's resident blocks where they leave a partial wave
# (dispatch.grid_cap_blocks_per_sm): its GPU tests and the launcher's, the dispatch's geometry against the
# old cap of 8 blocks per SM and the segment bound plan's break-even under it (tools/grid_probe.py), and
# the host path's time on each CPU (tools/host_cpu_probe.py).
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session15a.sh
source tools/gpu_env.sh
gpu_suite 200 cap tests/test_optimized_gpu.py tests/test_native_gpu.py tests/test_native_launcher.py \
  -k "capped or native or launcher or switch"
SECONDS=0
timeout 240 python3 tools/grid_probe.py --preset glm-4.5-air --preset moonlight-16b-a3b \
  --preset qwen3-next-80b-a3b --rows 16384,32768,49152,65536,262144 --caps 0,8 --rounds 2 \
  > "$OUT/grid_probe.log" 2>&1
echo "grid_probe exit $? in ${SECONDS}s"; cat "$OUT/grid_probe.log"
SECONDS=0
timeout 90 python3 tools/host_cpu_probe.py --rounds 2 > "$OUT/host_cpu_probe.log" 2>&1
echo "host_cpu_probe exit $? in ${SECONDS}s"; cat "$OUT/host_cpu_probe.log"
