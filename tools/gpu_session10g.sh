#!/usr/bin/env bash
# Device session 10, part 7: the GPU tests that part 6's suite did not reach before its time limit (the
# property suite on the fused kernel, the reference on CUDA tensors), on the tree as committed (latency
# kernels SASS-identical to part 4's, the others to part 6's), then `moegate bench` against the peers with
# the host path (the run docs/perf.md quotes). Logs under $OUT.
# Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session10g.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
SECONDS=0
timeout 100 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_properties_gpu.py tests/test_reference_route.py \
  tests/test_peer_findings.py > "$OUT/pytest_rest.log" 2>&1
echo "pytest exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_rest.log")"; grep -E "^FAILED|^ERROR" "$OUT/pytest_rest.log" | head
SECONDS=0
timeout 100 python3 -m moegate.properties bench --impl optimized --impl flashinfer-default --impl flashinfer-cake \
  --impl vllm --preset all --dtype bfloat16 --host --out "$OUT/bench" > "$OUT/bench.log" 2>&1; echo "bench exit $? in ${SECONDS}s"
grep -E "^optimized" "$OUT/bench.log" | grep -E " (1|4096|262144) " | cut -c1-90
