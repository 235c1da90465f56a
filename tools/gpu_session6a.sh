#!/usr/bin/env bash
# Device session 6, part 1: the GPU suite on the new kernels (two kernels per table row, the branch-free
# softmax division, the row-per-thread kernel for E <= 32), then the same-machine A/B of the previous
# kernel (a copy of the last commit under .probe/old, put first on PYTHONPATH) against this one, then
# compute-sanitizer. Every log under $OUT.
# Usage (GPU machine, repo root, `.probe/old` carried): OUT=dir bash tools/gpu_session6a.sh
source tools/gpu_env.sh
SECONDS=0
timeout 280 python3 -m pytest -m gpu -q -p no:cacheprovider -x tests/test_optimized_gpu.py > "$OUT/pytest_opt.log" 2>&1
echo "pytest optimized exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_opt.log")"; grep -E "^FAILED|^ERROR|Error" "$OUT/pytest_opt.log" | head -20
ROWS="1 16 256 4096 65536 262144"
for who in new old; do
  SECONDS=0
  if [ $who = old ]; then PP=.probe/old; else PP=; fi
  PYTHONPATH=$PP timeout 150 python3 -m moegate.properties bench --impl optimized --preset all --rows $ROWS -q \
    --json > "$OUT/bench_$who.json" 2> "$OUT/bench_$who.err"; echo "bench $who exit $? in ${SECONDS}s"
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def load(who):
    doc = json.load(open(f"{out}/bench_{who}.json"))
    return {(r["preset"], r["T"]): r["us"] for r in doc["rows"] if r["status"] == "ok"}
try:
    new, old = load("new"), load("old")
    for key in sorted(new, key=lambda k: (k[0], k[1])):
        if key in old:
            print(f"{key[0]:20s} T={key[1]:>7d} old {old[key]:9.2f} us  new {new[key]:9.2f} us  new/old {new[key]/old[key]:.3f}")
except Exception as e:  # print the keys to fix the parser next time
    print("parse failed:", e); print(open(f"{out}/bench_new.json").read()[:1500])
PY
SECONDS=0
timeout 200 python3 tools/sanitize.py --log-dir "$OUT/sanitizer" > "$OUT/sanitize.log" 2>&1
echo "sanitize exit $? in ${SECONDS}s"; tail -4 "$OUT/sanitize.log"
tar czf "$OUT/sanitizer_logs.tgz" -C "$OUT" sanitizer && rm -rf "$OUT/sanitizer"
