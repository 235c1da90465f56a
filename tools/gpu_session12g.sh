#!/usr/bin/env bash
# Device session 12, part 7: `moegate bench` on every preset against the peers with the host path, on the
# tree to be committed (.peers/* carried), the peer-findings GPU tests that need those sources, and how
# often the bound plan's rows fall back (tools/bound_probe.py, counting in route_row_bound). Logs, the
# JSON and the PNG under $OUT.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session12g.sh
source tools/gpu_env.sh
gpu_bench 400
MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache gpu_suite 90 peers tests/test_peer_findings.py
SECONDS=0
timeout 40 python3 tools/bound_probe.py > "$OUT/bound_probe.log" 2>&1
echo "bound_probe exit $? in ${SECONDS}s"; tail -4 "$OUT/bound_probe.log" | cut -c1-150
