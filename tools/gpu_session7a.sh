#!/usr/bin/env bash
# Device session 7, part 1: the compiled launcher on one H200: its build, its GPU tests, the host path
# (tools/host_path_probe.py and `moegate bench --host`), and the kernel tests through it. Logs under $OUT.
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session7a.sh
source tools/gpu_env.sh
SECONDS=0
python3 -c "from moegate.optimized import native; m = native.build_extension(); print('built', m.__name__)" \
  > "$OUT/build.log" 2>&1
echo "launcher build exit $? in ${SECONDS}s: $(tail -1 "$OUT/build.log")"
SECONDS=0
timeout 200 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_native_gpu.py tests/test_native_launcher.py \
  > "$OUT/pytest_native.log" 2>&1
echo "native tests exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_native.log")"; grep -E "^FAILED|^ERROR|Error" "$OUT/pytest_native.log" | head -20
timeout 120 python3 tools/host_path_probe.py 2>&1 | tee "$OUT/host_path_h200.txt"
timeout 120 python3 -m moegate.properties bench --impl optimized --preset deepseek-v3 --rows 1 --host \
  > "$OUT/bench_host.log" 2>&1; tail -15 "$OUT/bench_host.log"
SECONDS=0
timeout 200 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_optimized_gpu.py -x > "$OUT/pytest_optimized.log" 2>&1
echo "optimized GPU tests exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_optimized.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_optimized.log" | head
