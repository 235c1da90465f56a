#!/usr/bin/env bash
# Device session 11, part 1: the segment kernel's selection by lane heads and its softmax without the
# per-logit NaN filter. The committed route.cu (build/route_head.cu), heads only (build/route_heads.cu) and
# the working tree side by side on the segment presets and DeepSeek-V3, bitwise checked against the first;
# then the GPU tests of the specialized kernels against the generic one, and the host path probe.
# Usage (GPU machine, repo root, build/*.cu and .peers/cache carried): OUT=dir bash tools/gpu_session11a.sh
source tools/gpu_env.sh
export MOEGATE_CACHE_DIR=$PWD/.peers/cache
gpu_suite 150 seg "${SELECTION_TESTS[@]}"
SECONDS=0
timeout 280 python3 tools/source_probe.py --variant head=build/route_head.cu --variant heads=build/route_heads.cu \
  --variant tree=optimized/kernels/route.cu --preset deepseek-v3 --preset qwen3-moe --preset glm-4.5-air \
  --preset gpt-oss-120b --preset deepseek-v2 --preset deepseek-v2-lite --preset moonlight-16b-a3b \
  --preset llama-4-maverick --rows 4096,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "^#" "$OUT/source_probe.log" | tail -60
SECONDS=0
timeout 60 python3 tools/host_path_probe.py > "$OUT/host_path.log" 2>&1; echo "host_path exit $? in ${SECONDS}s"
cat "$OUT/host_path.log"
