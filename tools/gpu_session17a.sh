#!/usr/bin/env bash
# Device session 17, part 1: DeepSeek-V2 on the named keys (its groups ranked on the exact keys first, then
# 10 named keys a lane sorted once): the GPU tests of the segment kernels and the named keys, then
# session 16's route.cu against it and two shapes of it (tools/source_probe.py, bitwise checked): new4 held
# to 4 blocks per SM (64 registers, spilling), newla requesting each row one row ahead.
# Usage (GPU machine, repo root; .probe/s17 carried): OUT=dir bash tools/gpu_session17a.sh
source tools/gpu_env.sh
gpu_suite 240 named tests/test_optimized_gpu.py -k "named or segment or softmax_near"
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant head=.probe/s17/route_head.cu \
  --variant new=optimized/kernels/route.cu --variant new4=.probe/s17/route_new4.cu \
  --variant newla=.probe/s17/route_newla.cu --preset deepseek-v2 --rows 1,256,4096,16384,65536,262144 \
  --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "kernels \[" "$OUT/source_probe.log"
