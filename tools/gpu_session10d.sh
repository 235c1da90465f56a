#!/usr/bin/env bash
# Device session 10, part 4 (sign-off, on the tree as committed): `moegate bench` against the peers on every
# preset with the host path (the run docs/perf.md quotes), the GPU suite, and compute-sanitizer over every
# kernel. Logs under $OUT.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session10d.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
SECONDS=0
timeout 150 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake \
  --impl vllm --preset all --dtype bfloat16 --host --out "$OUT/bench" > "$OUT/bench.log" 2>&1; echo "bench exit $? in ${SECONDS}s"
grep -E "^optimized" "$OUT/bench.log" | grep -E " (1|4096|262144) " | cut -c1-90
SECONDS=0
timeout 260 python3 -m pytest -m gpu -q -p no:cacheprovider tests > "$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_gpu.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_gpu.log" | head
SECONDS=0
timeout 130 python3 tools/sanitize.py > "$OUT/sanitize.log" 2>&1
echo "sanitize exit $? in ${SECONDS}s"; tail -3 "$OUT/sanitize.log" | cut -c1-120
