#!/usr/bin/env bash
# Device session 12, part 5: the bound plan as its own kernel (PLAN = 2, chosen by the dispatch from 16
# blocks per SM on) with its rare exact rows in a function that is not inlined (route_row_exact; the
# working tree, and build/route_ni_lb4.cu held to 64 registers), against part 4's best (build/route_x_lb4.cu,
# the bound path inside the throughput kernel) and the committed route.cu. The GPU tests of the plans first.
# Usage (GPU machine, repo root, build/*.cu carried): OUT=dir bash tools/gpu_session12e.sh
source tools/gpu_env.sh
gpu_suite 200 plans tests/test_optimized_gpu.py -k "bound or plans_agree or specialization_equals or switches"
SECONDS=0
timeout 300 python3 tools/source_probe.py --variant head=build/route_head.cu --variant x_lb4=build/route_x_lb4.cu \
  --variant ni=optimized/kernels/route.cu --variant ni_lb4=build/route_ni_lb4.cu \
  --preset deepseek-v3 --preset glm-4.5 --rows 4096,16384,65536,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "^#" "$OUT/source_probe.log" | tail -9 | cut -c1-200
