#!/usr/bin/env bash
# Device session 11, part 7: Nsight Compute on the warp kernels as committed (2dc08e4's throughput kernels,
# unchanged since) at T = 262144, DeepSeek-V3 and Kimi-K2: the counters behind target 2's miss.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session11g.sh
source tools/gpu_env.sh
SECONDS=0
timeout 200 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_warp --section SpeedOfLight \
  --section SchedulerStats --section WarpStateStats --section Occupancy --section LaunchStats \
  --metrics smsp__inst_executed.sum python3 tools/ncu_presets.py deepseek-v3 kimi-k2 > "$OUT/ncu.log" 2>&1
echo "ncu exit $? in ${SECONDS}s"
grep -E "route_|Duration|DRAM Throughput|No Eligible|Achieved Occupancy|Registers Per|inst_executed|Warp Cycles Per Issued|SM Frequency" "$OUT/ncu.log" | grep -v "^==PROF" | cut -c1-110
