#!/usr/bin/env bash
# Device session 6, part 3: `moegate bench` against the peers on every preset (with the host path), and
# the two plans side by side (tools/plan_probe.py). Every log under $OUT.
# Usage (GPU machine, repo root, `.peers` carried): OUT=dir bash tools/gpu_session6c.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
SECONDS=0
timeout 330 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake \
  --impl vllm --preset all --dtype bfloat16 --host --out "$OUT/bench" > "$OUT/bench.log" 2>&1; echo "bench exit $? in ${SECONDS}s"
grep -E "^(optimized|vllm|flashinfer)" "$OUT/bench.log" | grep -E "deepseek-v3 |kimi-k2 |moonlight" | head -60
SECONDS=0
timeout 150 python3 tools/plan_probe.py --rows 1,16,256,1024,1056,1057,4096,262144 > "$OUT/plan_probe.log" 2>&1
echo "plan probe exit $? in ${SECONDS}s"; cut -c1-150 "$OUT/plan_probe.log"
SECONDS=0
timeout 100 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_peer_findings.py > "$OUT/pytest_peer_findings.log" 2>&1
echo "peer findings exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_peer_findings.log")"
