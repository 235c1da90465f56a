#!/usr/bin/env bash
# Device session 18, part 1, for the next session (as first run in session 18 it timed out: the kernel hung,
# docs/perf.md session 18): the smoke run first; then the warp bound kernel (DeepSeek-V3, GLM-4.5) that
# selects a batch of rows and finishes them together (finish_rows_bound) against session 17's route.cu and
# against the same kernel held to 3 blocks per SM (80 registers; .probe/s18/route_batch_lb3.cu), with
# tools/source_probe.py (bitwise checked; Moonlight for the closed-form id bytes of BoundConstants; it prints
# only at its end); then the bound plan's GPU tests (the new batch test among them) and the capped grids.
# Usage (GPU machine, repo root, branch wip/bound-batch; .probe/s18 carried): OUT=dir bash tools/gpu_session18a.sh
source tools/gpu_env.sh
gpu_smoke 150
SECONDS=0
timeout 400 python3 tools/source_probe.py --variant head=.probe/s18/route_head.cu \
  --variant new=optimized/kernels/route.cu --variant lb3=.probe/s18/route_batch_lb3.cu --preset deepseek-v3 \
  --preset glm-4.5 --preset moonlight-16b-a3b --rows 4096,65536,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "kernels \[" "$OUT/source_probe.log"
gpu_suite 180 bound tests/test_optimized_gpu.py -k "bound or capped_grids"
