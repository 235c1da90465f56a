#!/usr/bin/env bash
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=/tmp/mgc OMP_NUM_THREADS=1
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
start=$(date +%s)
for p in flashinfer-default flashinfer-cake vllm; do
  python3 -c "from moegate.properties.impls import load_impl; load_impl('$p').prepare('cuda')" > "$OUT/build_$p.log" 2>&1 &
done; wait; echo "builds: $(( $(date +%s) - start ))s"
timeout 420 python3 tools/peer_findings.py --out /tmp/survey --peers flashinfer-default,flashinfer-cake,vllm,compile \
  --deep --jobs 13 > "$OUT/survey.log" 2>&1 &
survey=$!
OMP_NUM_THREADS=2 timeout 300 python3 -m pytest -m gpu -q -x -p no:cacheprovider tests > "$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu exit $?: $(tail -1 "$OUT/pytest_gpu.log")"
wait $survey; echo "survey exit $? after $(( $(date +%s) - start ))s"
tar czf "$OUT/survey.tgz" -C /tmp survey
cat "$OUT/survey.log" | cut -c1-150
