#!/usr/bin/env bash
# Device session 15, part 4: the grid's cap at the resident blocks only where the blocks loop (the bench of
# part 3 showed Mixtral 1.08x at T = 262144 and Qwen3-Next 1.04x at 4096 where the cap made blocks loop that
# did not before): the GPU tests of the geometry and the launchers, the probe on those two rows, and the
# final `moegate bench`.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session15d.sh
source tools/gpu_env.sh
gpu_suite 240 geometry tests/test_optimized_gpu.py tests/test_native_gpu.py tests/test_native_launcher.py \
  -k "capped or native or launcher or switch or plans_agree or segment"
SECONDS=0
timeout 120 python3 tools/grid_probe.py --preset mixtral-8x7b --rows 262144,524288,1048576 --caps 0,16 \
  --rounds 2 > "$OUT/grid_probe_mixtral.log" 2>&1
timeout 90 python3 tools/grid_probe.py --preset qwen3-next-80b-a3b --rows 4096,8192,16384 --caps 0,8 \
  --rounds 2 > "$OUT/grid_probe_qwen.log" 2>&1
echo "grid_probe in ${SECONDS}s"; cat "$OUT/grid_probe_mixtral.log" "$OUT/grid_probe_qwen.log"
gpu_bench 300
grep -A3 "^host path" "$OUT/bench.log" | cut -c1-160
