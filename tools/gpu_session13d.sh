#!/bin/bash
# Session 13, step d: the softmax rows' lazy division in the warp kernel's throughput plan (Qwen3-Next) and the
# segment kernel's load one row ahead: the selection tests and the new softmax near-tie test, then both
# timed against the committed kernels.
source tools/gpu_env.sh
gpu_suite 300 selection tests/test_optimized_gpu.py -k "segment or plans_agree or nonfinite or specialization_equals or softmax_near"
SECONDS=0
timeout 250 python3 tools/source_probe.py --variant head=build/route_head.cu --variant new=build/lazy.cu \
  --preset qwen3-next-80b-a3b --preset qwen3-moe --preset deepseek-v2-lite --rows 1,4096,65536,262144 \
  > "$OUT/source_probe_13d.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe_13d.log"
