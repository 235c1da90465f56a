#!/usr/bin/env bash
# Device session 12, part 3: the bound plan with the next row's logits requested ahead (build/route_prefetch.cu),
# with its shifted bias in shared memory instead of registers (the working tree), each also held to 64
# registers (*_lb4.cu), against the committed route.cu; the bound plan's GPU tests on the working tree.
# Usage (GPU machine, repo root, build/*.cu carried): OUT=dir bash tools/gpu_session12c.sh
source tools/gpu_env.sh
gpu_suite 120 bound tests/test_optimized_gpu.py -k "bound"
SECONDS=0
timeout 300 python3 tools/source_probe.py --variant head=build/route_head.cu --variant prefetch=build/route_prefetch.cu \
  --variant prefetch_lb4=build/route_prefetch_lb4.cu --variant smem=optimized/kernels/route.cu \
  --variant smem_lb4=build/route_smem_lb4.cu --preset deepseek-v3 --preset glm-4.5 --rows 4096,262144 --rounds 2 \
  > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "^#" "$OUT/source_probe.log" | tail -5 | cut -c1-250
