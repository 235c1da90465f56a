// moegate's C entry point into vLLM's fused grouped top-k routing kernels (the CUDA op grouped_topk).
//
// The build (properties/peers/vllm.py) writes vLLM's own csrc/moe/grouped_topk_kernels.cu, without its
// torch-stable op binding (which needs libtorch's C shim), as peer_source.cu next to this file; this file
// adds one extern "C" function that calls vLLM's host launcher vllm::moe::invokeNoAuxTc, as the op does
// for scoring_func=1 (sigmoid), with the op's own PDL rule (enabled for num_tokens <= 16). Nothing of the
// kernel is rewritten here.
//
// Dtype codes (moegate.optimized.dispatch.SCORE_DTYPE_CODES): 0 float32, 1 bfloat16, 2 float16. The
// weights are written as float32, the ids as int32, as the op allocates them.
#include "peer_source.cu"

#include <cstdio>
#include <exception>

namespace {
thread_local char g_error[2048];

template <typename S, typename B>
void call(const void* scores, const void* bias, float* values, int* ids, long long t, long long e, long long g,
          long long kg, long long k, bool renormalize, double r, bool pdl, cudaStream_t stream) {
  vllm::moe::invokeNoAuxTc<S, B, int32_t, vllm::moe::SCORING_SIGMOID>(
      const_cast<S*>(static_cast<const S*>(scores)), values, ids, static_cast<const B*>(bias), t, e, g, kg, k,
      renormalize, r, pdl, stream);
}

template <typename S>
int call_bias(int bias_dtype, const void* scores, const void* bias, float* values, int* ids, long long t,
              long long e, long long g, long long kg, long long k, bool renormalize, double r, bool pdl,
              cudaStream_t stream) {
  switch (bias_dtype) {
    case 0: call<S, float>(scores, bias, values, ids, t, e, g, kg, k, renormalize, r, pdl, stream); return 0;
    case 1: call<S, __nv_bfloat16>(scores, bias, values, ids, t, e, g, kg, k, renormalize, r, pdl, stream); return 0;
    case 2: call<S, half>(scores, bias, values, ids, t, e, g, kg, k, renormalize, r, pdl, stream); return 0;
    default: return -1;
  }
}
}  // namespace

extern "C" const char* moegate_peer_error() { return g_error; }

// Returns 0 on success; -1 for a dtype code we do not map; -2 when the launcher threw (message in
// moegate_peer_error); otherwise the CUDA error of the launch (the op itself does not check it).
extern "C" int moegate_peer_route(int score_dtype, int bias_dtype, const void* scores, const void* bias,
                                  float* values, int* ids, long long num_tokens, long long num_experts,
                                  long long n_group, long long topk_group, long long topk, int renormalize,
                                  double routed_scaling, void* stream) {
  g_error[0] = '\0';
  cudaGetLastError();
  int status = -1;
  bool pdl = num_tokens <= vllm::moe::PDLEnableTokens;  // the op's rule
  bool renorm = renormalize != 0;
  try {
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (score_dtype) {
      case 0: status = call_bias<float>(bias_dtype, scores, bias, values, ids, num_tokens, num_experts, n_group, topk_group, topk, renorm, routed_scaling, pdl, s); break;
      case 1: status = call_bias<__nv_bfloat16>(bias_dtype, scores, bias, values, ids, num_tokens, num_experts, n_group, topk_group, topk, renorm, routed_scaling, pdl, s); break;
      case 2: status = call_bias<half>(bias_dtype, scores, bias, values, ids, num_tokens, num_experts, n_group, topk_group, topk, renorm, routed_scaling, pdl, s); break;
      default: status = -1;
    }
  } catch (std::exception const& e) {
    std::snprintf(g_error, sizeof(g_error), "%s", e.what());
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
