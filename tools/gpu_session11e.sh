#!/usr/bin/env bash
# Device session 11, part 5: the segment kernel's steps 6-8 with slot q in lane q (p read once, the routed
# sum by shuffles). The GPU tests of the specialized kernels against the generic one; then the committed
# route.cu (build/route_head.cu), part 3's tree (build/route_sort.cu) and the working tree side by side.
# Usage (GPU machine, repo root, build/*.cu carried): OUT=dir bash tools/gpu_session11e.sh
source tools/gpu_env.sh
gpu_suite 150 seg "${SELECTION_TESTS[@]}"
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant head=build/route_head.cu --variant sort=build/route_sort.cu \
  --variant tree=optimized/kernels/route.cu --preset qwen3-moe --preset glm-4.5-air --preset gpt-oss-120b \
  --preset deepseek-v2-lite --preset moonlight-16b-a3b --preset llama-4-maverick --rows 4096,262144 --rounds 2 \
  > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "^#" "$OUT/source_probe.log" | tail -12 | cut -c1-150
