#!/usr/bin/env bash
# Device session 11, part 3: the segment kernel's rounds over keys sorted per lane by a sorting network
# (no refills; part 2 showed that part 1's two heads per lane refilled after most rows' second win of a
# lane). The GPU tests of the specialized kernels against the generic one, then the committed route.cu
# (build/route_head.cu) against the working tree on the segment presets and DeepSeek-V3. Logs under $OUT.
# Usage (GPU machine, repo root, build/*.cu carried): OUT=dir bash tools/gpu_session11c.sh
source tools/gpu_env.sh
gpu_suite 150 seg "${SELECTION_TESTS[@]}"
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant head=build/route_head.cu --variant tree=optimized/kernels/route.cu \
  --preset deepseek-v3 --preset qwen3-moe --preset glm-4.5-air --preset gpt-oss-120b --preset deepseek-v2 \
  --preset deepseek-v2-lite --preset moonlight-16b-a3b --preset llama-4-maverick --rows 4096,262144 --rounds 2 \
  > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "^#" "$OUT/source_probe.log" | tail -18 | cut -c1-150
