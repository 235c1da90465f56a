#!/usr/bin/env bash
# Final device session, part 2: the benchmark on a quiet GPU.
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
timeout 330 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake --impl vllm \
  --impl eager --preset all --dtype bfloat16 --host --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench exit $?"
timeout 180 python3 -m moegate.properties bench --impl compile --impl optimized --preset deepseek-v3 --preset kimi-k2 \
  --preset moonlight-16b-a3b --dtype bfloat16 --out $OUT/bench_compile > $OUT/bench_compile.log 2>&1; echo "bench compile exit $?"
grep -E "deepseek-v3|kimi-k2|moonlight" $OUT/bench.log | grep -E "optimized|vllm|flashinfer" | head -60
tail -12 $OUT/bench.log
timeout 60 python3 tools/host_path_probe.py 2>&1 | tee $OUT/host_path.log
