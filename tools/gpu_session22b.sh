#!/usr/bin/env bash
# Device session 22, second part (docs/perf.md, session 22), on the branch wip/cut: two instruction cuts in
# the softmax segment kernels that Nsight Compute's executed counts per SASS instruction pointed at
# (Qwen3-MoE bf16, 519 warp instructions per two rows): numerators_in_fast_range (far_of from the lane's least
# logit: one compare where each numerator's two compares took about 2.5 instructions) and named_score_keys
# (step 2 names the keys of the rows without groups: two instructions a key where they took three). Steps:
#   smoke    tools/gpu_smoke.py
#   probe    tools/source_probe.py, three rounds: main's route.cu (.probe/s22b/route_main.cu, carried; made by
#            `git show main:optimized/kernels/route.cu`) against this tree's, bf16: the named-keys rows
#            (Qwen3-MoE, gpt-oss, DeepSeek-V2-Lite without a bias; Moonlight, GLM-4.5-Air with one), and
#            DeepSeek-V2 (the far check only) at T = 4096, 65536 and 262144; float32 Qwen3-MoE and DeepSeek-V2
#   suite    the GPU tests (about 300 s)
#   sanitize compute-sanitizer over every kernel and the looping grids (about 290 s)
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session22b.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
MAIN_ROUTE=${MAIN_ROUTE:-.probe/s22b/route_main.cu}
for step in "$@"; do
  case $step in
    smoke) gpu_smoke 150 ;;
    probe)
      [ -f "$MAIN_ROUTE" ] || { echo "probe: $MAIN_ROUTE is missing (carry .probe/s22b)"; exit 2; }
      SECONDS=0
      timeout 200 python3 tools/source_probe.py --variant main=$MAIN_ROUTE --variant cut=optimized/kernels/route.cu \
        --preset qwen3-moe --preset gpt-oss-120b --preset deepseek-v2-lite --preset deepseek-v2 \
        --preset moonlight-16b-a3b --preset glm-4.5-air --rows 4096,65536,262144 --rounds 3 --dtype bfloat16 \
        > "$OUT/source_probe_bf16.log" 2>&1
      echo "source_probe bf16 exit $? in ${SECONDS}s"; grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_bf16.log" | grep -v "^NVIDIA"
      SECONDS=0
      timeout 120 python3 tools/source_probe.py --variant main=$MAIN_ROUTE --variant cut=optimized/kernels/route.cu \
        --preset qwen3-moe --preset deepseek-v2 --rows 4096,262144 --rounds 3 --dtype float32 \
        > "$OUT/source_probe_fp32.log" 2>&1
      echo "source_probe float32 exit $? in ${SECONDS}s"; grep -E "^[a-z]|DIFFERS" "$OUT/source_probe_fp32.log" | grep -v "^NVIDIA" ;;
    suite) gpu_suite 470 ;;
    sanitize) gpu_sanitize ;;
    *) echo "gpu_session22b.sh: unknown step '$step' (smoke, probe, suite, sanitize)"; exit 2 ;;
  esac
done
