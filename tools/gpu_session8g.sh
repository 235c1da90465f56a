#!/usr/bin/env bash
# Device session 8, part 7 (sign-off, on the tree as committed after the segment kernel's one-division
# output): `moegate bench` against the peers on every preset with the host path (the run docs/perf.md
# quotes), the GPU suite, and compute-sanitizer over every kernel. Logs under $OUT.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session8g.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
SECONDS=0
timeout 120 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake \
  --impl vllm --preset all --dtype bfloat16 --host --out "$OUT/bench" > "$OUT/bench.log" 2>&1; echo "bench exit $? in ${SECONDS}s"
grep -E "^optimized" "$OUT/bench.log" | grep -E "(moonlight|deepseek-v2-lite|glm-4.5-air|qwen3-moe|gpt-oss|llama-4).* (65536|262144) " | cut -c1-80
SECONDS=0
timeout 240 python3 -m pytest -m gpu -q -p no:cacheprovider tests > "$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_gpu.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_gpu.log" | head
SECONDS=0
timeout 110 python3 tools/sanitize.py > "$OUT/sanitize.log" 2>&1
echo "sanitize exit $? in ${SECONDS}s"; tail -3 "$OUT/sanitize.log" | cut -c1-120
