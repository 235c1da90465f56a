#!/usr/bin/env bash
# Device session 28 (docs/perf.md, session 27's next step 1: target 2 needs fewer instructions a row). Steps:
#   rowthread  tools/row_thread_probe.py: DeepSeek-V3's bound plan with a row per thread (tools/row_thread_probe.cu:
#              the tile of 32 rows in shared memory, tileW, or the groups streamed through S slots, streamSxW) and
#              per pair of threads (pairW) against the dispatch's kernel, bf16, T = 4096, 65536 and 262144, W warps
#              a block; each variant's output checked bitwise against the dispatch's on random, tie-heavy and
#              non-finite rows first. Runs 2 to 13 of docs/perf.md's session 28 ran this step with the variants of
#              their row and the source as it stood; the last, run 15, with these and the committed source.
#   rowthread_large  as rowthread, pair2 and pair4 at T = 131072 and 2^20
#   flat       as rowthread, route_row_flat_probe (a row per thread, no groups) for Moonlight, GLM-4.5-Air and GLM-4.5
#   keep       as flat, for Moonlight with its keys kept in registers (keepW) beside flat2
#   rowthread_ncu  Nsight Compute on the dispatch's bound kernel and the probe's pair3 and pair4 at T = 262144: warp
#              instructions, issue slots busy, warps an SM, the stall reasons (warps stalled per issue, each reason)
#   rowthread_source  Nsight Compute's source page for the probe's pair2 at T = 262144: each SASS instruction's executed
#              warp instructions and stall samples (CSV), to find where its cycles between instructions go
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session28.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
for step in "$@"; do
  case $step in
    rowthread) gpu_tool row_thread 420 tools/row_thread_probe.py --rows 4096,65536,262144 --variants tile2,pair2,pair4 --rounds 3 ;;
    rowthread_large) gpu_tool row_thread_large 300 tools/row_thread_probe.py --rows 131072,1048576 --variants pair2,pair4 --rounds 3 ;;
    flat)
      for preset in moonlight-16b-a3b glm-4.5-air glm-4.5; do
        gpu_tool "row_flat_$preset" 200 tools/row_thread_probe.py --preset "$preset" --rows 4096,65536,262144 \
          --variants flat2,flat4 --rounds 3
      done ;;
    keep) gpu_tool row_keep_moonlight 200 tools/row_thread_probe.py --preset moonlight-16b-a3b --rows 4096,65536,262144 \
          --variants flat2,keep2,keep4 --rounds 3 ;;
    rowthread_ncu)
      SECONDS=0
      timeout 400 /usr/local/cuda/bin/ncu --kernel-name regex:"route_row_|route_warp_kernel" \
        --launch-skip 0 --launch-count 3 --section SpeedOfLight --section LaunchStats --section Occupancy \
        --section SchedulerStats --section WarpStateStats --section InstructionStats --section ComputeWorkloadAnalysis \
        --section MemoryWorkloadAnalysis --metrics regex:'smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
        python3 tools/row_thread_probe.py --rows 262144 --variants pair3,pair4 --rounds 1 --ncu > "$OUT/row_thread_ncu.log" 2>&1
      echo "ncu exit $? in ${SECONDS}s"; grep -E "route_|Issue Slots Busy|Executed Instructions  |Duration|Registers Per|Achieved Active|Warp Cycles Per Issued" \
        "$OUT/row_thread_ncu.log" | cut -c1-110 | head -40
      grep -E "issue_stalled" "$OUT/row_thread_ncu.log" | awk '$NF > 0.05' | head -60 ;;
    rowthread_source)  # per SASS instruction: executed warp instructions and stall samples of the probe's pair2
      SECONDS=0
      timeout 400 /usr/local/cuda/bin/ncu --kernel-name regex:"route_row_pair_probe" --launch-count 1 \
        --section SourceCounters --section WarpStateStats --page source --print-source sass --csv \
        python3 tools/row_thread_probe.py --rows 262144 --variants pair2 --rounds 1 --ncu > "$OUT/row_thread_source.csv" 2>&1
      echo "ncu exit $? in ${SECONDS}s: $(wc -l < "$OUT/row_thread_source.csv") lines"; head -3 "$OUT/row_thread_source.csv" | cut -c1-300 ;;
    *) echo "unknown step $step"; exit 2 ;;
  esac
done
