#!/usr/bin/env bash
# Device session 10, part 7: written in session 10 and not run there (its device time was spent). The
# sign-off of commit 2dc08e4 in one run: the whole GPU suite (part 6's ran out of its time limit 6 tests
# before the end), compute-sanitizer over every kernel, and `moegate bench` against the peers on every
# preset with the host path (the one run docs/perf.md asks for). Logs under $OUT.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session10g.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
SECONDS=0
timeout 320 python3 -m pytest -m gpu -q -p no:cacheprovider tests > "$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_gpu.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_gpu.log" | head
SECONDS=0
timeout 130 python3 tools/sanitize.py > "$OUT/sanitize.log" 2>&1
echo "sanitize exit $? in ${SECONDS}s"; tail -3 "$OUT/sanitize.log" | cut -c1-120
SECONDS=0
timeout 120 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake \
  --impl vllm --preset all --dtype bfloat16 --host --out "$OUT/bench" > "$OUT/bench.log" 2>&1; echo "bench exit $? in ${SECONDS}s"
grep -E "^optimized" "$OUT/bench.log" | grep -E " (1|4096|262144) " | cut -c1-90
