#!/usr/bin/env bash
# Device session 22 (docs/perf.md, session 21's next steps), on the branch wip/lazy-plan: the softmax rows'
# lazy named keys as their bound plan (route.cu: lazy_named_plan_applies), from SEGMENT_BOUND_MIN_BLOCKS_PER_SM
# blocks per SM on, instead of gpt-oss' 16-bit throughput kernel at every T (session 21: 0.96x at 262144 but
# 1.03x to 1.11x from T = 2048 to 16384). Steps by name:
#   smoke    tools/gpu_smoke.py (the softmax presets now without a bias, so the lazy path runs)
#   probe    tools/source_probe.py, three rounds: main's route.cu (.probe/s22/route_main.cu, carried; made by
#            `git show main:optimized/kernels/route.cu`; source_probe drops the softmax rows' bound plan for
#            it) against this tree's; bf16 gpt-oss from T = 4096 to 262144 (the threshold is 33792 rows on an
#            H200), float32 Qwen3-MoE, gpt-oss, DeepSeek-V2-Lite and DeepSeek-V2 at T = 4096 to 262144 (main
#            takes the lazy keys at every T there, this tree from the threshold on, and never for DeepSeek-V2)
#   suite    the GPU tests (about 420 s)
#   sanitize compute-sanitizer over every kernel (now without a bias too) and the looping grids (about 300 s)
#   bench    moegate bench against the peers, every preset, bf16, with the host path (about 80 s)
#   ncu_sass Nsight Compute's executed instructions per SASS instruction (SourceCounters) of Qwen3-MoE's bf16
#            throughput kernel at T = 262144: which instructions of the row loop run, and how often (the
#            static SASS counts include the rare paths); the report and its source page as CSV (the T = 1 warm-up
#            launch is the warp latency kernel, which the regex leaves out)
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session22.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
MAIN_ROUTE=${MAIN_ROUTE:-.probe/s22/route_main.cu}
for step in "$@"; do
  case $step in
    smoke) gpu_smoke 150 ;;
    probe)
      [ -f "$MAIN_ROUTE" ] || { echo "probe: $MAIN_ROUTE is missing (carry .probe/s22)"; exit 2; }
      SECONDS=0
      timeout 150 python3 tools/source_probe.py --variant main=$MAIN_ROUTE --variant lazyplan=optimized/kernels/route.cu \
        --preset gpt-oss-120b --rows 4096,16384,32768,65536,262144 --rounds 3 --dtype bfloat16 \
        > "$OUT/source_probe_bf16.log" 2>&1
      echo "source_probe bf16 exit $? in ${SECONDS}s"; grep -E "^gpt|DIFFERS" "$OUT/source_probe_bf16.log"
      SECONDS=0
      timeout 240 python3 tools/source_probe.py --variant main=$MAIN_ROUTE --variant lazyplan=optimized/kernels/route.cu \
        --preset qwen3-moe --preset gpt-oss-120b --preset deepseek-v2-lite --preset deepseek-v2 \
        --rows 4096,16384,65536,262144 --rounds 3 --dtype float32 > "$OUT/source_probe_fp32.log" 2>&1
      echo "source_probe float32 exit $? in ${SECONDS}s"; grep -E "^(qwen|gpt|deepseek)|DIFFERS" "$OUT/source_probe_fp32.log" ;;
    suite) gpu_suite 470 ;;
    sanitize) gpu_sanitize ;;
    bench) gpu_bench 200 ;;
    ncu_sass)
      SECONDS=0
      timeout 150 /usr/local/cuda/bin/ncu --clock-control none -k regex:route_segment --launch-count 1 \
        --section SourceCounters --section InstructionStats -f -o "$OUT/qwen3_moe_source" \
        python3 tools/ncu_presets.py qwen3-moe > "$OUT/ncu_sass.log" 2>&1
      echo "ncu SourceCounters exit $? in ${SECONDS}s"
      /usr/local/cuda/bin/ncu --import "$OUT/qwen3_moe_source.ncu-rep" --page source --print-source sass --csv \
        > "$OUT/qwen3_moe_sass.csv" 2>> "$OUT/ncu_sass.log"
      echo "source page exit $?: $(wc -l < "$OUT/qwen3_moe_sass.csv") lines"; tail -2 "$OUT/ncu_sass.log" | cut -c1-150 ;;
    *) echo "gpu_session22.sh: unknown step '$step' (smoke, probe, suite, sanitize, bench, ncu_sass)"; exit 2 ;;
  esac
done
