#!/usr/bin/env bash
# Device session 17, part 2: DeepSeek-V2's named-keys kernel. Its softmax without the NaN filter on the common
# path (unf; unfla: also each row requested one row ahead) against part 1's shape (tools/source_probe.py,
# bitwise checked), and Nsight Compute on it at T = 262144 beside Qwen3-MoE's (instructions, issue rate,
# occupancy, stall reasons).
# Usage (GPU machine, repo root; .probe/s17 carried): OUT=dir bash tools/gpu_session17b.sh
source tools/gpu_env.sh
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant new=optimized/kernels/route.cu \
  --variant unf=.probe/s17/route_unf.cu --variant unfla=.probe/s17/route_unfla.cu \
  --preset deepseek-v2 --rows 4096,16384,65536,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "kernels \[" "$OUT/source_probe.log"
for preset in deepseek-v2 qwen3-moe; do
  SECONDS=0
  timeout 120 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_segment --launch-skip 0 --launch-count 1 \
    --section SpeedOfLight --section SchedulerStats --section WarpStateStats --section Occupancy \
    --section LaunchStats --metrics smsp__inst_executed.sum python3 tools/ncu_presets.py $preset \
    > "$OUT/ncu_$preset.log" 2>&1
  echo "ncu $preset exit $? in ${SECONDS}s"
  grep -v "^==PROF==" "$OUT/ncu_$preset.log" | grep -E "route_|Duration|DRAM Thr|No Eligible|Achieved Occ|Registers|inst_exec|Issued Warp|Stall|Warp Cycles|Spill|Local" | cut -c1-110
done
