#!/usr/bin/env bash
# The whole GPU sign-off in one device call (about 9 minutes on an H200), every log under $OUT:
#   1. the deep property run on every dtype plus the planted review bug (tools/verify_gpu.py), in the
#      background while the rest runs;
#   2. the GPU test suite (pytest -m gpu);
#   3. compute-sanitizer memcheck / racecheck / initcheck (tools/sanitize.py);
#   4. a fixture set recorded by the kernel (to replay on a CPU against the reference), as a tarball;
#   5. the README's main job, `moegate verify`, as a user runs it on a GPU.
# Usage (GPU machine, repo root): OUT=/some/dir bash tools/gpu_final.sh
set -o pipefail
OUT=${OUT:-/tmp/moegate_gpu_final}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"; } | tee "$OUT/env.log"

timeout 420 python3 tools/verify_gpu.py --profile deep > "$OUT/verify_deep.log" 2>&1 &
deep=$!

timeout 330 python3 -m pytest -m gpu -q -p no:cacheprovider tests > "$OUT/pytest_gpu.log" 2>&1  # 275 s in session 15
echo "pytest -m gpu exit $?: $(tail -1 "$OUT/pytest_gpu.log")"

timeout 200 python3 tools/sanitize.py --log-dir "$OUT/sanitizer" > "$OUT/sanitize.log" 2>&1
echo "sanitize exit $?"; grep -E "SUMMARY|errors|hazards" "$OUT/sanitize.log" | tail -6
tar czf "$OUT/sanitizer_logs.tgz" -C "$OUT" sanitizer && rm -rf "$OUT/sanitizer"

timeout 60 python3 -m moegate.properties fixtures record --preset all --edge-cases --impl optimized \
  --out "$OUT/kernel_fixtures" -q > "$OUT/record.log" 2>&1
echo "record exit $?"
tar czf "$OUT/kernel_fixtures.tgz" -C "$OUT" kernel_fixtures && rm -rf "$OUT/kernel_fixtures"

timeout 90 python3 -m moegate.properties verify -q > "$OUT/moegate_verify.log" 2>&1
echo "moegate verify exit $?"; tail -14 "$OUT/moegate_verify.log"

wait $deep
echo "verify_gpu deep exit $?"; tail -25 "$OUT/verify_deep.log"
echo "pytest: $(tail -1 "$OUT/pytest_gpu.log")"
