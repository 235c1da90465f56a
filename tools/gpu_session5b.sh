#!/usr/bin/env bash
# Device session 5, part 2: the sign-off of the faster kernel on one H200, every log under $OUT:
# the two plans side by side (tools/plan_probe.py), the GPU suite, compute-sanitizer, the benchmark
# against the peers (with the host path), the host path's breakdown.
# Usage (GPU machine, repo root, `.peers` carried): OUT=dir bash tools/gpu_session5b.sh
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"; } | tee "$OUT/env.log"
timeout 120 python3 tools/plan_probe.py --rows 1,16,256,1024,1056,1057,4096,262144 > "$OUT/plan_probe.log" 2>&1
echo "plan probe exit $?"; cut -c1-150 "$OUT/plan_probe.log"
timeout 200 python3 -m pytest -m gpu -q -p no:cacheprovider tests > "$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu exit $?: $(tail -1 "$OUT/pytest_gpu.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_gpu.log" | head
timeout 150 python3 tools/sanitize.py --log-dir "$OUT/sanitizer" > "$OUT/sanitize.log" 2>&1
echo "sanitize exit $?"; tail -3 "$OUT/sanitize.log"
tar czf "$OUT/sanitizer_logs.tgz" -C "$OUT" sanitizer && rm -rf "$OUT/sanitizer"
timeout 200 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake \
  --impl vllm --preset all --dtype bfloat16 --host --out "$OUT/bench" > "$OUT/bench.log" 2>&1; echo "bench exit $?"
grep -E "^(optimized|vllm|flashinfer)" "$OUT/bench.log" | grep -E "deepseek-v3 |kimi-k2 |moonlight" | head -60
timeout 60 python3 tools/host_path_probe.py > "$OUT/host_path.log" 2>&1; echo "host probe exit $?"; cat "$OUT/host_path.log"
