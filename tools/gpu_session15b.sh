#!/usr/bin/env bash
# Device session 15, part 2: the whole GPU suite on the tree to be committed (the grid capped at the kernels'
# resident blocks where they leave a partial wave; the segment bound plan from 32 blocks per SM), with the
# peers' sources carried.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session15b.sh
source tools/gpu_env.sh
MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache gpu_suite 540
