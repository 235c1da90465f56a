#!/usr/bin/env bash
# Device session 29: the record run of issue 9 on the landed tree (route.cu as session 26 left it; sessions 27
# and 28 changed only tools/), and the checks it owes. Steps:
#   headers  whether the toolkit has the headers FlashInfer's build includes (cublas_v2.h, cublasLt.h,
#            curand_kernel.h); where it lacks them, carry .peers/cuda-include (copied from the pip packages
#            nvidia-cublas and nvidia-curand, which `pip download --no-deps` fetches)
#   smoke    tools/gpu_smoke.py (every kernel of the table at three small T against the generic kernel)
#   bench    moegate bench against the peers, every preset, bf16, with the host path (carry .peers/src and
#            .peers/cuda-include; the peers build into .peers/cache on first use, which comes back as
#            $OUT/peers_cache.tgz to carry in the next call)
#   suite1   the GPU tests of tests/test_optimized_gpu.py
#   suite2   the other GPU tests, the peers carried
#   sanitize compute-sanitizer over every kernel, then over the kernels whose blocks loop
#   two      the two tests that need two GPUs in one process (tests/test_optimized_devices.py -k two), which
#            skip on one: run this step on a machine of kind nvidia-h200-x2
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session29.sh STEP...; each device call holds 600 s.
source tools/gpu_env.sh
for step in "$@"; do
  case $step in
    headers)
      for h in cublas_v2.h cublasLt.h curand_kernel.h; do
        if [ -f "/usr/local/cuda/include/$h" ]; then echo "$h: toolkit"
        elif [ -f ".peers/cuda-include/$h" ]; then echo "$h: .peers/cuda-include"
        else echo "$h: MISSING"; fi
      done ;;
    smoke) gpu_smoke 150 ;;
    bench)
      gpu_bench 420
      tar czf "$OUT/peers_cache.tgz" .peers/cache 2>/dev/null && ls -la "$OUT/peers_cache.tgz" ;;
    suite1) gpu_suite 300 suite1 tests/test_optimized_gpu.py ;;
    suite2) MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache \
              gpu_suite 420 suite2 tests --ignore=tests/test_optimized_gpu.py ;;
    sanitize) gpu_sanitize ;;
    two) gpu_suite 420 two_gpus tests/test_optimized_devices.py -k two -rs -s ;;
    *) echo "gpu_session29.sh: unknown step '$step' (headers, smoke, bench, suite1, suite2, sanitize, two)"; exit 2 ;;
  esac
done
