#!/usr/bin/env bash
# Device session 7, part 4: the sign-off on one H200: the whole GPU suite (kernels, the compiled launcher,
# properties), then compute-sanitizer (memcheck, racecheck, initcheck) over every kernel and both
# launchers. Logs under $OUT. Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session7d.sh
source tools/gpu_env.sh
SECONDS=0
timeout 400 python3 -m pytest -m gpu -q -p no:cacheprovider tests > "$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_gpu.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_gpu.log" | head
SECONDS=0
timeout 170 python3 tools/sanitize.py --log-dir "$OUT/sanitizer" > "$OUT/sanitize.log" 2>&1
echo "sanitize exit $? in ${SECONDS}s"; tail -4 "$OUT/sanitize.log"
tar czf "$OUT/sanitizer_logs.tgz" -C "$OUT" sanitizer && rm -rf "$OUT/sanitizer"
