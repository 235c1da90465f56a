#!/usr/bin/env bash
# Device session 9, part 7 (after the group helpers were shared): the GPU suite, compute-sanitizer over every
# kernel, and the grouped rows' kernels before (build/route_committed.cu, carried) and after, side by side.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session9g.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
SECONDS=0
timeout 120 python3 tools/source_probe.py --variant before=build/route_committed.cu --variant after=optimized/kernels/route.cu \
  --preset deepseek-v3 --preset deepseek-v2 --rows 1,4096,65536,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "^NVIDIA" "$OUT/source_probe.log"
gpu_suite 260
gpu_sanitize
