#!/usr/bin/env bash
# Device session 10, part 6 (sign-off of the second change): the first change's route.cu (build/route_c1.cu,
# commit 9404496) against the working tree (staging in one array per warp, the throughput rounds' winners
# read from the staging area, the groups ranked by a spread count), then the GPU suite, compute-sanitizer
# over every kernel, and `moegate bench` against the peers with the host path. Logs under $OUT.
# Usage (GPU machine, repo root, build/route_c1.cu and `.peers/*` carried): OUT=dir bash tools/gpu_session10f.sh
source tools/gpu_env.sh
SECONDS=0
timeout 100 python3 tools/source_probe.py --variant c1=build/route_c1.cu --variant tree=optimized/kernels/route.cu \
  --preset deepseek-v3 --preset kimi-k2 --preset glm-4.5 --preset deepseek-v2 --preset moonlight-16b-a3b \
  --preset qwen3-next-80b-a3b --preset deepseek-v2-lite --rows 1,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -E "T=" "$OUT/source_probe.log"
gpu_suite 260
gpu_sanitize
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
gpu_bench 120
