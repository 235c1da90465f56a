#!/usr/bin/env bash
# Device session 9, part 2: the committed route.cu (its segment kernel's template given the new G, KG
# parameters, unused: build/route_head_compat.cu, carried) against the working tree's, side by side
# (tools/source_probe.py, with the latency kernel's clock stamps at T = 1); DeepSeek-V2's and GLM-4.5's
# warp kernel against the segment kernel (tools/segment_probe.py); then the kernels' GPU tests.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session9b.sh
source tools/gpu_env.sh
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant head=build/route_head_compat.cu --variant new=optimized/kernels/route.cu \
  --preset deepseek-v3 --preset qwen3-moe --preset glm-4.5-air --preset gpt-oss-120b --preset moonlight-16b-a3b \
  --preset deepseek-v2-lite --preset llama-4-maverick --preset kimi-k2 --rows 1,256,4096,65536,262144 --rounds 2 --stamps \
  > "$OUT/source_probe.log" 2>&1; echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe.log"
SECONDS=0
timeout 120 python3 tools/segment_probe.py --preset deepseek-v2 --preset glm-4.5 --rows 4096,65536,262144 \
  > "$OUT/segment_probe.log" 2>&1; echo "segment_probe exit $? in ${SECONDS}s"; cat "$OUT/segment_probe.log"
SECONDS=0
timeout 220 python3 -m pytest -m gpu -q -x -p no:cacheprovider tests/test_optimized_gpu.py tests/test_native_gpu.py > "$OUT/pytest_opt.log" 2>&1
echo "pytest exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_opt.log")"; grep -E "^FAILED|^ERROR|Error" "$OUT/pytest_opt.log" | head
