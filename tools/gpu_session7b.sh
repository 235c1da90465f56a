#!/usr/bin/env bash
# Device session 7, part 2: the row-per-half-warp kernel (E = 64 and 128 rows) on one H200: the kernel and
# launcher GPU tests, then the same-machine A/B against the last commit's package (.probe/old, first on
# PYTHONPATH) on the presets it serves and DeepSeek-V3. Logs under $OUT.
# Usage (GPU machine, repo root, `.probe/old` carried): OUT=dir bash tools/gpu_session7b.sh
source tools/gpu_env.sh
SECONDS=0
timeout 240 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_optimized_gpu.py tests/test_native_gpu.py \
  > "$OUT/pytest_opt.log" 2>&1
echo "pytest optimized+native exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_opt.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_opt.log" | head -20
ROWS="1 256 4096 65536 262144"
PRESETS="--preset deepseek-v3 --preset moonlight-16b-a3b --preset deepseek-v2-lite --preset glm-4.5-air --preset qwen3-moe --preset gpt-oss-120b --preset llama-4-maverick"
for who in new old; do
  SECONDS=0
  if [ $who = old ]; then PP=.probe/old; else PP=; fi
  PYTHONPATH=$PP timeout 150 python3 -m moegate.properties bench --impl optimized $PRESETS --rows $ROWS -q \
    --json > "$OUT/bench_$who.json" 2> "$OUT/bench_$who.err"; echo "bench $who exit $? in ${SECONDS}s"
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def load(who):
    doc = json.load(open(f"{out}/bench_{who}.json"))
    return {(r["preset"], r["T"]): (r["us"], r.get("floor_us")) for r in doc["rows"] if r["status"] == "ok"}
new, old = load("new"), load("old")
for key in sorted(new):
    if key in old:
        (n, f), (o, _) = new[key], old[key]
        print(f"{key[0]:20s} T={key[1]:>7d} old {o:9.2f} us  new {n:9.2f} us  new/old {n/o:.3f}  new/floor {n/f:.2f}")
PY
