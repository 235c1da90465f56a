#!/usr/bin/env bash
# Device session 10, part 7: written in session 10 and not run there (its device time was spent). The
# sign-off of commit 2dc08e4 in one run: the whole GPU suite (part 6's ran out of its time limit 6 tests
# before the end), compute-sanitizer over every kernel, and `moegate bench` against the peers on every
# preset with the host path (the one run docs/perf.md asks for). Logs under $OUT.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session10g.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
gpu_suite 320
gpu_sanitize
gpu_bench
