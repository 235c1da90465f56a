#!/usr/bin/env bash
# Device session 8, part 4: the row-per-segment rows' plans at medium T after spreading the throughput
# plan's warps over the SMs (tools/plan_probe.py: latency plan, throughput plan, the latency kernel through
# its throughput path, and the dispatch's pick), then the GPU tests of the kernels and the launcher on the
# new geometry. Logs under $OUT. Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session8d.sh
source tools/gpu_env.sh
SECONDS=0
timeout 200 python3 tools/plan_probe.py --rows 1024,1057,2048,4096,8192,16384,65536 --preset moonlight-16b-a3b \
  --preset deepseek-v2-lite --preset glm-4.5-air --preset qwen3-moe --preset gpt-oss-120b --preset llama-4-maverick \
  > "$OUT/plan_probe.log" 2>&1
echo "plan_probe exit $? in ${SECONDS}s"; cut -c1-175 "$OUT/plan_probe.log"
SECONDS=0
timeout 300 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_optimized_gpu.py tests/test_native_gpu.py \
  tests/test_native_launcher.py tests/test_properties_gpu.py > "$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_gpu.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_gpu.log" | head
