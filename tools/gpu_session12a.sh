#!/usr/bin/env bash
# Device session 12, part 1: the bound plan (route.cu: route_row_bound) in the warp kernel's throughput
# plan of DeepSeek-V3 and GLM-4.5. Its GPU tests with the selection tests, how often rows fall back
# (tools/bound_probe.py), and the committed route.cu (build/route_head.cu) against the working tree and
# against the working tree held to 64 registers (build/route_lb4.cu). Logs under $OUT.
# Usage (GPU machine, repo root, build/*.cu carried): OUT=dir bash tools/gpu_session12a.sh
source tools/gpu_env.sh
gpu_suite 240 bound tests/test_optimized_gpu.py -k "bound or plans_agree or specialization_equals or nonfinite"
SECONDS=0
timeout 60 python3 tools/bound_probe.py > "$OUT/bound_probe.log" 2>&1
echo "bound_probe exit $? in ${SECONDS}s"; tail -5 "$OUT/bound_probe.log" | cut -c1-150
SECONDS=0
timeout 220 python3 tools/source_probe.py --variant head=build/route_head.cu --variant bound=optimized/kernels/route.cu \
  --variant lb4=build/route_lb4.cu --preset deepseek-v3 --preset glm-4.5 --rows 4096,262144 --rounds 2 \
  > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "^#" "$OUT/source_probe.log" | tail -8 | cut -c1-170
