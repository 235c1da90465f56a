#!/usr/bin/env bash
# Device session 10, part 4 (sign-off, on the tree as committed): `moegate bench` against the peers on every
# preset with the host path (the run docs/perf.md quotes), the GPU suite, and compute-sanitizer over every
# kernel. Logs under $OUT.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session10d.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
gpu_bench 150
gpu_suite 260
gpu_sanitize
