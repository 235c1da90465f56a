#!/usr/bin/env bash
# Device session 23 (docs/perf.md, session 22's next steps), on the branch wip/cut (numerators_in_fast_range
# and named_score_keys; its GPU suite and the sanitizer's 432 launches ran clean in session 22). Steps:
#   range    the new GPU test of numerators_in_fast_range (every float32 logit gap from -43 to 0)
#   sanloop  compute-sanitizer over the kernels whose blocks loop (about 140 s): the check session 22 left
#   bench    moegate bench against the peers, every preset, bf16, with the host path (about 80 s; carry
#            .peers/src .peers/cache .peers/cuda-include .peers/cublas)
#   peers    the peer tests the suite skipped without .peers (tests/test_peer_findings.py)
# Then merge wip/cut into main, its bench as docs/bench/bench_h200.json (session 22's to bench_h200_session22.*).
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session23.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
for step in "$@"; do
  case $step in
    range) gpu_suite 120 range tests/test_optimized_gpu.py -k fast_range ;;
    sanloop)
      SECONDS=0
      timeout 200 python3 tools/sanitize.py --looping > "$OUT/sanitize_looping.log" 2>&1
      echo "sanitize --looping exit $? in ${SECONDS}s"; tail -3 "$OUT/sanitize_looping.log" | cut -c1-120 ;;
    bench) gpu_bench 200 ;;
    peers) MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache gpu_suite 300 peers tests/test_peer_findings.py ;;
    *) echo "gpu_session23.sh: unknown step '$step' (range, sanloop, bench, peers)"; exit 2 ;;
  esac
done
