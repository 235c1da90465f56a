#!/usr/bin/env bash
# Device session 10, part 2: the committed route.cu (build/route_head.cu) against the working tree (row loop
# compiled once per layout, NaN logits of a sigmoid row handled on the exact path, shorter bias keys) on
# every preset, then the kernels' GPU tests. Logs under $OUT.
# Usage (GPU machine, repo root, build/route_head.cu carried): OUT=dir bash tools/gpu_session10b.sh
source tools/gpu_env.sh
SECONDS=0
timeout 240 python3 tools/source_probe.py --variant head=build/route_head.cu --variant tree=optimized/kernels/route.cu \
  --preset deepseek-v3 --preset kimi-k2 --preset moonlight-16b-a3b --preset glm-4.5 --preset glm-4.5-air \
  --preset qwen3-moe --preset qwen3-next-80b-a3b --preset deepseek-v2 --preset deepseek-v2-lite \
  --preset gpt-oss-120b --preset llama-4-maverick --preset mixtral-8x7b --rows 1,256,4096,65536,262144 --rounds 2 \
  > "$OUT/source_probe.log" 2>&1; echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe.log"
SECONDS=0
timeout 300 python3 -m pytest -m gpu -q -x -p no:cacheprovider tests/test_optimized_gpu.py tests/test_native_gpu.py \
  > "$OUT/pytest_opt.log" 2>&1
echo "pytest exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_opt.log")"; grep -E "^FAILED|^ERROR|Error" "$OUT/pytest_opt.log" | head -20
