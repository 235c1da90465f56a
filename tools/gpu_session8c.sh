#!/usr/bin/env bash
# Device session 8, part 3: `moegate bench` against the peers on every preset with the host path (the run
# docs/perf.md quotes), and the segment probe of the table's E <= 128 rows. Logs under $OUT.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session8c.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
SECONDS=0
timeout 400 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake \
  --impl vllm --preset all --dtype bfloat16 --host --out "$OUT/bench" > "$OUT/bench.log" 2>&1; echo "bench exit $? in ${SECONDS}s"
grep -E "^(optimized|vllm|flashinfer)" "$OUT/bench.log" | grep -E "deepseek-v3 |kimi-k2 |moonlight" | head -60
grep -A8 "^host path" "$OUT/bench.log"
SECONDS=0
timeout 150 python3 tools/segment_probe.py --preset moonlight-16b-a3b --preset deepseek-v2-lite --preset gpt-oss-120b \
  --preset llama-4-maverick --preset glm-4.5-air --preset qwen3-moe --rows 2048,4096,16384,65536,262144 > "$OUT/segment_probe.log" 2>&1
echo "segment_probe exit $? in ${SECONDS}s"
