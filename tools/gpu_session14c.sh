#!/usr/bin/env bash
# Device session 14, part 3: the last three GPU tests part 2's suite did not reach in its 300 s (it ran 761
# of 764, none failed), then `moegate bench` on every preset against the peers with the host path.
# Usage (GPU machine, repo root, .peers/* carried): OUT=dir bash tools/gpu_session14c.sh
source tools/gpu_env.sh
gpu_suite 200 rest "tests/test_properties_gpu.py::test_fused_kernel_passes_the_suite[bfloat16]" \
  tests/test_properties_gpu.py::test_planted_review_bug_is_killed \
  tests/test_reference_route.py::test_cuda_tensors_give_the_same_result_as_cpu
gpu_bench 300
