#!/usr/bin/env bash
# Device session 27 (docs/perf.md, session 26's next steps), on main. Steps:
#   pool       tools/source_probe.py, main's route.cu against the row pool (tools/pool_probe_source.py: the
#              looping warp and segment kernels take chunks of rows from one grid-wide counter instead of a
#              fixed grid stride; a probe, not safe for concurrent launches) at the dispatch's grids, every
#              preset with a looping kernel, T = 65536, 262144 and 2^20; outputs checked bitwise. Not below: its
#              chunks are fixed (4 to 16 rows), so where the dispatch's grid gives a warp a row or two the
#              chunks leave warps without rows; a pool to ship sizes them from T and the grid. Carry .probe/s27,
#              made on the CPU: `cp optimized/kernels/route.cu .probe/s27/route_main.cu`, `python
#              tools/pool_probe_source.py .probe/s27/route_pool.cu` and the same with `--scale 2` into
#              route_pool2.cu (chunks twice as large: half the atomics on the one counter, whose contention
#              is the probe's own cost at 65536 chunks a launch for DeepSeek-V3). What it answers: how much of a
#              launch the blocks that end apart cost (session 26's block_timeline: DeepSeek-V3's bound kernel,
#              one wave of 3 blocks an SM, ends an SM's blocks at 95.6, 109.8 and 129.5 us at T = 262144; the
#              4-resident grids' blocks of one SM end apart too, block fill 0.91), and whether the 4-resident
#              kernels gain as much as DeepSeek-V3's (target 3 is a ratio to DeepSeek-V3).
#   pool_grid  tools/grid_probe.py with the pool's route.cu copied over route.cu (restored after): the grid
#              capped at one wave (3 or 4 blocks an SM) against the dispatch's, since with a pool the blocks
#              past the first wave find it empty
#   pool_timeline  tools/block_timeline.py on the pool's route.cu (copied over, restored): fill and block ends
#   group      as pool, with a counter per group of blocks b % 132 (`tools/pool_probe_source.py --groups 132`, and
#              --scale 2: .probe/s27/route_group.cu, route_group2.cu): the pool steps' one counter took 65536
#              claims a launch and lost on every 4-resident kernel; in a one-wave grid a group holds one block of
#              each rank on the SM
#   group_grid as pool_grid, with route_group.cu (caps 0, 3, 4: the dispatch's grid and one wave)
#   defer      main against three pools whose next chunk is broadcast where it is read, not right after its atomic
#              (--defer: the claim's round trip then overlaps a chunk's rows; the steps above waited for it at
#              every claim): the grid's counter with chunks twice as large (route_pool_d2.cu: `--scale 2 --defer`),
#              the groups' (route_group_d.cu: `--groups 132 --defer`), and the groups' without --defer
#              (route_group.cu, now with each group's counters on a line of their own), T = 65536 and 262144
#   defer_grid as group_grid, with route_group_d.cu at T = 262144
#   pipes      Nsight Compute on main's kernel at T = 262144 (tools/ncu_presets.py), six presets: issue slots busy,
#              each pipe's share of its peak (the XU pipe runs the MUFU ex2 and rcp of the sigmoids), the SM
#              clock, warp instructions: what bounds each kernel's time below target 2's 1.5x the floor
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session27.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
POOL_PRESETS=(deepseek-v3 kimi-k2 moonlight-16b-a3b glm-4.5 glm-4.5-air qwen3-moe qwen3-next-80b-a3b deepseek-v2
              deepseek-v2-lite gpt-oss-120b llama-4-maverick)
