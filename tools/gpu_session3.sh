#!/usr/bin/env bash
# Device session 3a: peers built, survey round 2 (+ deep) beside the GPU suite, then a quick bench.
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=/tmp/mgc
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
start=$(date +%s)
python3 - <<'PY' 2>&1 | tail -5
import torch
from moegate import optimized, reference
c = reference.get_preset("deepseek-v3"); s = torch.randn(5, 256, device="cuda"); b = torch.randn(256, device="cuda") * .05
i, w = optimized.route(s, b, c); torch.cuda.synchronize()
ri, rw = reference.route(s, b, c); print("smoke ids equal:", torch.equal(i, ri), "max w diff", float((w - rw).abs().max()))
PY
for p in flashinfer-default flashinfer-cake vllm; do
  python3 -c "from moegate.properties.impls import load_impl; load_impl('$p').prepare('cuda')" > "$OUT/build_$p.log" 2>&1 &
done; wait; echo "builds: $(( $(date +%s) - start ))s"
OMP_NUM_THREADS=1 timeout 330 python3 tools/peer_findings.py --out /tmp/survey --peers flashinfer-default,flashinfer-cake,vllm,compile \
  --deep --jobs 11 > "$OUT/survey.log" 2>&1 &
survey=$!
OMP_NUM_THREADS=3 timeout 400 python3 -m pytest -m gpu -q -s --maxfail=30 -p no:cacheprovider tests > "$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu exit $?: $(tail -1 "$OUT/pytest_gpu.log")"
wait $survey; echo "survey exit $? at $(( $(date +%s) - start ))s"
tar czf "$OUT/survey.tgz" -C /tmp survey
grep -v "^W1129\|torch._dynamo" "$OUT/survey.log" | cut -c1-140 | tail -60
timeout 120 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake --impl vllm \
  --preset deepseek-v3 --preset kimi-k2 --rows 1 256 4096 262144 --host -q > "$OUT/bench_quick.log" 2>&1
echo "bench exit $?"; cat "$OUT/bench_quick.log" | tail -30
grep -E "passed|failed|scale |verify --workers|FAILED|Error" "$OUT/pytest_gpu.log" | tail -30
