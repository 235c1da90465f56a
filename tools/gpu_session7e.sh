#!/usr/bin/env bash
# Device session 7, part 5: `moegate bench` against the peers on every preset with the host path (the
# run docs/perf.md quotes), the plans of the K = 1 row (tools/plan_probe.py), the host path's pieces,
# the pinned peer findings, and the re-run of tests/test_optimized_devices.py (its fresh-process test now
# also starts the compiled launcher's records afresh). Logs under $OUT.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session7e.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
SECONDS=0
timeout 120 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_optimized_devices.py > "$OUT/pytest_devices.log" 2>&1
echo "devices tests exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_devices.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_devices.log" | head
SECONDS=0
timeout 360 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake \
  --impl vllm --preset all --dtype bfloat16 --host --out "$OUT/bench" > "$OUT/bench.log" 2>&1; echo "bench exit $? in ${SECONDS}s"
grep -E "^(optimized|vllm|flashinfer)" "$OUT/bench.log" | grep -E "deepseek-v3 |kimi-k2 |moonlight" | head -60
grep -A8 "^host path" "$OUT/bench.log"
timeout 60 python3 tools/plan_probe.py --rows 1,16,256,1024,4096,262144 --preset llama-4-maverick > "$OUT/plan_probe.log" 2>&1
cut -c1-170 "$OUT/plan_probe.log"
timeout 60 python3 tools/host_path_probe.py > "$OUT/host_path_h200.txt" 2>&1; cat "$OUT/host_path_h200.txt"
SECONDS=0
timeout 100 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_peer_findings.py > "$OUT/pytest_peer_findings.log" 2>&1
echo "peer findings exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_peer_findings.log")"
