#!/usr/bin/env bash
# Device session 15, part 6: compute-sanitizer over the kernels whose blocks loop (tools/sanitize.py
# --looping: every specialization's throughput and bound kernels, bf16, one block's rows past a full SM).
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session15f.sh
source tools/gpu_env.sh
SECONDS=0
timeout 270 python3 tools/sanitize.py --looping --log-dir "$OUT" > "$OUT/sanitize_looping.log" 2>&1
echo "sanitize --looping exit $? in ${SECONDS}s"; tail -3 "$OUT/sanitize_looping.log" | cut -c1-160
