#!/usr/bin/env bash
# Device session 11, part 4: the sign-off of the working tree (segment kernel: sorted rounds, softmax NaN
# rule on a rare path). Step "tests": the whole GPU suite and compute-sanitizer over every kernel; step
# "bench": `moegate bench` against the peers on every preset with the host path. Logs under $OUT.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session11d.sh tests|bench
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
case "$1" in
  tests) gpu_suite 330; gpu_sanitize ;;
  bench) gpu_bench ;;
  *) echo "usage: $0 tests|bench" >&2; exit 2 ;;
esac
