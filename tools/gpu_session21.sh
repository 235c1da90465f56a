#!/usr/bin/env bash
# Device session 21 (docs/perf.md, session 20's next steps), on main. Steps by name:
#   sanloop  tools/sanitize.py --looping: the looping-grid launches on main's final kernels (session 20 ran it
#            on wip/next only; about 140 s)
#   probe    tools/source_probe.py, bf16, T = 65536 and 262144, three rounds, bitwise checked ("DIFFERS"):
#            main (head) against variants made here by sed: lazy16 (kLazyNamed in every dtype), lb4 (4 blocks
#            per SM declared for the softmax named-keys kernels) and lazy16_lb4 (both; session 20 measured gpt-oss
#            at 0.959x / 0.969x that way), for gpt-oss-120b, qwen3-moe and deepseek-v2-lite
#   lb2      tools/source_probe.py, DeepSeek-V3 bf16 at T = 65536 and 262144, three rounds: main against its 16-bit
#            bound kernel at E = 256 held to 2 blocks per SM (128 registers: no spills, half the warps) instead of 3
#   cand     tools/source_probe.py, bf16, T = 65536 and 262144, three rounds: main against .probe/s21/route_cand.cu
#            (carried): lb2's 2 blocks per SM for DeepSeek-V3, and gpt-oss' 16-bit kernel (softmax, named keys, K <= 4)
#            with the lazy keys and 4 blocks per SM declared (the route.cu of wip/k4-lazy, c68235f, with lb2's
#            edit); on deepseek-v3, gpt-oss-120b and qwen3-moe (the control: its kernels compile to the same
#            SASS in both)
#   bitwise  the GPU tests that compare the specialized kernels bitwise with the generic kernel through
#            assert_bitwise_generic (tests/test_optimized_gpu.py; the helper is new since session 20's GPU run)
#   ncu      Nsight Compute on the kernels of the four presets over target 3 per byte (deepseek-v2, qwen3-moe,
#            gpt-oss-120b, qwen3-next-80b-a3b) at T = 262144 bf16, with the warp stall reasons and the executed
#            instruction statistics (the static SASS counts include the rare paths; these do not)
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session21.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
ROUTE=optimized/kernels/route.cu
LAZY_SED='s/kLazyNamed = kNamedKeys \&\& SCORING == kSoftmax \&\& DT == kScoreFloat32;/kLazyNamed = kNamedKeys \&\& SCORING == kSoftmax;/'
LB4_SED='s/PLAN == kPlanThroughput \&\& KG < G \&\& named_keys_apply/PLAN == kPlanThroughput \&\& (KG < G || SCORING == kSoftmax) \&\& named_keys_apply/'
for step in "$@"; do
  case $step in
    sanloop)
      SECONDS=0
      timeout 220 python3 tools/sanitize.py --looping > "$OUT/sanitize_looping.log" 2>&1
      echo "sanitize --looping exit $? in ${SECONDS}s"; tail -3 "$OUT/sanitize_looping.log" | cut -c1-120 ;;
    probe)
      mkdir -p .probe/s21
      sed "$LAZY_SED" $ROUTE > .probe/s21/route_lazy16.cu
      sed "$LB4_SED" $ROUTE > .probe/s21/route_lb4.cu
      sed -e "$LAZY_SED" -e "$LB4_SED" $ROUTE > .probe/s21/route_lazy16_lb4.cu
      for v in lazy16 lb4; do
        cmp -s $ROUTE .probe/s21/route_$v.cu && { echo "probe: the $v edit did not apply"; exit 1; }
      done
      SECONDS=0
      timeout 300 python3 tools/source_probe.py --variant head=$ROUTE --variant lazy16=.probe/s21/route_lazy16.cu \
        --variant lb4=.probe/s21/route_lb4.cu --variant lazy16_lb4=.probe/s21/route_lazy16_lb4.cu \
        --preset gpt-oss-120b --preset qwen3-moe --preset deepseek-v2-lite --rows 65536,262144 --rounds 3 \
        --dtype bfloat16 > "$OUT/source_probe_bfloat16.log" 2>&1
      echo "source_probe bfloat16 exit $? in ${SECONDS}s"; grep -E "^(qwen|gpt|deepseek)|DIFFERS" "$OUT/source_probe_bfloat16.log" ;;
    lb2)
      mkdir -p .probe/s21
      sed 's/E >= 256 \&\& DT != kScoreFloat32 ? 3 : 4/E >= 256 \&\& DT != kScoreFloat32 ? 2 : 4/' $ROUTE > .probe/s21/route_lb2.cu
      cmp -s $ROUTE .probe/s21/route_lb2.cu && { echo "lb2: the edit did not apply"; exit 1; }
      SECONDS=0
      timeout 200 python3 tools/source_probe.py --variant head=$ROUTE --variant lb2=.probe/s21/route_lb2.cu \
        --preset deepseek-v3 --rows 65536,262144 --rounds 3 --dtype bfloat16 > "$OUT/source_probe_lb2.log" 2>&1
      echo "source_probe lb2 exit $? in ${SECONDS}s"; grep -E "^deepseek|DIFFERS" "$OUT/source_probe_lb2.log" ;;
    cand)
      SECONDS=0
      timeout 260 python3 tools/source_probe.py --variant main=$ROUTE --variant cand=.probe/s21/route_cand.cu \
        --preset deepseek-v3 --preset gpt-oss-120b --preset qwen3-moe --rows 65536,262144 --rounds 3 \
        --dtype bfloat16 > "$OUT/source_probe_cand.log" 2>&1
      echo "source_probe cand exit $? in ${SECONDS}s"; grep -E "^(qwen|gpt|deepseek)|DIFFERS" "$OUT/source_probe_cand.log" ;;
    bitwise)
      gpu_suite 150 bitwise tests/test_optimized_gpu.py -k \
        "near_ties_equal_the_generic_kernel or rows_per_segment_equal or lazy_named_keys_at_bucket_edges" ;;
    ncu)
      for preset in deepseek-v2 qwen3-moe gpt-oss-120b qwen3-next-80b-a3b; do
        SECONDS=0
        timeout 120 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_ --launch-skip 1 --launch-count 1 \
          --section SpeedOfLight --section SchedulerStats --section WarpStateStats --section Occupancy \
          --section LaunchStats --section MemoryWorkloadAnalysis --section InstructionStats \
          --metrics smsp__inst_executed.sum \
          python3 tools/ncu_presets.py $preset > "$OUT/ncu_$preset.log" 2>&1
        echo "ncu $preset exit $? in ${SECONDS}s"
        grep -v "^==PROF==" "$OUT/ncu_$preset.log" | grep -E "route_|Duration|DRAM Thr|No Eligible|Achieved Occ|Registers|inst_exec|Issued Warp|Warp Cycles|Spill|Local" | cut -c1-110
      done ;;
    *) echo "gpu_session21.sh: unknown step '$step' (sanloop, probe, lb2, cand, bitwise, ncu)"; exit 2 ;;
  esac
done
