#!/usr/bin/env bash
# Device session 8, part 1: the throughput-plan kernels of the E <= 160 rows side by side
# (tools/segment_probe.py: warp per row, two rows per warp, L lanes per row; dispatch grid cap and
# occupancy cap; bitwise against the warp kernel). Logs under $OUT. Usage: OUT=dir bash tools/gpu_session8a.sh
source tools/gpu_env.sh
SECONDS=0
timeout 560 python3 tools/segment_probe.py 2>&1 | tee "$OUT/segment_probe.log"
echo "segment_probe exit $? in ${SECONDS}s"
