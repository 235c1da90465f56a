#!/usr/bin/env bash
# Device session 11, part 6: Nsight Compute on the signed-off segment kernels at T = 262144 (Qwen3-MoE,
# GLM-4.5-Air, Moonlight, DeepSeek-V2): instructions, issue rate, occupancy, after the sorted rounds.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session11f.sh
source tools/gpu_env.sh
SECONDS=0
timeout 240 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_segment --section SpeedOfLight \
  --section SchedulerStats --section WarpStateStats --section Occupancy --section LaunchStats \
  --metrics smsp__inst_executed.sum,smsp__sass_inst_executed_op_branch.sum \
  python3 tools/ncu_presets.py qwen3-moe glm-4.5-air moonlight-16b-a3b deepseek-v2 > "$OUT/ncu.log" 2>&1
echo "ncu exit $? in ${SECONDS}s"
grep -E "route_|Duration|DRAM Throughput|Issue Slots Busy|No Eligible|Achieved Occupancy|Registers Per|inst_executed|Warp Cycles Per Issued|SM Frequency" "$OUT/ncu.log" | grep -v "^==PROF" | cut -c1-110
