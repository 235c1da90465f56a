#!/usr/bin/env bash
# Device session 13, part 7: Nsight Compute on DeepSeek-V2's segment kernel at T = 262144 (the worst preset of
# target 3 per byte): instructions, issue rate, occupancy and the warp stall reasons, for the next session.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session13g.sh
source tools/gpu_env.sh
SECONDS=0
timeout 120 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_segment --launch-count 1 \
  --section SpeedOfLight --section SchedulerStats --section WarpStateStats --section Occupancy \
  --section LaunchStats --metrics smsp__inst_executed.sum python3 tools/ncu_presets.py deepseek-v2 \
  > "$OUT/ncu_deepseek-v2.log" 2>&1
echo "ncu exit $? in ${SECONDS}s"
grep -v "^==PROF==" "$OUT/ncu_deepseek-v2.log" | grep -E "route_|Duration|DRAM Thr|No Eligible|Occupancy|Registers|inst_exec|Issued Warp|Stall|Warp Cycles|Spill|Local" | cut -c1-110
