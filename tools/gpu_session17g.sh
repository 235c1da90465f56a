#!/usr/bin/env bash
# Device session 17, part 7 (the last of the session's device time): the bench against the peers on every
# preset with the host path; the 9 GPU tests part 6's suite did not reach before its limit (those after
# tests/test_optimized_gpu.py); compute-sanitizer memcheck over the looping grids.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session17g.sh
source tools/gpu_env.sh
gpu_bench 200
grep -A3 "^host path" "$OUT/bench.log" | cut -c1-160
MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache gpu_suite 90 rest \
  tests/test_parallel.py tests/test_peer_findings.py tests/test_properties_gpu.py tests/test_reference_route.py
SECONDS=0
timeout 60 python3 tools/sanitize.py --looping --tools memcheck > "$OUT/sanitize_looping.log" 2>&1
echo "sanitize --looping memcheck exit $? in ${SECONDS}s"; tail -2 "$OUT/sanitize_looping.log" | cut -c1-120
