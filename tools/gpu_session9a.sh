#!/usr/bin/env bash
# Device session 9, part 1: the committed route.cu (build/route_head.cu, carried) against the working
# tree's, side by side (tools/source_probe.py: times, bitwise outputs, and the latency kernel's clock
# stamps at T = 1), then the optimized kernels' GPU tests. Logs under $OUT.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session9a.sh
source tools/gpu_env.sh
SECONDS=0
timeout 330 python3 tools/source_probe.py --variant head=build/route_head.cu --variant new=optimized/kernels/route.cu \
  --preset deepseek-v3 --preset kimi-k2 --preset moonlight-16b-a3b --preset glm-4.5-air --preset qwen3-moe \
  --preset deepseek-v2 --preset gpt-oss-120b --rows 1,256,4096,65536,262144 --rounds 2 --stamps \
  > "$OUT/source_probe.log" 2>&1; echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe.log"
SECONDS=0
timeout 200 python3 -m pytest -m gpu -q -x -p no:cacheprovider tests/test_optimized_gpu.py > "$OUT/pytest_opt.log" 2>&1
echo "pytest test_optimized_gpu exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_opt.log")"; grep -E "^FAILED|^ERROR|Error" "$OUT/pytest_opt.log" | head
