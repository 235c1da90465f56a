#!/usr/bin/env bash
# Device session 5, part 1: the two selection plans on the H200 (correctness first, then time), and the
# benchmark against the peers. Usage (GPU machine, repo root, `.peers` carried): OUT=dir bash tools/gpu_session5a.sh
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.log"
timeout 200 python3 -m pytest -m gpu -x -q -p no:cacheprovider tests/test_optimized_gpu.py > "$OUT/pytest_opt.log" 2>&1
echo "pytest optimized exit $?: $(tail -1 "$OUT/pytest_opt.log")"; grep -E "FAILED|Error" "$OUT/pytest_opt.log" | head -5
timeout 150 python3 tools/plan_probe.py > "$OUT/plan_probe.log" 2>&1; echo "plan probe exit $?"; cat "$OUT/plan_probe.log"
timeout 220 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake \
  --impl vllm --preset all --dtype bfloat16 --out "$OUT/bench" > "$OUT/bench.log" 2>&1; echo "bench exit $?"
grep -E "optimized" "$OUT/bench.log" | head -80; tail -5 "$OUT/bench.log"
