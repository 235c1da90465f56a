#!/usr/bin/env bash
# Device session 15, part 5: the whole GPU suite on the committed tree (the resident-blocks cap only where the
# blocks loop, and only for the warp and segment kernels), with the peers' sources carried.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session15e.sh
source tools/gpu_env.sh
MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache gpu_suite 540
