#!/usr/bin/env bash
# Device session 16, part 4: the named keys as committed (part 2's shape: a row whose winners are out of order
# is left to the exact path, out of line; an id field of log2(E) bits; the bias table per block, written once
# the first row is requested) and GLM-4.5-Air without a segment bound plan: the named-keys GPU tests and
# session 15's route.cu against it (tools/source_probe.py, bitwise checked).
# Usage (GPU machine, repo root; .probe/s16 carried): OUT=dir bash tools/gpu_session16d.sh
source tools/gpu_env.sh
gpu_suite 120 named tests/test_optimized_gpu.py -k "named or segment"
SECONDS=0
timeout 150 python3 tools/source_probe.py --variant head=.probe/s16/route_head.cu \
  --variant new=optimized/kernels/route.cu --preset qwen3-moe --preset gpt-oss-120b --preset deepseek-v2-lite \
  --preset glm-4.5-air --preset moonlight-16b-a3b --rows 4096,16384,65536,262144 --rounds 2 \
  > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "kernels \[" "$OUT/source_probe.log"
