#!/usr/bin/env bash
# Device session 6, part 2: the sign-off of the final kernels on one H200: the whole GPU suite, then
# compute-sanitizer (memcheck, racecheck, initcheck) over every kernel. Every log under $OUT.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session6b.sh
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"; } | tee "$OUT/env.log"
SECONDS=0
timeout 330 python3 -m pytest -m gpu -q -p no:cacheprovider tests > "$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_gpu.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_gpu.log" | head
SECONDS=0
timeout 200 python3 tools/sanitize.py --log-dir "$OUT/sanitizer" > "$OUT/sanitize.log" 2>&1
echo "sanitize exit $? in ${SECONDS}s"; tail -3 "$OUT/sanitize.log"
tar czf "$OUT/sanitizer_logs.tgz" -C "$OUT" sanitizer && rm -rf "$OUT/sanitizer"
