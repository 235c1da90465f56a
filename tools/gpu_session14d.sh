#!/usr/bin/env bash
# Device session 14, part 4: the two GPU tests of the compiled launcher's allocations written after part 2
# (outputs allocated during a CUDA graph capture; outputs counted by torch's caching allocator).
# Usage (GPU machine, repo root): OUT=dir bash tools/gpu_session14d.sh
source tools/gpu_env.sh
gpu_suite 200 alloc tests/test_native_gpu.py -k "capture or caching_allocator or side_stream"
