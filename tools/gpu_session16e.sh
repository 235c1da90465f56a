#!/usr/bin/env bash
# Device session 16, part 5: the whole GPU suite on the committed tree (the named keys; GLM-4.5-Air without a
# segment bound plan), with the peers' sources carried.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session16e.sh
source tools/gpu_env.sh
MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache gpu_suite 540
