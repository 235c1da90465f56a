#!/usr/bin/env bash
# Device session 15, part 3: compute-sanitizer over every kernel in every plan, then `moegate bench` on every
# preset against the peers, with the host path (now also on each CPU).
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session15c.sh
source tools/gpu_env.sh
gpu_sanitize
gpu_bench 300
grep -A3 "^host path" "$OUT/bench.log" | cut -c1-160
