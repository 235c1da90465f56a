#!/usr/bin/env bash
# Device session 18, part 2, for the next session (branch wip/bound-batch): Nsight Compute on the batched bound
# kernels of DeepSeek-V3 and GLM-4.5 at T = 262144 (the second launch of each preset: the first is the T = 1
# warm-up), with the warp stall reasons: why DeepSeek-V3 gained 3% for 18% fewer instructions (docs/perf.md,
# session 18), against session 12's profile of main's kernel (395 instructions a row, 0.74 issued per cycle).
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session18b.sh
source tools/gpu_env.sh
for preset in deepseek-v3 glm-4.5; do
  SECONDS=0
  timeout 150 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_warp --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section SchedulerStats --section WarpStateStats --section Occupancy \
    --section LaunchStats --section MemoryWorkloadAnalysis --metrics smsp__inst_executed.sum \
    python3 tools/ncu_presets.py $preset > "$OUT/ncu_$preset.log" 2>&1
  echo "ncu $preset exit $? in ${SECONDS}s"
  grep -v "^==PROF==" "$OUT/ncu_$preset.log" | grep -E "route_|Duration|DRAM Thr|No Eligible|Achieved Occ|Registers|inst_exec|Issued Warp|Stall|Warp Cycles|Spill|Local|Shared" | cut -c1-110
done
