#!/usr/bin/env bash
# Device session 12, part 4: the bound plan with the row's logits kept in shared memory for the winners'
# exact p (the working tree; build/route_x_lb4.cu: held to 64 registers) against part 3's variants and the
# committed route.cu, from T = 4096 to 262144 (where the bound plan starts to pay).
# Usage (GPU machine, repo root, build/*.cu carried): OUT=dir bash tools/gpu_session12d.sh
source tools/gpu_env.sh
gpu_suite 120 bound tests/test_optimized_gpu.py -k "bound"
SECONDS=0
timeout 300 python3 tools/source_probe.py --variant head=build/route_head.cu --variant smem=build/route_smem.cu \
  --variant x=optimized/kernels/route.cu --variant x_lb4=build/route_x_lb4.cu \
  --preset deepseek-v3 --preset glm-4.5 --rows 4096,16384,65536,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "^#" "$OUT/source_probe.log" | tail -8 | cut -c1-200
