#!/usr/bin/env bash
# Device session 14, part 2: the tree to be committed (the segment kernel's bound plan for Moonlight and
# GLM-4.5-Air from 48 blocks per SM; the launcher's outputs from at::empty's allocator and its stream from
# c10): the launcher probe against session 13's launcher (build/launcher_13.cpp), the whole GPU suite with
# the peers' sources carried, and compute-sanitizer over every kernel in every plan.
# Usage (GPU machine, repo root, build/ and .peers/* carried): OUT=dir bash tools/gpu_session14b.sh
source tools/gpu_env.sh
SECONDS=0
timeout 150 python3 tools/launcher_probe.py --rounds 7 head=build/launcher_13.cpp new=installed \
  > "$OUT/launcher_probe.log" 2>&1
echo "launcher_probe exit $? in ${SECONDS}s"; grep -v "^\s*$" "$OUT/launcher_probe.log" | tail -8
MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache gpu_suite 300
gpu_sanitize
