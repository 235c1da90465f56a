#!/usr/bin/env bash
# Device session 24 (docs/perf.md, session 23's next steps), on the branch wip/tau (lane_named_tau: the warp
# kernel's throughput floor in K warp maxima, tau with its low 5 bits cleared, where it took 2K - 1). Steps:
#   smoke    tools/gpu_smoke.py (every kernel of the table at three small T against the generic kernel)
#   tau      the GPU test of rows crowded just below tau (tests/test_optimized_gpu.py -k below_tau)
#   probe    tools/source_probe.py, three rounds: this tree's route.cu against main's (carried in .probe/s24,
#            made by `git show main:optimized/kernels/route.cu > .probe/s24/route_main.cu`) on the warp-kernel
#            presets (Qwen3-Next and Kimi-K2 at every T; GLM-4.5 and DeepSeek-V3 below their bound plan's
#            threshold), bf16 and float32
#   gptoss   tools/grid_probe.py on gpt-oss bf16 with the grid capped at 5 and 8 blocks per SM: main's throughput
#            kernel (this tree's segment kernels are main's), then the redux kernel session 23 benched
#            (.probe/s24/route_gptoss_rx.cu: redux_rounds_apply at K <= 6 in 16 bits, copied over route.cu for
#            the step and restored), whose 1.023x at T = 262144 came with 5 resident blocks instead of 4
#   qmoe     tools/source_probe.py on Qwen3-MoE and GLM-4.5-Air bf16 (K = 8, where redux in every round lost):
#            main against redux in the last 3 rounds and the next-key round only (rxlast3: 59 registers, no
#            spill, for Qwen3-MoE's 64 and 8 bytes), and in the next-key round only (rxnext: 79 registers);
#            .probe/s24/route_rxlast3.cu and route_rxnext.cu, made on the CPU from main's route.cu
#   suite1   the GPU tests of tests/test_optimized_gpu.py (the whole suite with the peers carried passed 340 s)
#   suite2   the other GPU tests (carry .peers/src .peers/cache .peers/cuda-include .peers/cublas)
#   sanitize compute-sanitizer over every kernel, then over the kernels whose blocks loop
#   bench    moegate bench against the peers, every preset, bf16, with the host path (carry .peers/*)
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session24.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
for step in "$@"; do
  case $step in
    smoke) gpu_smoke 150 ;;
    tau) gpu_suite 150 tau tests/test_optimized_gpu.py -k below_tau ;;
    probe)
      [ -f .probe/s24/route_main.cu ] || { echo "probe: .probe/s24/route_main.cu is missing (carry it)"; exit 2; }
      SECONDS=0
      timeout 240 python3 tools/source_probe.py --variant main=.probe/s24/route_main.cu \
        --variant tau=optimized/kernels/route.cu --preset qwen3-next-80b-a3b --preset kimi-k2 --preset glm-4.5 \
        --preset deepseek-v3 --rows 256,4096,16384,65536,262144 --rounds 3 --dtype bfloat16 \
        > "$OUT/source_probe_tau.log" 2>&1
      echo "source_probe bf16 exit $? in ${SECONDS}s"
      grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_tau.log" | grep -v "^NVIDIA"
      SECONDS=0
      timeout 150 python3 tools/source_probe.py --variant main=.probe/s24/route_main.cu \
        --variant tau=optimized/kernels/route.cu --preset qwen3-next-80b-a3b --preset kimi-k2 \
        --rows 4096,262144 --rounds 3 --dtype float32 > "$OUT/source_probe_tau_fp32.log" 2>&1
      echo "source_probe float32 exit $? in ${SECONDS}s"
      grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_tau_fp32.log" | grep -v "^NVIDIA" ;;
    probe2)
      # named_tau_applies (E != 384, K > 1): the throughput kernels' float32 rows the first probe left out, and
      # the latency kernels of the segment presets (their dead throughput branch changed their registers)
      SECONDS=0
      timeout 150 python3 tools/source_probe.py --variant main=.probe/s24/route_main.cu \
        --variant tau=optimized/kernels/route.cu --preset glm-4.5 --preset deepseek-v3 --preset kimi-k2 \
        --rows 4096,16384 --rounds 3 --dtype float32 > "$OUT/source_probe_tau2_fp32.log" 2>&1
      echo "source_probe float32 exit $? in ${SECONDS}s"
      grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_tau2_fp32.log" | grep -v "^NVIDIA"
      SECONDS=0
      timeout 200 python3 tools/source_probe.py --variant main=.probe/s24/route_main.cu \
        --variant tau=optimized/kernels/route.cu --preset deepseek-v2 --preset deepseek-v2-lite \
        --preset moonlight-16b-a3b --preset glm-4.5-air --preset qwen3-moe --preset gpt-oss-120b \
        --preset qwen3-next-80b-a3b --preset kimi-k2 --rows 1,256,1024 --rounds 3 --dtype bfloat16 \
        > "$OUT/source_probe_tau2_lat.log" 2>&1
      echo "source_probe bf16 exit $? in ${SECONDS}s"
      grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_tau2_lat.log" | grep -v "^NVIDIA" ;;
    tail)
      # Whether the grid's last partial iteration costs more than its rows: the looping kernels timed at T just
      # below 65536 and 262144 (time per row flat if not; a step at the full T if the last blocks run alone)
      SECONDS=0
      timeout 200 python3 tools/source_probe.py --variant main=optimized/kernels/route.cu --preset qwen3-moe \
        --preset deepseek-v3 --preset deepseek-v2 --preset qwen3-next-80b-a3b \
        --rows 64512,65280,65536,258048,261120,261888,262144 --rounds 3 --dtype bfloat16 \
        > "$OUT/source_probe_tail.log" 2>&1
      echo "source_probe bf16 exit $? in ${SECONDS}s"
      grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_tail.log" | grep -v "^NVIDIA" | cut -c1-60 ;;
    gptoss)
      [ -f .probe/s24/route_gptoss_rx.cu ] || { echo "gptoss: .probe/s24/route_gptoss_rx.cu is missing"; exit 2; }
      SECONDS=0
      timeout 120 python3 tools/grid_probe.py --preset gpt-oss-120b --rows 65536,262144 --caps 0,5,8 \
        > "$OUT/grid_probe_gptoss_main.log" 2>&1
      echo "grid_probe (main's kernel) exit $? in ${SECONDS}s"
      grep -v "^NVIDIA" "$OUT/grid_probe_gptoss_main.log" | cut -c1-160
      cp optimized/kernels/route.cu "$OUT/route_kept.cu"
      cp .probe/s24/route_gptoss_rx.cu optimized/kernels/route.cu
      SECONDS=0
      timeout 150 python3 tools/grid_probe.py --preset gpt-oss-120b --rows 65536,262144 --caps 0,5,8 \
        > "$OUT/grid_probe_gptoss_rx.log" 2>&1
      echo "grid_probe (redux kernel) exit $? in ${SECONDS}s"
      grep -v "^NVIDIA" "$OUT/grid_probe_gptoss_rx.log" | cut -c1-160
      cp "$OUT/route_kept.cu" optimized/kernels/route.cu && rm "$OUT/route_kept.cu" ;;
    qmoe)
      SECONDS=0
      timeout 200 python3 tools/source_probe.py --variant main=.probe/s24/route_main.cu \
        --variant rxlast3=.probe/s24/route_rxlast3.cu --variant rxnext=.probe/s24/route_rxnext.cu \
        --preset qwen3-moe --preset glm-4.5-air --rows 4096,65536,262144 --rounds 3 --dtype bfloat16 \
        > "$OUT/source_probe_qmoe.log" 2>&1
      echo "source_probe bf16 exit $? in ${SECONDS}s"
      grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_qmoe.log" | grep -v "^NVIDIA" ;;
    suite1) gpu_suite 420 suite1 tests/test_optimized_gpu.py ;;
    suite2) MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache \
              gpu_suite 420 suite2 tests --ignore=tests/test_optimized_gpu.py ;;
    sanitize) gpu_sanitize ;;
    bench) gpu_bench 200 ;;
    *) echo "gpu_session24.sh: unknown step '$step'" \
         "(smoke, tau, probe, probe2, tail, gptoss, qmoe, suite1, suite2, sanitize, bench)"; exit 2 ;;
  esac
done
