#!/usr/bin/env bash
# Device session 17, part 3: DeepSeek-V2's named-keys kernel with its groups kept by xor shuffles inside the
# segment (group_kept_in_segment), the softmax's NaN filter on the rare path only, and 4 blocks per SM declared
# (cur: 64 registers); cur3 without the declaration (77 registers), curla also requesting each row one row
# ahead (spills); against session 16's route.cu and part 2's unf (tools/source_probe.py, bitwise checked).
# Then the GPU tests of the segment kernels, the named keys, the softmax near ties and non-finite rows.
# Usage (GPU machine, repo root; .probe/s17 carried): OUT=dir bash tools/gpu_session17c.sh
source tools/gpu_env.sh
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant head=.probe/s17/route_head.cu \
  --variant unf=.probe/s17/route_unf.cu --variant cur=optimized/kernels/route.cu \
  --variant cur3=.probe/s17/route_cur3.cu --variant curla=.probe/s17/route_curla.cu \
  --preset deepseek-v2 --rows 1,256,4096,16384,65536,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "kernels \[" "$OUT/source_probe.log"
gpu_suite 300 named tests/test_optimized_gpu.py \
  -k "named or segment or softmax_near or nonfinite or plans_agree or specialization_equals"
