#!/usr/bin/env bash
# Device session 25 (docs/perf.md, session 24's next steps), on the branch wip/grid: its dispatch grows a
# looping grid in whole caps past LOOP_BLOCK_ROWS = 128 rows a block. Session 24's `grid_probe` found the
# looping kernels faster with the grid at 16 blocks per SM (four waves of 4 resident) than at the dispatch's
# 8 at T = 262144 (0.977x to 0.988x on every kernel tried), slower at 65536. These steps map that over the
# caps and the kernels, to fit the rule (session 25 fitted it: the growth only where the cap is a full SM):
#   grid_a   tools/grid_probe.py, the warp-kernel presets (DeepSeek-V3's throughput and bound kernels, Kimi-K2,
#            GLM-4.5, Qwen3-Next), T = 131072 and 262144
#   grid_b   the same for the segment presets with a bias or groups (DeepSeek-V2, Moonlight, GLM-4.5-Air,
#            Llama-4)
#   grid_c   the same for the softmax segment presets without a bias (Qwen3-MoE, gpt-oss, DeepSeek-V2-Lite)
#            and Mixtral's row-per-thread kernel
#   big      Qwen3-MoE, Kimi-K2 and DeepSeek-V2 (4 resident: the kernels whose grid grows) at T = 524288 and
#            1048576, caps 8, 16, 32 and the rule (32 and 64 per SM there): a rule must hold past the bench
# Caps are blocks per SM, the grid held there (grid_probe turns LOOP_BLOCK_ROWS off for a forced cap; $CAPS,
# by default 3, 6, 8, 12, 16 and 24): 3, 6, 12 and 24 are whole waves of a kernel with 3 resident
# (Qwen3-Next, the bound kernels), 8, 12, 16 and 24 of one with 4; main's grid is cap 3 or 8 (the dispatch's
# cap); 0 is the branch's rule, the ratios' base. grid_probe prints each timing as it is taken, so a step
# past its limit still leaves its rounds in the log. The rule that lands then owes tools/gpu_session24.sh's
# suite1, suite2 (peers carried), sanitize and bench (the bench runs the native launcher, whose grid
# launcher.cpp computes, held equal by the CPU tests).
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session25.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
grid_step() {  # NAME LIMIT_S ROWS PRESET...
  local name=$1 limit=$2 rows=$3
  shift 3
  preset_args "$@"
  gpu_tool "grid_probe_$name" "$limit" tools/grid_probe.py "${PRESET_ARGS[@]}" --rows "$rows" \
    --caps "${CAPS:-3,6,8,12,16,24,0}" --rounds 2
}
for step in "$@"; do
  case $step in
    grid_a) grid_step a 185 131072,262144 deepseek-v3 kimi-k2 glm-4.5 qwen3-next-80b-a3b ;;
    grid_b) grid_step b 175 131072,262144 deepseek-v2 moonlight-16b-a3b glm-4.5-air llama-4-maverick ;;
    grid_c) grid_step c 170 131072,262144 qwen3-moe gpt-oss-120b deepseek-v2-lite mixtral-8x7b ;;
    big) CAPS=8,16,32,0 grid_step big 150 524288,1048576 qwen3-moe kimi-k2 deepseek-v2 ;;
    *) echo "gpu_session25.sh: unknown step '$step' (grid_a, grid_b, grid_c, big)"; exit 2 ;;
  esac
done
