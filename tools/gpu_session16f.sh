#!/usr/bin/env bash
# Device session 16, part 6: compute-sanitizer over every kernel and over the looping grids, then the bench
# against the peers on every preset with the host path, on the committed tree.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session16f.sh
source tools/gpu_env.sh
gpu_sanitize
gpu_bench 200
grep -A3 "^host path" "$OUT/bench.log" | cut -c1-160
