#!/usr/bin/env bash
# Device session 26 (docs/perf.md, session 25's next steps), on main. Steps:
#   timeline  tools/block_timeline.py (its stores-only stamps, not yet run on a GPU) on DeepSeek-V3, Moonlight,
#             Qwen3-Next and Qwen3-MoE at T = 65536 and 262144, figures under $OUT/timeline: is the one-wave
#             kernels' ragged end (session 25's first stamps: DeepSeek-V3's drain 6.5 and 16 µs) still there
#             with smaller stamps, and what do the stamps cost (stamped over unstamped time)?
#   timeline_big  the same at T = 2^20 for DeepSeek-V3 and Qwen3-MoE: does the drain keep growing with T?
# The GPU suite, sanitizer and bench steps are tools/gpu_session24.sh's (suite1, suite2 with the peers carried,
# sanitize, bench), owed by any change to optimized/.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session26.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
TIMELINE=(tools/block_timeline.py --png "$OUT/timeline")
for step in "$@"; do
  case $step in
    timeline)
      preset_args deepseek-v3 moonlight-16b-a3b qwen3-next-80b-a3b qwen3-moe
      gpu_tool block_timeline_a 240 "${TIMELINE[@]}" "${PRESET_ARGS[@]}" --rows 65536,262144 ;;
    timeline_big)
      preset_args deepseek-v3 qwen3-moe
      gpu_tool block_timeline_big 200 "${TIMELINE[@]}" "${PRESET_ARGS[@]}" --rows 1048576 ;;
    *) echo "gpu_session26.sh: unknown step '$step' (timeline, timeline_big)"; exit 2 ;;
  esac
done
