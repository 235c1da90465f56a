#!/usr/bin/env bash
# Device session 11, part 2: Nsight Compute on the segment kernel at T = 262144 (Moonlight, Qwen3-MoE), the
# committed route.cu (build/route_head.cu) against the lane-heads version (build/route_heads.cu): part 1
# measured the latter 2 to 23% slower with fewer instructions per round. Logs under $OUT.
# Usage (GPU machine, repo root, build/*.cu carried): OUT=dir bash tools/gpu_session11b.sh
source tools/gpu_env.sh
cp optimized/kernels/route.cu "$OUT/route_tree.cu"
for v in head heads; do
  cp "build/route_$v.cu" optimized/kernels/route.cu
  SECONDS=0
  timeout 200 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_segment --section SpeedOfLight \
    --section SchedulerStats --section WarpStateStats --section Occupancy --section InstructionStats \
    --metrics smsp__inst_executed.sum,smsp__sass_inst_executed_op_branch.sum,smsp__inst_executed_pipe_xu.sum \
    python3 tools/ncu_presets.py moonlight-16b-a3b qwen3-moe > "$OUT/ncu_$v.log" 2>&1
  echo "ncu $v exit $? in ${SECONDS}s"
  grep -E "route_|Duration|Issue Slots Busy|No Eligible|Achieved Occupancy|Registers Per|inst_executed|Warp Cycles Per Issued|Stall|branch|pipe_xu" "$OUT/ncu_$v.log" | grep -v "^==PROF" | head -60
done
cp "$OUT/route_tree.cu" optimized/kernels/route.cu
