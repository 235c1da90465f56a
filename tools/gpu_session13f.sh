#!/usr/bin/env bash
# Device session 13, part 6: compute-sanitizer over every kernel in every plan (part 5's run passed its old
# 130 s limit), `moegate bench` on every preset against the peers with the host path (.peers/* carried), and
# Nsight Compute on the two changed throughput kernels at T = 262144 (Qwen3-Next's warp kernel,
# Qwen3-MoE's segment kernel). Logs, the JSON and the PNG under $OUT.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session13f.sh
source tools/gpu_env.sh
gpu_sanitize
gpu_bench 300
for preset in qwen3-next-80b-a3b qwen3-moe; do
  SECONDS=0
  timeout 90 /usr/local/cuda/bin/ncu --clock-control none -k regex:"route_(warp|segment)" --launch-skip 1 \
    --launch-count 1 --section SpeedOfLight --section SchedulerStats --section Occupancy --section LaunchStats \
    --metrics smsp__inst_executed.sum python3 tools/ncu_presets.py $preset > "$OUT/ncu_$preset.log" 2>&1
  echo "ncu $preset exit $? in ${SECONDS}s"
  grep -E "route_|Duration|DRAM Throughput|No Eligible|Achieved Occupancy|Registers Per|inst_executed|Issued Warp" \
    "$OUT/ncu_$preset.log" | grep -v "^==PROF" | cut -c1-110
done
