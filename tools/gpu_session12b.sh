#!/usr/bin/env bash
# Device session 12, part 2: Nsight Compute on DeepSeek-V3's throughput kernel with the bound plan at
# T = 262144: the summary sections, then per-instruction warp-stall samples (SourceCounters, SASS).
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session12b.sh
source tools/gpu_env.sh
NCU=/usr/local/cuda/bin/ncu
SECONDS=0
timeout 150 $NCU --clock-control none -k regex:route_warp --launch-skip 1 --launch-count 1 --section SpeedOfLight \
  --section SchedulerStats --section WarpStateStats --section Occupancy --section LaunchStats \
  --section MemoryWorkloadAnalysis --metrics smsp__inst_executed.sum python3 tools/ncu_presets.py deepseek-v3 \
  > "$OUT/ncu.log" 2>&1
echo "ncu exit $? in ${SECONDS}s"
grep -E "Duration|DRAM Throughput|No Eligible|Achieved Occupancy|Registers Per|inst_executed|Warp Cycles Per Issued|Issued Warp|Stall|L1/TEX Hit" "$OUT/ncu.log" | grep -v "^==PROF" | cut -c1-120
SECONDS=0
timeout 200 $NCU --clock-control none -k regex:route_warp --launch-skip 1 --launch-count 1 --section SourceCounters \
  --section WarpStateStats --page source --print-source sass --csv python3 tools/ncu_presets.py deepseek-v3 \
  > "$OUT/ncu_source.csv" 2>&1
echo "ncu source exit $? in ${SECONDS}s; $(wc -l < "$OUT/ncu_source.csv") lines"
