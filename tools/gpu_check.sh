#!/usr/bin/env bash
# One device-machine call: install, the GPU test suite, compute-sanitizer, and a first timing.
# Usage (on the GPU machine, repo root): OUT=/some/dir bash tools/gpu_check.sh [pytest args...]
# Every log is tee'd under $OUT.
set -o pipefail
OUT=${OUT:-/tmp/moegate_gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -3
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"; } | tee "$OUT/env.log"
timeout 300 python3 -m pytest -m gpu -q -p no:cacheprovider --maxfail=25 "${@:-tests}" 2>&1 | tee "$OUT/pytest_gpu.log" | tail -60
echo "pytest exit: $?"
timeout 200 python3 tools/sanitize.py --log-dir "$OUT" 2>&1 | tee "$OUT/sanitize.log"
timeout 75 python3 tools/bench_kernel.py 2>&1 | tee "$OUT/bench.log"
timeout 40 python3 tools/bench_kernel.py --preset kimi-k2 --rows 65536 2>&1 | tee -a "$OUT/bench.log"
timeout 40 python3 tools/bench_kernel.py --preset qwen3-next-80b-a3b --rows 65536 2>&1 | tee -a "$OUT/bench.log"
