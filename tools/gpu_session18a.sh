#!/usr/bin/env bash
# Device session 18, part 1 (as run, it timed out: the kernel hung, see docs/perf.md session 18): the warp
# bound kernel (DeepSeek-V3, GLM-4.5) selects a batch of rows, then finishes them together, each row's slots
# in 8 lanes (finish_rows_bound), against session 17's route.cu (tools/source_probe.py, bitwise checked;
# Moonlight for the closed-form id bytes of BoundConstants); then the bound plan's GPU tests (the new batch
# test among them) and the capped-grid tests. source_probe prints only at its end: give it 400 s.
# Usage (GPU machine, repo root; .probe/s18 carried): OUT=dir bash tools/gpu_session18a.sh
source tools/gpu_env.sh
SECONDS=0
timeout 400 python3 tools/source_probe.py --variant head=.probe/s18/route_head.cu \
  --variant new=optimized/kernels/route.cu --preset deepseek-v3 --preset glm-4.5 --preset moonlight-16b-a3b \
  --rows 4096,65536,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "kernels \[" "$OUT/source_probe.log"
gpu_suite 180 bound tests/test_optimized_gpu.py -k "bound or capped_grids"
