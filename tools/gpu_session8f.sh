#!/usr/bin/env bash
# Device session 8, part 6: Nsight Compute on moegate's kernel at T = 262144 for DeepSeek-V3 and the rows
# that miss per-byte parity (Qwen3-MoE, GLM-4.5-Air, DeepSeek-V2) or just reached it (Moonlight): where the
# time goes (docs/perf.md). Logs under $OUT. Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session8f.sh
source tools/gpu_env.sh
SECONDS=0
timeout 300 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_ --section SpeedOfLight \
  --section SchedulerStats --section WarpStateStats --section Occupancy --section LaunchStats \
  --metrics smsp__inst_executed.sum \
  python3 tools/ncu_presets.py > "$OUT/ncu.log" 2>&1
echo "ncu exit $? in ${SECONDS}s"; grep -E "route_|Duration|SM Throughput|DRAM Throughput|Issue Slots Busy|No Eligible|Achieved Occupancy|Registers Per|inst_executed|Warp Cycles Per Issued" "$OUT/ncu.log" | head -120
