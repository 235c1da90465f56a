#!/usr/bin/env bash
# Device session 16, part 1: the segment throughput plan's named keys (route.cu: select_by_named_keys): its
# GPU tests and the selection tests, the dispatch's kernels against session 15's route.cu (tools/source_probe.py,
# bitwise checked), and the throughput plan against the bound plan at large T (tools/grid_probe.py).
# Usage (GPU machine, repo root; .probe/s16/route_head.cu carried): OUT=dir bash tools/gpu_session16a.sh
source tools/gpu_env.sh
gpu_suite 240 named tests/test_optimized_gpu.py \
  -k "named or segment or plans_agree or nonfinite or specialization_equals or softmax_near or capped"
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant head=.probe/s16/route_head.cu \
  --variant new=optimized/kernels/route.cu --preset qwen3-moe --preset gpt-oss-120b --preset deepseek-v2-lite \
  --preset glm-4.5-air --preset moonlight-16b-a3b --rows 4096,65536,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe.log"
SECONDS=0
timeout 120 python3 tools/grid_probe.py --preset glm-4.5-air --preset moonlight-16b-a3b --rows 65536,262144 \
  --caps 0 --rounds 2 > "$OUT/grid_probe.log" 2>&1
echo "grid_probe exit $? in ${SECONDS}s"; cat "$OUT/grid_probe.log"
