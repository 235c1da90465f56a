#!/usr/bin/env bash
# Final device session, part 1: findings recorded, the targeted survey and verify runs beside the GPU suite
# and the sanitizer. Everything goes into $OUT/all.tgz (+ the summary on stdout).
set -o pipefail
OUT=${OUT:-/tmp/out}; W=/tmp/final; mkdir -p "$OUT" $W
export PYTHONUNBUFFERED=1 MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
start=$(date +%s)
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"; } | tee $W/env.log
timeout 120 python3 tools/pin_peer_findings.py record --out $W/peer_findings > $W/record.log 2>&1; echo "record exit $?"
OMP_NUM_THREADS=1 timeout 240 python3 tools/peer_findings.py --out $W/survey3 --peers flashinfer-default,flashinfer-cake,vllm \
  --targeted --jobs 8 > $W/survey3.log 2>&1 &
bg1=$!
for p in flashinfer-default flashinfer-cake vllm compile; do
  ( s=$(date +%s); OMP_NUM_THREADS=1 timeout 300 python3 -m moegate.properties verify --impl $p -q --json --failures-dir $W/failures_$p \
      > $W/verify_$p.json 2> $W/verify_$p.err; echo "verify $p exit $? in $(( $(date +%s) - s ))s" >> $W/verify_times.log ) &
done
OMP_NUM_THREADS=3 timeout 240 python3 -m pytest -m gpu -q -p no:cacheprovider tests > $W/pytest_gpu.log 2>&1
echo "pytest -m gpu exit $?: $(tail -1 $W/pytest_gpu.log)"
timeout 170 python3 tools/sanitize.py --log-dir $W/sanitizer > $W/sanitize.log 2>&1
echo "sanitize exit $?"; grep -E "SUMMARY" $W/sanitize.log | tail -6
wait; echo "all done at $(( $(date +%s) - start ))s"; cat $W/verify_times.log
grep -E "passed|failed|scale |FAILED" $W/pytest_gpu.log | tail -12
grep -v "^W1129\|torch._dynamo" $W/survey3.log | cut -c1-140 | tail -30
tar czf "$OUT/all.tgz" -C /tmp final
