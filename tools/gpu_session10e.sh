#!/usr/bin/env bash
# Device session 10, part 5: Nsight Compute on moegate's kernel at T = 262144 (DeepSeek-V3, Kimi-K2,
# Moonlight) after part 4's sign-off: where the prefill time goes now (docs/perf.md). Logs under $OUT.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session10e.sh
source tools/gpu_env.sh
SECONDS=0
timeout 240 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_ --section SpeedOfLight \
  --section SchedulerStats --section WarpStateStats --section Occupancy --section LaunchStats \
  --metrics smsp__inst_executed.sum,smsp__inst_executed_pipe_lsu.sum,smsp__inst_executed_op_shared_ld.sum \
  python3 tools/ncu_presets.py deepseek-v3 kimi-k2 moonlight-16b-a3b > "$OUT/ncu.log" 2>&1
echo "ncu exit $? in ${SECONDS}s"; grep -E "route_|Duration|SM Throughput|DRAM Throughput|Issue Slots Busy|No Eligible|Achieved Occupancy|Registers Per|inst_executed|Warp Cycles Per Issued|SM Frequency" "$OUT/ncu.log" | head -120
