#!/usr/bin/env bash
# Device session 13, part 5: the tree to be committed (segment kernel's loads one row ahead, the softmax
# rows' lazy division in the warp kernel's throughput plan): the whole GPU suite with the peers' sources
# carried (so the peer-findings tests run too) and compute-sanitizer over every kernel in every plan.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session13e.sh
source tools/gpu_env.sh
MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache gpu_suite 380
gpu_sanitize
