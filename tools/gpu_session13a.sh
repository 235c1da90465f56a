#!/bin/bash
# Session 13, step a: the bound plan's warp kernel against the segment kernel for GLM-4.5-Air, Moonlight and
# Llama-4 (tools/bound_segment_probe.py).
source tools/gpu_env.sh
SECONDS=0
timeout 400 python3 tools/bound_segment_probe.py > "$OUT/bound_segment_probe.log" 2>&1
echo "bound_segment_probe exit $? in ${SECONDS}s"; cat "$OUT/bound_segment_probe.log"
