# Sourced by the device scripts (tools/gpu_session*.sh) before their own steps: $OUT made (default
# /tmp/out), unbuffered Python, the project installed editable (the device has no package registry), and
# the card, driver and versions written to $OUT/env.log and shown.
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"; } | tee "$OUT/env.log"

# The steps the device scripts share, each writing its log under $OUT and printing a summary:
# gpu_smoke [LIMIT_S] (tools/gpu_smoke.py: every kernel of the table at three small T against the generic
# kernel, each launch under a watchdog; run it first after any route.cu change: a hung kernel otherwise
# looks like a slow compile and spends the long steps' limits, docs/perf.md session 18),
# gpu_suite LIMIT_S [NAME PYTEST_ARGS...] (the GPU tests: all of tests/, or those PYTEST_ARGS pick, logged
# as $OUT/pytest_NAME.log, NAME "gpu" by default; a test past 150 s dumps its stack there, so a hung kernel
# names its test), gpu_sanitize (compute-sanitizer over every kernel, then
# over the kernels whose blocks loop), gpu_bench [LIMIT_S] [T_SHOWN] (moegate bench against the peers on
# every preset with the host path, `.peers/*` carried; its rows at the T of the regex T_SHOWN are printed).
gpu_suite() {
  local limit=$1 name=gpu
  shift
  if [ $# -gt 0 ]; then name=$1; shift; else set -- tests; fi
  SECONDS=0
  timeout "$limit" python3 -m pytest -m gpu -q -p no:cacheprovider -o faulthandler_timeout=150 "$@" \
    > "$OUT/pytest_$name.log" 2>&1
  echo "pytest -m gpu ($name) exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_$name.log")"
  { grep -E "^FAILED|^ERROR" "$OUT/pytest_$name.log" || true; } | head
}
# The GPU tests of the specialized kernels against the generic kernel and between plans (session 11's probes).
SELECTION_TESTS=(tests/test_optimized_gpu.py -k "segment or plans_agree or nonfinite or specialization_equals")
gpu_sanitize() {
  SECONDS=0
  timeout 300 python3 tools/sanitize.py > "$OUT/sanitize.log" 2>&1
  echo "sanitize exit $? in ${SECONDS}s"; tail -3 "$OUT/sanitize.log" | cut -c1-120
  SECONDS=0
  timeout 200 python3 tools/sanitize.py --looping > "$OUT/sanitize_looping.log" 2>&1
  echo "sanitize --looping exit $? in ${SECONDS}s"; tail -3 "$OUT/sanitize_looping.log" | cut -c1-120
}
gpu_bench() {
  SECONDS=0
  MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache timeout "${1:-150}" python3 -m moegate.properties \
    bench --impl optimized --impl flashinfer-default --impl flashinfer-cake --impl vllm --preset all --dtype bfloat16 \
    --host --out "$OUT/bench" > "$OUT/bench.log" 2>&1; echo "bench exit $? in ${SECONDS}s"
  grep -E "^optimized" "$OUT/bench.log" | grep -E " (${2:-1|4096|262144}) " | cut -c1-90
  { grep -A12 "^targets of" "$OUT/bench.log" || true; } | cut -c1-170
}
gpu_smoke() {
  SECONDS=0
  timeout "${1:-150}" python3 tools/gpu_smoke.py > "$OUT/smoke.log" 2>&1
  echo "gpu_smoke exit $? in ${SECONDS}s: $(tail -1 "$OUT/smoke.log")"
  { grep -E "DIFFERS|Timeout|Error" "$OUT/smoke.log" || true; } | head
}
# gpu_tool LOG LIMIT_S SCRIPT ARGS... (a probe of tools/: python3 SCRIPT ARGS under a limit, logged as
# $OUT/LOG.log; prints its exit and its lines but the card line and the indented progress rounds).
gpu_tool() {
  local log=$1 limit=$2
  shift 2
  SECONDS=0
  timeout "$limit" python3 "$@" > "$OUT/$log.log" 2>&1
  echo "$log exit $? in ${SECONDS}s"
  grep -v -e "^NVIDIA" -e "^  round" "$OUT/$log.log" | cut -c1-200
}
# preset_args PRESET... : --preset PRESET for each, in the array PRESET_ARGS.
preset_args() {
  PRESET_ARGS=()
  for p in "$@"; do PRESET_ARGS+=(--preset "$p"); done
}
