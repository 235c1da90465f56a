#!/usr/bin/env bash
# Device session 9, part 5: T = 1 and 256 on every preset for the committed route.cu (segment template
# made compatible: build/route_head_compat.cu), the working tree with the ties taken by a match
# (build/route_match.cu) and the working tree (tau by one redux, the match only in rows with ties); then
# the kernels' GPU tests. Logs under $OUT.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session9e.sh
source tools/gpu_env.sh
SECONDS=0
timeout 260 python3 tools/source_probe.py --variant head=build/route_head_compat.cu --variant match=build/route_match.cu \
  --variant new=optimized/kernels/route.cu --preset deepseek-v3 --preset kimi-k2 --preset moonlight-16b-a3b \
  --preset glm-4.5 --preset glm-4.5-air --preset qwen3-moe --preset qwen3-next-80b-a3b --preset deepseek-v2 \
  --preset deepseek-v2-lite --preset gpt-oss-120b --preset llama-4-maverick --preset mixtral-8x7b --rows 1,256 --rounds 2 \
  > "$OUT/source_probe.log" 2>&1; echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe.log"
SECONDS=0
timeout 220 python3 -m pytest -m gpu -q -x -p no:cacheprovider tests/test_optimized_gpu.py tests/test_native_gpu.py > "$OUT/pytest_opt.log" 2>&1
echo "pytest exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_opt.log")"; grep -E "^FAILED|^ERROR|Error" "$OUT/pytest_opt.log" | head
