#!/usr/bin/env bash
# Device session 23 (docs/perf.md, session 22's next steps), on the branch wip/cut (numerators_in_fast_range
# and named_score_keys; its GPU suite and the sanitizer's 432 launches ran clean in session 22). Steps:
#   range    the new GPU test of numerators_in_fast_range (every float32 logit gap from -43 to 0)
#   sanloop  compute-sanitizer over the kernels whose blocks loop (about 140 s): the check session 22 left
#   bench    moegate bench against the peers, every preset, bf16, with the host path (about 80 s; carry
#            .peers/src .peers/cache .peers/cuda-include .peers/cublas)
#   peers    the peer tests the suite skipped without .peers (tests/test_peer_findings.py)
#   plan     tools/plan_probe.py: the throughput and bound plans side by side from T = 4096 to 65536, float32
#            Qwen3-MoE, gpt-oss and DeepSeek-V2-Lite (session 22: the lazy bound plan from T = 33792 cost them
#            1.6% to 3.1% at 16384, where main had it at every T) and bf16 gpt-oss (where it crossed at ~33792)
#   ncu_next Nsight Compute's executed instructions per SASS instruction (SourceCounters) of Qwen3-Next's bf16
#            throughput kernel (the warp kernel, E = 512, lazy softmax) at T = 262144, as session 22's ncu_sass
#            for Qwen3-MoE (the T = 1 warm-up launch is the latency kernel: --launch-skip 1)
#   probe    tools/source_probe.py, three rounds: this tree's route.cu against two candidates, carried in
#            .probe/s23 (made by `git show wip/rx:optimized/kernels/route.cu > .probe/s23/route_rx.cu`, the same
#            for wip/g2): rx, segment_max of a 16-lane segment by two full-warp redux.sync (76 registers for
#            Qwen3-MoE's 64), and g2, DeepSeek-V2's named keys without the sign bit until the group keys and the
#            naming (kRawKeys); the L = 16 segment presets in bf16 at T = 4096, 65536 and 262144, and Qwen3-MoE
#            and DeepSeek-V2 in float32
#   probe2   the redux segment maximum split by use (rxmax: the softmax row maximum only; rxsort: step 5's rounds
#            only) beside rx, from .probe/s23b (made on the CPU from wip/rx's route.cu)
#   plan_big the bound and throughput plans at T = 131072 and 262144 (plan stops at 65536)
# Then merge wip/cut into main, its bench as docs/bench/bench_h200.json (session 22's to bench_h200_session22.*).
# (Session 23 ran every step, then the smoke, the GPU suite and the bench of the merged tree from gpu_env.sh.)
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session23.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
for step in "$@"; do
  case $step in
    range) gpu_suite 120 range tests/test_optimized_gpu.py -k fast_range ;;
    sanloop)
      SECONDS=0
      timeout 200 python3 tools/sanitize.py --looping > "$OUT/sanitize_looping.log" 2>&1
      echo "sanitize --looping exit $? in ${SECONDS}s"; tail -3 "$OUT/sanitize_looping.log" | cut -c1-120 ;;
    bench) gpu_bench 200 ;;
    peers) MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache gpu_suite 300 peers tests/test_peer_findings.py ;;
    plan)
      SECONDS=0
      timeout 240 python3 tools/plan_probe.py --dtype float32 --preset qwen3-moe --preset gpt-oss-120b \
        --preset deepseek-v2-lite --rows 4096,8192,16384,24576,33792,65536 > "$OUT/plan_probe_fp32.log" 2>&1
      echo "plan_probe float32 exit $? in ${SECONDS}s"; cut -c1-30,80-200 "$OUT/plan_probe_fp32.log"
      SECONDS=0
      timeout 120 python3 tools/plan_probe.py --dtype bfloat16 --preset gpt-oss-120b \
        --rows 8192,16384,24576,33792,49152,65536 > "$OUT/plan_probe_bf16.log" 2>&1
      echo "plan_probe bf16 exit $? in ${SECONDS}s"; cut -c1-30,80-200 "$OUT/plan_probe_bf16.log" ;;
    ncu_next)
      SECONDS=0
      timeout 150 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_warp --launch-skip 1 --launch-count 1 \
        --section SourceCounters --section InstructionStats -f -o "$OUT/qwen3_next_source" \
        python3 tools/ncu_presets.py qwen3-next-80b-a3b > "$OUT/ncu_next.log" 2>&1
      echo "ncu SourceCounters exit $? in ${SECONDS}s"
      /usr/local/cuda/bin/ncu --import "$OUT/qwen3_next_source.ncu-rep" --page source --print-source sass --csv \
        > "$OUT/qwen3_next_sass.csv" 2>> "$OUT/ncu_next.log"
      echo "source page exit $?: $(wc -l < "$OUT/qwen3_next_sass.csv") lines"; head -1 "$OUT/qwen3_next_sass.csv" | cut -c1-150 ;;
    probe)
      for v in rx g2; do
        [ -f .probe/s23/route_$v.cu ] || { echo "probe: .probe/s23/route_$v.cu is missing (carry .probe/s23)"; exit 2; }
      done
      SECONDS=0
      timeout 240 python3 tools/source_probe.py --variant cut=optimized/kernels/route.cu --variant rx=.probe/s23/route_rx.cu \
        --variant g2=.probe/s23/route_g2.cu \
        --preset qwen3-moe --preset gpt-oss-120b --preset deepseek-v2 --preset glm-4.5-air --preset llama-4-maverick \
        --rows 4096,65536,262144 --rounds 3 --dtype bfloat16 > "$OUT/source_probe_rx.log" 2>&1
      echo "source_probe bf16 exit $? in ${SECONDS}s"; grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_rx.log" | grep -v "^NVIDIA"
      SECONDS=0
      timeout 150 python3 tools/source_probe.py --variant cut=optimized/kernels/route.cu --variant rx=.probe/s23/route_rx.cu \
        --variant g2=.probe/s23/route_g2.cu --preset qwen3-moe --preset deepseek-v2 --rows 4096,262144 --rounds 3 \
        --dtype float32 > "$OUT/source_probe_rx_fp32.log" 2>&1
      echo "source_probe float32 exit $? in ${SECONDS}s"; grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_rx_fp32.log" | grep -v "^NVIDIA" ;;
    probe2)
      # The redux segment maximum split by use: rxmax only in the softmax row maximum, rxsort only in the
      # selection's rounds (.probe/s23b, made from wip/rx's route.cu on the CPU).
      SECONDS=0
      timeout 240 python3 tools/source_probe.py --variant cut=optimized/kernels/route.cu \
        --variant rx=.probe/s23b/route_rx.cu --variant rxmax=.probe/s23b/route_rxmax.cu \
        --variant rxsort=.probe/s23b/route_rxsort.cu \
        --preset qwen3-moe --preset gpt-oss-120b --preset deepseek-v2 --preset glm-4.5-air --preset llama-4-maverick \
        --rows 4096,65536,262144 --rounds 3 --dtype bfloat16 > "$OUT/source_probe_rx2.log" 2>&1
      echo "source_probe bf16 exit $? in ${SECONDS}s"; grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_rx2.log" | grep -v "^NVIDIA"
      SECONDS=0
      timeout 150 python3 tools/source_probe.py --variant cut=optimized/kernels/route.cu \
        --variant rx=.probe/s23b/route_rx.cu --variant rxmax=.probe/s23b/route_rxmax.cu \
        --variant rxsort=.probe/s23b/route_rxsort.cu --preset qwen3-moe --preset gpt-oss-120b --preset deepseek-v2 \
        --rows 4096,262144 --rounds 3 --dtype float32 > "$OUT/source_probe_rx2_fp32.log" 2>&1
      echo "source_probe float32 exit $? in ${SECONDS}s"; grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_rx2_fp32.log" | grep -v "^NVIDIA" ;;
    plan_big)
      # The bound and throughput plans past 65536 (plan's rows stop there).
      SECONDS=0
      timeout 200 python3 tools/plan_probe.py --dtype float32 --preset qwen3-moe --preset gpt-oss-120b \
        --preset deepseek-v2-lite --rows 131072,262144 > "$OUT/plan_probe_big_fp32.log" 2>&1
      echo "plan_probe float32 exit $? in ${SECONDS}s"; cut -c1-30,66-200 "$OUT/plan_probe_big_fp32.log"
      SECONDS=0
      timeout 120 python3 tools/plan_probe.py --dtype bfloat16 --preset gpt-oss-120b --preset qwen3-moe \
        --preset deepseek-v2-lite --rows 131072,262144 > "$OUT/plan_probe_big_bf16.log" 2>&1
      echo "plan_probe bf16 exit $? in ${SECONDS}s"; cut -c1-30,66-200 "$OUT/plan_probe_big_bf16.log" ;;
    *) echo "gpu_session23.sh: unknown step '$step' (range, sanloop, bench, peers, plan, ncu_next, probe, probe2, plan_big)"; exit 2 ;;
  esac
done
