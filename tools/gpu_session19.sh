#!/usr/bin/env bash
# Device session 19: what ran on the H200 (docs/perf.md, session 19), as one script. Steps by name:
#   suite     gpu_smoke, then the whole GPU suite (about 400 s on a cold machine, 245 s warm)
#   sanbench  gpu_sanitize, then gpu_bench (`.peers/*` carried)
#   ncu       tools/gpu_session18b.sh (Nsight Compute on the two warp bound kernels, T = 262144 bf16)
#   probe     tools/source_probe.py: session 17's route.cu (aa98c9e, head) against this tree (new), DeepSeek-V3 and
#             GLM-4.5 at T = 65536 and 262144, bf16 and float32 (bitwise checked: "DIFFERS" on any change)
# Before it, here (the device has no git history): mkdir -p .probe/s19 &&
#   git show aa98c9e:optimized/kernels/route.cu > .probe/s19/route_head.cu   (then carry .probe)
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session19.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
for step in "$@"; do
  case $step in
    suite) gpu_smoke 120; gpu_suite 440 ;;
    sanbench) gpu_sanitize; gpu_bench 170 ;;
    ncu) bash tools/gpu_session18b.sh ;;
    probe)
      for dt in bfloat16 float32; do
        SECONDS=0
        timeout 90 python3 tools/source_probe.py --variant head=.probe/s19/route_head.cu \
          --variant new=optimized/kernels/route.cu --preset deepseek-v3 --preset glm-4.5 --rows 65536,262144 \
          --rounds 2 --dtype $dt > "$OUT/source_probe_$dt.log" 2>&1
        echo "source_probe $dt exit $? in ${SECONDS}s"; grep -E "^(deepseek|glm)|DIFFERS" "$OUT/source_probe_$dt.log"
      done ;;
    *) echo "gpu_session19.sh: unknown step '$step' (suite, sanbench, ncu, probe)"; exit 2 ;;
  esac
done