with_pool_source() {  # with_pool_source COMMAND...: run with the pool's route.cu ($POOL_CU) in the tree's place
  cp optimized/kernels/route.cu "$OUT/route_kept.cu"
  cp "${POOL_CU:-.probe/s27/route_pool.cu}" optimized/kernels/route.cu
  "$@"
  cp "$OUT/route_kept.cu" optimized/kernels/route.cu && rm "$OUT/route_kept.cu"
}
# pool_variants LOG ROWS NAME... : tools/source_probe.py, main's route.cu against .probe/s27/route_NAME.cu for
# each NAME, every pool preset at the T of ROWS, 3 rounds; its indented progress lines left out of the output.
pool_variants() {
  local log=$1 rows=$2
  shift 2
  local variants=(--variant main=.probe/s27/route_main.cu)
  for name in "$@"; do variants+=(--variant "$name=.probe/s27/route_$name.cu"); done
  preset_args "${POOL_PRESETS[@]}"
  gpu_tool "$log" 400 tools/source_probe.py "${variants[@]}" "${PRESET_ARGS[@]}" --rows "$rows" --rounds 3 \
    | grep -v "^  "
}
# pool_grid_probe LOG SOURCE ROWS CAPS: tools/grid_probe.py with SOURCE in route.cu's place, six presets.
pool_grid_probe() {
  preset_args deepseek-v3 moonlight-16b-a3b qwen3-next-80b-a3b qwen3-moe deepseek-v2 kimi-k2
  POOL_CU=$2 with_pool_source gpu_tool "$1" 300 tools/grid_probe.py "${PRESET_ARGS[@]}" --rows "$3" --caps "$4"
}
for step in "$@"; do
  [ -f .probe/s27/route_pool.cu ] || { echo "$step: .probe/s27/route_pool.cu is missing (carry .probe/s27)"; exit 2; }
  case $step in
    pool) pool_variants source_probe_pool 65536,262144,1048576 pool pool2 ;;
    pool_grid) pool_grid_probe grid_probe_pool .probe/s27/route_pool.cu 65536,262144 0,3,4,8 ;;
    pool_timeline)
      preset_args deepseek-v3 qwen3-moe deepseek-v2
      with_pool_source gpu_tool block_timeline_pool 200 tools/block_timeline.py --png "$OUT/timeline_pool" \
        "${PRESET_ARGS[@]}" --rows 262144 ;;
    group) pool_variants source_probe_group 65536,262144,1048576 group group2 ;;
    group_grid) pool_grid_probe grid_probe_group .probe/s27/route_group.cu 65536,262144 0,3,4 ;;
    defer) pool_variants source_probe_defer 65536,262144 pool_d2 group_d group ;;
    defer_grid) pool_grid_probe grid_probe_defer .probe/s27/route_group_d.cu 262144 0,3,4 ;;
    pipes)
      NCU=/usr/local/cuda/bin/ncu
      timeout 60 $NCU --query-metrics --chip gh100 > "$OUT/ncu_query.txt" 2>&1
      metrics=sm__inst_executed.sum,sm__cycles_elapsed.avg.per_second,sm__cycles_elapsed.max
      for base in sm__issue_active sm__inst_executed_pipe_xu sm__inst_executed_pipe_alu sm__inst_executed_pipe_fma \
          sm__inst_executed_pipe_fmaheavy sm__inst_executed_pipe_lsu sm__inst_executed_pipe_adu \
          sm__inst_executed_pipe_uniform sm__inst_executed_pipe_cbu sm__pipe_xu_cycles_active \
          sm__pipe_alu_cycles_active sm__pipe_fma_cycles_active sm__pipe_shared_cycles_active; do
        grep -q "^$base " "$OUT/ncu_query.txt" && metrics+=",$base.avg.pct_of_peak_sustained_active"
      done
      echo "metrics: $metrics"
      for preset in deepseek-v3 qwen3-moe deepseek-v2 qwen3-next-80b-a3b kimi-k2 moonlight-16b-a3b; do
        SECONDS=0
        timeout 120 $NCU --clock-control none -k regex:route_ --launch-skip 1 --launch-count 1 \
          --section SpeedOfLight --section ComputeWorkloadAnalysis --section SchedulerStats \
          --section WarpStateStats --section Occupancy --metrics "$metrics" \
          python3 tools/ncu_presets.py $preset > "$OUT/ncu_pipes_$preset.log" 2>&1
        echo "ncu $preset exit $? in ${SECONDS}s"
        grep -v "^==PROF==" "$OUT/ncu_pipes_$preset.log" | grep -E "route_|Duration|SM Frequency|Issue Slots Busy|\
No Eligible|Achieved Occ|Executed Ipc A|sm__|SM Busy|Memory Throughput" | cut -c1-120
      done ;;
    *) echo "gpu_session27.sh: unknown step '$step' (pool, pool_grid, pool_timeline, group, group_grid, defer," \
         "defer_grid, pipes)"; exit 2 ;;
  esac
done
