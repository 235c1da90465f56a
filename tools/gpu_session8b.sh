#!/usr/bin/env bash
# Device session 8, part 2: the GPU suite on the tree with the row-per-segment kernel in the table, and
# compute-sanitizer over every kernel (tools/sanitize.py). Logs under $OUT.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session8b.sh
source tools/gpu_env.sh
SECONDS=0
timeout 400 python3 -m pytest -m gpu -q -p no:cacheprovider tests > "$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_gpu.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_gpu.log" | head
SECONDS=0
timeout 180 python3 tools/sanitize.py > "$OUT/sanitize.log" 2>&1
echo "sanitize exit $? in ${SECONDS}s"; tail -8 "$OUT/sanitize.log"
