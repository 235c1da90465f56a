#!/usr/bin/env bash
# Device session 17, part 6: the whole GPU suite on the tree that puts DeepSeek-V2 on the named keys (groups
# kept by group_kept_in_segment, the softmax's NaN filter on the rare path, 4 blocks per SM declared, each row
# requested ahead for 16-bit logits, the lane's first index read again each row), with the peers' sources
# carried; then compute-sanitizer over every kernel and over the looping grids.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session17f.sh
source tools/gpu_env.sh
MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache gpu_suite 300
gpu_sanitize
