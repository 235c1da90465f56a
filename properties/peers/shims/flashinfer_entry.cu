// moegate's C entry point into FlashInfer's fused DeepSeek routing (fused_topk_deepseek, "noAuxTc").
//
// The build (properties/peers/flashinfer.py) writes FlashInfer's own csrc/fused_moe/noAuxTcKernels.cu,
// without its TVM-FFI binding (which needs FlashInfer's Python runtime), as peer_source.cu next to this
// file; this file adds one extern "C" function that calls FlashInfer's host launcher invokeNoAuxTc, the
// function the binding calls. -DFLASHINFER_CAKE_BACKEND selects the "cake" backend, as FlashInfer's JIT
// spec does. Nothing of the kernel is rewritten here.
//
// Dtype codes (moegate.optimized.dispatch.SCORE_DTYPE_CODES): 0 float32, 1 bfloat16, 2 float16. The
// weights are written in the scores' dtype (FlashInfer's OutputT = InputT), the ids as int32.
#include "peer_source.cu"

#include <cstdio>
#include <cstring>
#include <exception>

namespace {
thread_local char g_error[2048];

template <typename S, typename B>
void call(const void* scores, const void* bias, void* values, int* ids, long long t, long long e, long long g,
          long long kg, long long k, double r, bool pdl, cudaStream_t stream) {
  tensorrt_llm::kernels::invokeNoAuxTc<S, B, S, int32_t>(
      const_cast<S*>(static_cast<const S*>(scores)), const_cast<B*>(static_cast<const B*>(bias)),
      static_cast<S*>(values), ids, t, e, g, kg, k, r, pdl, stream, nullptr);
}

template <typename S>
int call_bias(int bias_dtype, const void* scores, const void* bias, void* values, int* ids, long long t,
              long long e, long long g, long long kg, long long k, double r, bool pdl, cudaStream_t stream) {
  switch (bias_dtype) {
    case 0: call<S, float>(scores, bias, values, ids, t, e, g, kg, k, r, pdl, stream); return 0;
    case 1: call<S, __nv_bfloat16>(scores, bias, values, ids, t, e, g, kg, k, r, pdl, stream); return 0;
    case 2: call<S, half>(scores, bias, values, ids, t, e, g, kg, k, r, pdl, stream); return 0;
    default: return -1;
  }
}
}  // namespace

extern "C" const char* moegate_peer_error() { return g_error; }

// Returns 0 on success; -1 for a dtype code we do not map; -2 when the launcher threw (message in
// moegate_peer_error); otherwise the CUDA error of the launch.
extern "C" int moegate_peer_route(int score_dtype, int bias_dtype, const void* scores, const void* bias,
                                  void* values, int* ids, long long num_tokens, long long num_experts,
                                  long long n_group, long long topk_group, long long topk, double routed_scaling,
                                  int launch_with_pdl, void* stream) {
  g_error[0] = '\0';
  cudaGetLastError();  // a stale, non-sticky error from someone else's launch is not ours
  int status = -1;
  try {
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    bool pdl = launch_with_pdl != 0;
    switch (score_dtype) {
      case 0: status = call_bias<float>(bias_dtype, scores, bias, values, ids, num_tokens, num_experts, n_group, topk_group, topk, routed_scaling, pdl, s); break;
      case 1: status = call_bias<__nv_bfloat16>(bias_dtype, scores, bias, values, ids, num_tokens, num_experts, n_group, topk_group, topk, routed_scaling, pdl, s); break;
      case 2: status = call_bias<half>(bias_dtype, scores, bias, values, ids, num_tokens, num_experts, n_group, topk_group, topk, routed_scaling, pdl, s); break;
      default: status = -1;
    }
  } catch (std::exception const& e) {
    std::snprintf(g_error, sizeof(g_error), "%s", e.what());
    return -2;
  } catch (...) {
    std::snprintf(g_error, sizeof(g_error), "a non-standard C++ exception");
    return -2;
  }
  if (status != 0) return status;
  cudaError_t launch = cudaGetLastError();
  if (launch != cudaSuccess) {
    std::snprintf(g_error, sizeof(g_error), "%s", cudaGetErrorString(launch));
    return static_cast<int>(launch);
  }
  return 0;
}
