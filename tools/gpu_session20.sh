#!/usr/bin/env bash
# Device session 20 (branch wip/lazy-named-keys; docs/perf.md, session 19's next steps): the named keys on
# lazy softmax numerators (kLazyNamed: Qwen3-MoE, gpt-oss, DeepSeek-V2, DeepSeek-V2-Lite). Steps by name:
#   smoke   gpu_smoke (run first after a route.cu change)
#   probe   tools/source_probe.py: main's route.cu (head) against this tree (new) and against this tree with
#           4 blocks per SM declared for the softmax named-keys kernels (lb4: Qwen3-MoE then takes 64
#           registers with spills, 76 unasked), T = 65536 and 262144, bf16 then float32, bitwise checked
#   tests   the GPU tests of the segment kernels, the named keys and the softmax near ties
#   suite   the whole GPU suite;  sanbench  gpu_sanitize, then gpu_bench (`.peers/*` carried)
# Before it, here (the device has no git history): mkdir -p .probe/s20 &&
#   git show main:optimized/kernels/route.cu > .probe/s20/route_main.cu   (then carry .probe)
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session20.sh STEP...; each device call holds 600 s.
# Run in session 20 on wip/next (e104ee5): `smoke probe tests`, `suite`, then gpu_sanitize. After kLazyNamed was
# limited to float32 logits (ec980b6; docs/perf.md, session 20), on that tree by hand: gpu_smoke and gpu_suite
# 520, gpu_bench 200, and tools/sanitize.py (the 336 launches; no device time was left for --looping).
source tools/gpu_env.sh
for step in "$@"; do
  case $step in
    smoke) gpu_smoke 120 ;;
    probe)
      sed 's/PLAN == kPlanThroughput \&\& KG < G \&\& named_keys_apply/PLAN == kPlanThroughput \&\& (KG < G || SCORING == kSoftmax) \&\& named_keys_apply/' \
        optimized/kernels/route.cu > .probe/s20/route_lb4.cu
      cmp -s optimized/kernels/route.cu .probe/s20/route_lb4.cu && { echo "probe: the lb4 edit did not apply"; exit 1; }
      for dt in bfloat16 float32; do
        SECONDS=0
        timeout 200 python3 tools/source_probe.py --variant head=.probe/s20/route_main.cu \
          --variant new=optimized/kernels/route.cu --variant lb4=.probe/s20/route_lb4.cu --preset qwen3-moe \
          --preset gpt-oss-120b --preset deepseek-v2 --preset deepseek-v2-lite --rows 65536,262144 --rounds 2 \
          --dtype $dt > "$OUT/source_probe_$dt.log" 2>&1
        echo "source_probe $dt exit $? in ${SECONDS}s"; grep -E "^(qwen|gpt|deepseek)|DIFFERS" "$OUT/source_probe_$dt.log"
      done ;;
    tests) gpu_suite 300 segment tests/test_optimized_gpu.py -k "segment or named or softmax" ;;
    suite) gpu_suite 560 ;;
    sanbench) gpu_sanitize; gpu_bench 170 ;;
    *) echo "gpu_session20.sh: unknown step '$step' (smoke, probe, tests, suite, sanbench)"; exit 2 ;;
  esac
done
