#!/usr/bin/env bash
# Device session 26 (docs/perf.md, session 25's next steps), on main. Steps:
#   timeline  tools/block_timeline.py (its stores-only stamps, not yet run on a GPU) on DeepSeek-V3, Moonlight,
#             Qwen3-Next and Qwen3-MoE at T = 65536 and 262144, figures under $OUT/timeline: is the one-wave
#             kernels' ragged end (session 25's first stamps: DeepSeek-V3's drain 6.5 and 16 µs) still there
#             with smaller stamps, and what do the stamps cost (stamped over unstamped time)?
#   timeline_big  the same at T = 2^20 for DeepSeek-V3 and Qwen3-MoE: does the drain keep growing with T?
#   probe_c8  tools/source_probe.py, main's route.cu against select_by_named_keys' re-read first_id (the empty
#             asm) at C >= 8 instead of C > 8, on the segment presets with 8 experts a lane (carry .probe/s26,
#             made on the CPU: `cp optimized/kernels/route.cu .probe/s26/route_main.cu` and
#             `sed 's/if constexpr (C > 8) {/if constexpr (C >= 8) {/' ... > .probe/s26/route_c8.cu`, one line).
#             sass_report on the CPU: Qwen3-MoE's throughput kernel spills 8/8 bytes on main and none with it
#             (64 registers, row loop 1326 -> 1328 instructions), GLM-4.5-Air's 64 registers and 8/8 bytes
#             become 61 and none, Moonlight's 58 registers 48, DeepSeek-V2-Lite's 61 registers 48 with 4/4
#             bytes of spills, gpt-oss' 57 registers 60. Session 17 measured the re-read at 8 a lane 0.98x to
#             1.03x by preset; Qwen3-MoE is target 3's closest preset (1.237).
#   dump      the timeline of DeepSeek-V3, Moonlight, Qwen3-MoE and DeepSeek-V2 at T = 262144 with every warp's
#             record saved (--dump $OUT/records): timeline's figures end the one-wave grid's blocks of one SM at
#             three times (DeepSeek-V3: about 92, 107 and 130 us), which the records split into blocks and warps
#   probe_f32 the first_id re-read as landed (at 8 a lane where step 2 named the keys: the softmax rows) against
#             main's route.cu in float32, which probe_c8 left out (bf16 only)
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
    probe_c8)
      [ -f .probe/s26/route_c8.cu ] || { echo "probe_c8: .probe/s26/route_c8.cu is missing (carry it)"; exit 2; }
      preset_args qwen3-moe glm-4.5-air gpt-oss-120b deepseek-v2-lite moonlight-16b-a3b
      gpu_tool source_probe_c8 300 tools/source_probe.py --variant main=.probe/s26/route_main.cu \
        --variant c8=.probe/s26/route_c8.cu "${PRESET_ARGS[@]}" --rows 1,4096,65536,262144 --rounds 3 ;;
    dump)
      preset_args deepseek-v3 moonlight-16b-a3b qwen3-moe deepseek-v2
      gpu_tool block_timeline_dump 200 tools/block_timeline.py --dump "$OUT/records" "${PRESET_ARGS[@]}" \
        --rows 262144 ;;
    probe_f32)
      [ -f .probe/s26/route_main.cu ] || { echo "probe_f32: .probe/s26/route_main.cu is missing (carry it)"; exit 2; }
      preset_args qwen3-moe deepseek-v2-lite gpt-oss-120b
      gpu_tool source_probe_f32 200 tools/source_probe.py --variant main=.probe/s26/route_main.cu \
        --variant tree=optimized/kernels/route.cu "${PRESET_ARGS[@]}" --rows 4096,262144 --rounds 3 --dtype float32 ;;
    *) echo "gpu_session26.sh: unknown step '$step' (timeline, timeline_big, probe_c8, dump, probe_f32)"; exit 2 ;;
  esac
done
