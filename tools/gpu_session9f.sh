#!/usr/bin/env bash
# Device session 9, part 6 (sign-off, on the tree as committed): `moegate bench` against the peers on every
# preset with the host path (the run docs/perf.md quotes), the GPU suite, and compute-sanitizer over every
# kernel. Logs under $OUT.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session9f.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
gpu_bench 150 "1|256|65536|262144"
gpu_suite 260
gpu_sanitize
