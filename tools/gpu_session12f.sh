#!/usr/bin/env bash
# Device session 12, part 6: the tree to be committed (the bound plan as its own kernel): the whole GPU
# suite, compute-sanitizer over every kernel in every plan, how often the bound plan's rows fall back, and
# Nsight Compute on DeepSeek-V3's bound kernel at T = 262144. Logs under $OUT.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session12f.sh
source tools/gpu_env.sh
gpu_suite 330
gpu_sanitize
SECONDS=0
timeout 60 python3 tools/bound_probe.py > "$OUT/bound_probe.log" 2>&1
echo "bound_probe exit $? in ${SECONDS}s"; tail -4 "$OUT/bound_probe.log" | cut -c1-150
SECONDS=0
timeout 120 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_warp --launch-skip 1 --launch-count 1 \
  --section SpeedOfLight --section SchedulerStats --section WarpStateStats --section Occupancy --section LaunchStats \
  --metrics smsp__inst_executed.sum python3 tools/ncu_presets.py deepseek-v3 > "$OUT/ncu.log" 2>&1
echo "ncu exit $? in ${SECONDS}s"
grep -E "route_|Duration|DRAM Throughput|No Eligible|Achieved Occupancy|Registers Per|inst_executed|Warp Cycles Per Issued|Issued Warp" "$OUT/ncu.log" | grep -v "^==PROF" | cut -c1-110
