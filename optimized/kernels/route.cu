// moegate fused routing kernel: SPEC.md steps 1 to 8 in one launch, a warp (or a few lanes, or a thread)
// per row.
//
// What a call moves (DeepSeek-V3, bf16 scores, T rows): T * 256 * 2 bytes of logits read once, T * 9 *
// (4 + 4) bytes of ids and weights written once, the bias (1 KB) read once per warp. Nothing else
// touches global memory, so the floor is those bytes over the HBM bandwidth (docs/perf.md).
//
// Thread layout (the warp kernels; the row-per-thread kernel for E <= 32 is described above it)
//   * One warp routes one row at a time; the grid is capped by the launcher and every warp walks the
//     rows with a stride of the total warp count (grid-stride loop, 64-bit row index), so any T up to
//     2^63 fits in any grid and each warp loads the bias once.
//   * Lane l owns the contiguous experts [l * C, min((l + 1) * C, E)), C = ceil(E / 32). The same
//     ownership in both kernels makes every reduction happen in the same order, so the specialized
//     and the generic kernel return bitwise the same result (the tests check this).
//   * route_warp_kernel<DT, SCORING, E, G, KG, K, PLAN> (the dispatch table's rows, E % 32 == 0):
//     the row's C = E / 32 values live in registers; the logits come in with 16-, 8- or 4-byte vector
//     loads when the row pointer and the row stride allow it (checked in the kernel), else with scalar
//     loads; in the latency plan a warp requests its row's logits before its bias, so that the two
//     loads overlap (a single-row call waits for both). A group spans LPG = (E / G) / C lanes (a power
//     of two), so group reductions are shuffles inside aligned lane segments.
//   * route_segment_kernel<DT, SCORING, E, G, KG, K, L> (the throughput plan of the table rows with
//     E <= 128 and no groups, and of DeepSeek-V2; described above it): a warp routes 32 / L rows, one per
//     aligned segment of L lanes, lane q of a segment owning the experts of lanes q * 32 / L ..
//     (q + 1) * 32 / L - 1 above, so every order, and every bit, is theirs.
//   * route_generic_kernel<DT> (everything else, E <= MAX_EXPERTS of optimized/dispatch.py): the row's
//     keys live in shared memory, (E + G) words per warp, written and read only by the warp that owns them
//     (__syncwarp between phases, no block barrier).
//
// Reduction scheme
//   * Selection keys are 32-bit "orderable" integers: ord(b) is monotonic in b (-0 is made +0 first), and
//     ord(-inf) = 0x007fffff, so every real key is > 0 and 0 means "not a candidate" (expert of a dropped
//     group) or "already taken". An expert of a dropped group can never win, even when every kept expert
//     has b = -inf.
//   * An argmax round: each lane scans its own keys in ascending expert order with a strict '>' (lowest
//     index wins inside the lane), __reduce_max_sync gives the best key of the warp, and
//     __reduce_min_sync over the lanes that hold it gives the lowest expert index: SPEC's tie rule,
//     exactly, with two redux.sync instructions and no 64-bit shuffles.
//   * The specialized kernel first prunes: tau = the K-th largest of the 32 lane maxima is a lower bound
//     of the K-th largest key, so only keys >= tau can win. When at most 32 keys pass (the usual case),
//     they are staged in shared memory in ascending expert order, one per lane, and each of the K
//     rounds is one redux, one ballot and two shuffles instead of a scan of C keys per lane. Rows with
//     many exact ties fall back to the full rounds. Both paths select exactly the same experts.
//   * Two plans for those steps, each with its own kernel (template parameter PLAN), which the dispatch
//     chooses from T (optimized/dispatch.py: selection_plan). kPlanThroughput, for batches with enough
//     warps per scheduler to hide latency, spends the fewest instructions: tau by K rounds of two redux, the
//     staging offsets by a shuffle scan, the K winners by K redux rounds. kPlanLatency, for batches of
//     at most one block per SM, where the time is the row's dependency chain, replaces those chains by
//     independent work: tau and each staged candidate's slot by counts of the larger staged keys
//     (eight 16-byte shared-memory broadcasts, 32 independent comparisons; tau is then one redux, and
//     the slots add the equal keys below only in a row with ties), the staging offsets by one ballot per
//     register position, the routed sum from the parked slots. Same tau, same candidates, same slots:
//     bitwise the same output.
//   * A third plan, kPlanBound (its own kernel, the dispatch's choice for the largest batches of the sigmoid
//     rows with E <= 256: DeepSeek-V3 and GLM-4.5), routes each row on approximate keys (two hardware
//     approximations per expert instead of the exact sigmoid's dozen instructions), with the exact keys
//     of its K winners only, and proves that the result is the exact one: strict gaps, larger than the
//     approximation's proven error, at the group boundary and after the K-th key (the comment above
//     select_row_bound has the argument). A warp selects a batch of rows, then finishes them together, each
//     row's slots in their own lanes (finish_rows_bound). A row it cannot prove (about 1 in 100 random rows,
//     every row with ties there) is routed again exactly. Bitwise the same output as the other plans.
//   * The segment kernel's throughput plan, where named_keys_apply (kNamedKeys: Qwen3-MoE, gpt-oss,
//     DeepSeek-V2-Lite, Moonlight, GLM-4.5-Air, and DeepSeek-V2 after its group step), selects by keys that name
//     their expert: each key's low bits replaced by the expert's index, so a round is a segment maximum and
//     nothing else; it proves the result equal to the exact rounds' (select_by_named_keys has the argument)
//     and leaves a warp with a row it cannot prove to those rounds (none of random rows without a bias).
//   * The bound plan of the softmax rows with named keys and no groups that lazy_named_plan_applies admits
//     (kLazyNamed: Qwen3-MoE and DeepSeek-V2-Lite, for float32 logits):
//     the throughput plan's segment kernel, except that a row without a bias names the numerators
//     expf(x - rowmax) instead of p and divides only the winners and the bounds the proof needs
//     (select_by_named_keys has that argument too).
//   * The throughput plan's softmax rows without a bias (kLazySoftmax: Qwen3-Next) select on the numerators
//     expf(x - rowmax), whose order p = RN(e / sum) keeps, and divide only the staged candidates, which
//     include every expert whose p can tie the K-th (the argument is at its floor_key); the rounds then run
//     on those candidates' exact p, so the winners and slots are the other plans'.
//   * Float sums (softmax denominator, renormalization) are lane-sequential, then a fixed xor butterfly;
//     max reductions use __reduce_max_sync on orderable keys. No atomics: the result is bitwise
//     deterministic, and each row depends only on its own logits (and, in replica mode, its index).
//
// SPEC step names: probabilities, biased_scores, group_scores, group_selection, expert_selection,
// routed_weights, shared_slots, output_scaling are the device functions (or labelled sections) below.
//
// Numerics: all float32, no fast math (the launcher compiles with --fmad=false and never with
// -use_fast_math). sigmoid is 1 / (1 + expf(-x)) like torch's CUDA sigmoid, the reciprocal correctly
// rounded; softmax is expf(x - rowmax) / sum; divisions are IEEE divisions like torch's. The specialized
// kernels write the fast paths of rcp.rn and div.rn out branch-free (reciprocal_in_range,
// quotient_in_range: the same bits, checked on the GPU) and take the exact instruction for a row whose
// operands fall outside their range. bf16 is widened by a shift, fp16 with cvt.f32.f16, so this file needs
// no header and compiles under NVRTC and nvcc alike.
//
// MOEGATE_PLANT_REVIEW_BUG (compile-time, for the property suite only): reintroduces the public review
// bug: shared weight = sum(routed) / r, then every weight divided by the routed sum, and no output
// scaling.
// MOEGATE_PLANT_ROW_OFFSET_32 (likewise): a row's element offset row * row_stride computed in 32 bits
// (unsigned), so rows past 2^32 elements read the logits of a row near the start: the bug class of a
// kernel right on every batch up to a few million rows and wrong beyond. The scale property kills it.
//
// Programmatic dependent launch (sm_90+): the launcher may launch a call with the programmatic stream
// serialization attribute (small batches), so that it starts while the previous kernel on the stream
// finishes. Each kernel therefore waits for its predecessors (griddepcontrol.wait) before it reads or
// writes global memory, and at once lets its own successor launch (griddepcontrol.launch_dependents):
// the successor's own wait still holds it until this grid has completed and its writes are visible.

namespace moegate {

typedef unsigned int u32;
typedef unsigned short u16;
typedef long long i64;
typedef unsigned long long u64;

// Scores' dtype codes (template parameter DT) and bias dtype codes (runtime argument), as the launcher
// passes them (optimized/dispatch.py: SCORE_DTYPE_CODES, BIAS_DTYPE_CODES).
enum ScoreDtype { kScoreFloat32 = 0, kScoreBFloat16 = 1, kScoreFloat16 = 2 };
enum BiasDtype { kNoBias = 0, kBiasFloat32 = 1, kBiasBFloat16 = 2, kBiasFloat16 = 3 };
enum ScoringFunc { kSigmoid = 0, kSoftmax = 1 };

constexpr u32 kFullMask = 0xffffffffu;
constexpr u32 kNotCandidate = 0u;  // below ord(-inf) = 0x007fffff: dropped or already taken
constexpr u32 kNoIndex = 0xffffffffu;
constexpr float kRenormalizeEpsilon = 1e-20f;  // SPEC step 6
constexpr int kWarpSize = 32;
// Step 5's plan (chosen by optimized/dispatch.py from T; header comment): the specialized kernel's template
// parameter PLAN, and the kernels' runtime argument `plan` (which the latency kernel follows).
enum SelectionPlan { kPlanThroughput = 0, kPlanLatency = 1, kPlanBound = 2 };

// ---- scalar helpers ----------------------------------------------------------------------------------

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }
__device__ __forceinline__ float pos_inf() { return __int_as_float(0x7f800000); }

// SPEC step 2's rule: a NaN, wherever it enters or arises, is read as -inf.
__device__ __forceinline__ float nan_to_neg_inf(float x) { return x != x ? neg_inf() : x; }

__device__ __forceinline__ float bf16_bits_to_float(u16 h) {
  return __uint_as_float(static_cast<u32>(h) << 16);
}

__device__ __forceinline__ float f16_bits_to_float(u16 h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

// Monotonic float -> u32 (x is never NaN here). x + 0.0f turns -0 into +0 so that -0 and +0 tie, as they
// do in the reference's sort; every key, even ord(-inf), is > 0.
__device__ __forceinline__ u32 orderable(float x) {
  const u32 u = __float_as_uint(x + 0.0f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float from_orderable(u32 k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// A fixed xor butterfly: every lane ends with the same bits (a + b == b + a in IEEE).
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// a + b as inline PTX, so that a tree of sums keeps the shape it is written in (the compiler may
// re-associate plain integer adds into one chain; a single row's critical path is the depth of its sums).
__device__ __forceinline__ int tree_add(int a, int b) {
  int s;
  asm("add.s32 %0, %1, %2;" : "=r"(s) : "r"(a), "r"(b));
  return s;
}

// op over v[First .. First + Count) as a balanced tree (depth ceil(log2 Count) instead of a chain of
// Count - 1), split at compile time so that every index is a constant and the array stays in registers:
// written as a loop over the tree's widths, the tree of 16 was not unrolled, and ptxas emulated its
// indexing with predicated moves (Qwen3-Next T = 1: 2.55 -> 3.34 us on an H200).
template <int N, int First = 0, int Count = N, typename T, typename Op>
__device__ __forceinline__ T tree_reduce(const T (&v)[N], Op op) {
  static_assert(Count >= 1 && First + Count <= N, "a range inside v");
  if constexpr (Count == 1) {
    return v[First];
  } else {
    return op(tree_reduce<N, First, Count / 2>(v, op),
              tree_reduce<N, First + Count / 2, Count - Count / 2>(v, op));
  }
}

// The sum of v's N counts as a tree of tree_add.
template <int N>
__device__ __forceinline__ int tree_sum(const int (&v)[N]) {
  return tree_reduce(v, [](int a, int b) { return tree_add(a, b); });
}

template <int DT>
struct ScoreTraits;
template <>
struct ScoreTraits<kScoreFloat32> {
  typedef u32 Raw;
  static __device__ __forceinline__ float to_float(Raw r) { return __uint_as_float(r); }
};
template <>
struct ScoreTraits<kScoreBFloat16> {
  typedef u16 Raw;
  static __device__ __forceinline__ float to_float(Raw r) { return bf16_bits_to_float(r); }
};
template <>
struct ScoreTraits<kScoreFloat16> {
  typedef u16 Raw;
  static __device__ __forceinline__ float to_float(Raw r) { return f16_bits_to_float(r); }
};

// One logit, widened to float32, NaN read as -inf.
template <int DT>
__device__ __forceinline__ float load_logit(const typename ScoreTraits<DT>::Raw* row, int e) {
  return nan_to_neg_inf(ScoreTraits<DT>::to_float(__ldg(row + e)));
}

// One bias entry read as float32 from its own dtype (never as the scores' type); 0 when absent.
__device__ __forceinline__ float load_bias(const void* bias, int bias_dtype, int e) {
  switch (bias_dtype) {
    case kBiasFloat32:
      return nan_to_neg_inf(__ldg(static_cast<const float*>(bias) + e));
    case kBiasBFloat16:
      return nan_to_neg_inf(bf16_bits_to_float(__ldg(static_cast<const u16*>(bias) + e)));
    case kBiasFloat16:
      return nan_to_neg_inf(f16_bits_to_float(__ldg(static_cast<const u16*>(bias) + e)));
    default:
      return 0.0f;
  }
}

// The first element of row `row` (64-bit offset; the planted bug wraps it at 2^32 elements).
template <typename Raw>
__device__ __forceinline__ const Raw* row_start(const void* scores, i64 row, i64 row_stride) {
#ifdef MOEGATE_PLANT_ROW_OFFSET_32
  const u32 wrapped = static_cast<u32>(static_cast<u64>(row) * static_cast<u64>(row_stride));
  return static_cast<const Raw*>(scores) + wrapped;
#else
  return static_cast<const Raw*>(scores) + row * row_stride;
#endif
}

// Programmatic dependent launch (header comment): wait for the previous grids, then release the next.
// `computed_first` is an input of the wait, so the arithmetic that produces it (the launch's 1 / r, whose
// exact reciprocal has a slow-path call) runs before the wait, in the previous kernel's shadow, and not
// between the wait and a row's loads, where ptxas had put it (and where its call also made ptxas spill a
// register that the row's address then waited for: a single row's critical path, T = 1).
__device__ __forceinline__ void wait_for_predecessors_and_release_successor(float computed_first) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::"f"(computed_first) : "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#else
  (void)computed_first;
#endif
}

// ---- step 1: probabilities ------------------------------------------------------------------------------
// The softmax needs three row statistics; sigmoid needs none. `probability` is the one formula both
// kernels use, for the selection and again for the weights, so p is bitwise the same everywhere.
struct SoftmaxRow {
  float max;       // row maximum (finite, +inf or -inf)
  float sum;       // sum of expf(x - max) when max is finite
  float inf_share; // 1 / (number of +inf entries) when max is +inf
};

// The sigmoid's denominator 1 + expf(-x), in [1, +inf].
__device__ __forceinline__ float sigmoid_denominator(float x) { return 1.0f + expf(-x); }

// torch's CUDA sigmoid, 1 / (1 + expf(-x)); rcp.rn is the correctly rounded 1 / y, the same bits as the
// IEEE division, with a shorter instruction sequence. sigmoid(+inf) = 1, sigmoid(-inf) = 0.
__device__ __forceinline__ float sigmoid(float x) { return __frcp_rn(sigmoid_denominator(x)); }

// Denominators from here on take the exact path (their reciprocal is at most 2^-126: subnormal territory).
constexpr float kFastReciprocalLimit = 0x1p126f;

// 1 / y correctly rounded for y in [1, 2^126), without a branch: the hardware reciprocal approximation and
// one Newton step with fused multiply-adds. This is rcp.rn's own fast path (ptxas emits the same
// MUFU.RCP and Newton step inline, and calls a slow subroutine only for operands near the ends of the
// exponent range), so it gives rcp.rn's bits; tests/test_optimized_gpu.py checks that on every float in
// [1, 2^126) on the GPU at hand. Why it exists: rcp.rn's subroutine call puts a branch and a
// convergence barrier around every reciprocal, so the C sigmoids of a lane ran one after another
// instead of overlapping.
__device__ __forceinline__ float reciprocal_in_range(float y) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(y));
  const float e = __fmaf_rn(-y, r, 1.0f);
  return __fmaf_rn(r, e, r);
}

// The bits warp_sum gives when lane l < N holds v[l] and the other lanes hold 0 (the warp kernels' sums
// for E <= 32, one expert per lane, and for the K routed slots, slot k in lane k), computed by one thread:
// at offset d, lane l adds lane l ^ d's value, which for l < d is lane l + d's; lane 0's final value is
// every lane's. The lanes from N on hold +0 throughout, and adding +0 to a value that is not -0 returns
// it, so those adds are skipped (the values summed here are exps and probabilities: never -0).
template <int N>
__device__ __forceinline__ float butterfly_sum(const float (&v)[N]) {
  static_assert(1 <= N && N <= kWarpSize, "one value per lane");
  float a[kWarpSize];
#pragma unroll
  for (int l = 0; l < kWarpSize; ++l) a[l] = l < N ? v[l] : 0.0f;
#pragma unroll
  for (int d = kWarpSize / 2; d > 0; d >>= 1) {
#pragma unroll
    for (int l = 0; l < d; ++l) {
      if (l + d < N) a[l] = a[l] + a[l + d];
    }
  }
  return a[0];
}

// Step 1, sigmoid, for N logits in place (specialized kernels), bitwise `sigmoid` of each, a NaN logit
// read as -inf (p = 0): branch-free reciprocals unless a denominator is >= 2^126 or NaN (a logit below
// about -87.3, -inf or NaN), in which case all N take the exact path, which also gives a NaN logit its 0.
// The logits come unfiltered (RowLoader::widen): a NaN stays NaN through 1 + expf(-x), so the NaN rule
// costs nothing in rows without one (it was a compare and a select per logit). kWholeWarp: the N logits
// are a lane's share of a row the warp routes together, and one vote of the warp decides for the whole
// row (warp-uniform, so the fast path keeps the warp converged). Otherwise the decision is the thread's
// own (its N logits are its whole row, or its share of a row a segment routes: both paths give rcp.rn's
// bits, so who decides changes no result).
template <int N, bool kWholeWarp>
__device__ __forceinline__ void sigmoid_in_place(float (&x)[N]) {
  float y[N];
  bool far = false;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    y[j] = sigmoid_denominator(x[j]);
    far |= !(y[j] < kFastReciprocalLimit);
  }
  if constexpr (kWholeWarp) far = __any_sync(kFullMask, far);
  if (far) {
#pragma unroll
    for (int j = 0; j < N; ++j) x[j] = y[j] != y[j] ? 0.0f : __frcp_rn(y[j]);  // NaN: sigmoid(-inf)
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) x[j] = reciprocal_in_range(y[j]);
  }
}

// Numerators below this (and above 0) take the exact path: quotient_in_range needs every intermediate
// of its Newton steps to stay a normal float (the quotient at least 2^-74 for a denominator below 2^10).
constexpr float kFastQuotientMin = 0x1p-64f;

// a / b correctly rounded (the IEEE division's bits) for a = 0 or a in [2^-64, 1] and b in [1, 2^10],
// without a branch: b's correctly rounded reciprocal y (reciprocal_in_range), q = a * y, then two
// corrections q += (a - b * q) * y with fused multiply-adds. The first brings q within one ulp of a / b;
// from there the exact remainder and y = RN(1 / b) make the second correction round to RN(a / b)
// (Markstein's theorem). This is div.rn's own fast path, without the operand check that branches to
// its slow subroutine; tests/test_optimized_gpu.py checks it against div.rn on every numerator
// mantissa for thousands of denominators and on random pairs over the whole range, on the GPU at hand.
// Why it exists: like rcp.rn, each division's slow-path branch kept a lane's C softmax divisions from
// overlapping (Qwen3-Next, C = 16, was 1.9x DeepSeek-V3's time at T <= 256).
__device__ __forceinline__ float quotient_in_range(float a, float b) {
  const float y = reciprocal_in_range(b);
  const float q0 = __fmul_rn(a, y);
  const float r0 = __fmaf_rn(-b, q0, a);
  const float q1 = __fmaf_rn(r0, y, q0);
  const float r1 = __fmaf_rn(-b, q1, a);
  return __fmaf_rn(r1, y, q1);
}

// Whether quotient_in_range(a, b) is a / b for this numerator (the denominators here are softmax sums:
// at least 1, the row maximum's own term, and at most E <= 1024 < 2^10).
__device__ __forceinline__ bool quotient_in_range_ok(float a) { return a == 0.0f || a >= kFastQuotientMin; }

// Whether every numerator expf(x - row_max) of a lane whose least logit is `least` is in
// quotient_in_range_ok's range, from the least logit alone (one compare, where each numerator's two took
// about 2.5 instructions): d = RN(x - row_max) >= RN(least - row_max) for each x (rounding is monotonic), so
// if that is at least -kFastLogitGap, every numerator is at least expf(-kFastLogitGap) (expf within 2 ulp of
// exp: e^-43 (1 - 2^-21) > 2^-63), above kFastQuotientMin = 2^-64 by a factor of 3.9. It may say no
// where every numerator is in range (a lane with a logit more than 43 below the maximum, whose numerator may
// be 0): those take the exact path, as they would for a numerator below 2^-64; NaN or -inf says no too.
constexpr float kFastLogitGap = 43.0f;
__device__ __forceinline__ bool numerators_in_fast_range(float least, float row_max) {
  return least - row_max >= -kFastLogitGap;
}

// x[j] = numerator[j] / sum for N softmax numerators, div.rn's bits: branch-free (quotient_in_range) unless
// `far` (some numerator outside quotient_in_range_ok, decided by the caller for its lane or its warp).
template <int N>
__device__ __forceinline__ void divide_by_sum(const float (&numerator)[N], float sum, bool far, float (&x)[N]) {
  if (far) {
#pragma unroll
    for (int j = 0; j < N; ++j) x[j] = numerator[j] / sum;
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) x[j] = quotient_in_range(numerator[j], sum);
  }
}

// The least of N logits as a tree of fminf (float_max_in_tree's; a NaN is ignored, all NaN give NaN).
template <int N>
__device__ __forceinline__ float float_min_in_tree(const float (&x)[N]) {
  return tree_reduce(x, [](float a, float b) { return fminf(a, b); });
}

// The largest of N logits as a tree of fmaxf (tree_reduce), one instruction per logit where max over
// orderable keys took four. fmaxf ignores a NaN (all NaN give NaN: softmax_segment_in_place relies on
// both). Where the logits hold both -0 and +0 it may return either; its callers take orderable() of it,
// which maps both to the same key.
template <int N>
__device__ __forceinline__ float float_max_in_tree(const float (&x)[N]) {
  return tree_reduce(x, [](float a, float b) { return fmaxf(a, b); });
}

// p of one logit for a compile-time scoring function (branch-free: the row's cases are selects).
template <int SCORING>
__device__ __forceinline__ float probability_of(float x, const SoftmaxRow& row) {
  if constexpr (SCORING == kSigmoid) {
    (void)row;
    return sigmoid(x);
  } else {
    float p = expf(x - row.max) / row.sum;                              // finite row maximum
    p = row.max == pos_inf() ? (x == pos_inf() ? row.inf_share : 0.0f) : p;  // +inf entries share 1
    return row.max == neg_inf() ? 0.0f : p;                             // a row of all -inf
  }
}

// The same for a runtime scoring function (the generic kernel): the very same formulas.
__device__ __forceinline__ float probability(float x, int scoring, const SoftmaxRow& row) {
  return scoring == kSigmoid ? probability_of<kSigmoid>(x, row) : probability_of<kSoftmax>(x, row);
}

// The row statistics from each lane's share: local_max = max ord(x), local_sum = lane-sequential sum of
// expf(x - max) (computed by `sum_fn(max)`), local_inf = number of +inf entries.
template <typename SumFn>
__device__ __forceinline__ SoftmaxRow softmax_row(u32 local_max, u32 local_inf, SumFn sum_fn) {
  SoftmaxRow row;
  row.max = from_orderable(__reduce_max_sync(kFullMask, local_max));
  row.sum = 1.0f;
  row.inf_share = 0.0f;
  if (row.max == pos_inf()) {
    row.inf_share = 1.0f / static_cast<float>(__reduce_add_sync(kFullMask, local_inf));
  } else if (row.max != neg_inf()) {
    row.sum = warp_sum(sum_fn(row.max));
  }
  return row;
}

// Step 1, softmax, for N logits in place, without its divisions (specialized kernels): in a row whose maximum
// is finite, x becomes the numerators expf(x - rowmax), and the row's sum is returned (softmax_row's, each
// exp computed once), with `far` set when some numerator is in (0, 2^-64) (a logit more than about 44
// below the row maximum: quotient_in_range does not take it); otherwise (a maximum of +inf or -inf) x
// becomes p itself and 1 is returned. `finite` says which. kWholeWarp: the N logits are a lane's share of
// a row the warp routes together; the row statistics are warp reductions, the sum lane-sequential then the
// xor butterfly, and `far` a warp vote. Otherwise they are one thread's whole row (E <= 32, one expert per
// lane in the warp kernels' layout); the sum replays that butterfly (butterfly_sum), and the thread
// decides alone.
template <int N, bool kWholeWarp>
__device__ __forceinline__ float softmax_numerators_in_place(float (&x)[N], bool& far, bool& finite) {
  u32 max_key = orderable(float_max_in_tree<N>(x));
  if constexpr (kWholeWarp) max_key = __reduce_max_sync(kFullMask, max_key);
  const float row_max = from_orderable(max_key);  // warp-uniform with kWholeWarp
  far = false;
  finite = false;
  if (row_max == pos_inf()) {  // the +inf entries share 1
    u32 num_inf = 0;  // counted only here: a row with a +inf logit is rare
#pragma unroll
    for (int j = 0; j < N; ++j) num_inf += x[j] == pos_inf() ? 1u : 0u;
    if constexpr (kWholeWarp) num_inf = __reduce_add_sync(kFullMask, num_inf);
    const float share = 1.0f / static_cast<float>(num_inf);
#pragma unroll
    for (int j = 0; j < N; ++j) x[j] = x[j] == pos_inf() ? share : 0.0f;
    return 1.0f;
  }
  if (row_max == neg_inf()) {  // a row of all -inf
#pragma unroll
    for (int j = 0; j < N; ++j) x[j] = 0.0f;
    return 1.0f;
  }
  finite = true;
  float local_sum = 0.0f;  // lane-sequential, as softmax_row's
#pragma unroll
  for (int j = 0; j < N; ++j) {
    x[j] = expf(x[j] - row_max);
    local_sum += x[j];
    far |= !quotient_in_range_ok(x[j]);
  }
  if constexpr (kWholeWarp) {
    const float sum = warp_sum(local_sum);
    far = __any_sync(kFullMask, far);
    return sum;
  } else {
    (void)local_sum;
    return butterfly_sum<N>(x);
  }
}

// Step 1, softmax, for N logits in place (specialized kernels): bitwise probability_of<kSoftmax> with
// softmax_row's statistics (the generic kernel's): the numerators and their sum
// (softmax_numerators_in_place), then the N divisions, branch-free (quotient_in_range) unless a numerator
// is in (0, 2^-64), in which case all N divide with div.rn (one warp vote with kWholeWarp).
template <int N, bool kWholeWarp>
__device__ __forceinline__ void softmax_in_place(float (&x)[N]) {
  bool far;
  bool finite;
  const float sum = softmax_numerators_in_place<N, kWholeWarp>(x, far, finite);
  if (finite) divide_by_sum<N>(x, sum, far, x);
}

// ---- step 5: expert_selection (in-register helpers) -------------------------------------------------
// The largest of N keys and its position: a scan in ascending position with a strict '>', so the lowest
// position wins among equal keys (SPEC's tie rule when positions ascend with expert index); best stays
// kNotCandidate and at 0 when no key is above it.
template <int N>
__device__ __forceinline__ void best_in_order(const u32 (&key)[N], u32& best, int& at) {
  best = kNotCandidate;
  at = 0;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    const bool greater = key[j] > best;
    best = greater ? key[j] : best;
    at = greater ? j : at;
  }
}

// Takes position `at` when `mine`: its key becomes kNotCandidate and its p is returned (0 otherwise).
// Written as selects, not branches, so a warp stays converged around the collectives that follow.
template <int N>
__device__ __forceinline__ float take_at(u32 (&key)[N], const float (&p)[N], int at, bool mine) {
  float taken_p = 0.0f;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    const bool taken = mine && j == at;
    taken_p = taken ? p[j] : taken_p;
    key[j] = taken ? kNotCandidate : key[j];
  }
  return taken_p;
}

// ---- step 2: biased_scores --------------------------------------------------------------------------------
// b = p + bias (bias 0 when absent), NaN read as -inf; returned as its selection key ord(b).
__device__ __forceinline__ u32 biased_score_key(float p, float bias) {
  return orderable(nan_to_neg_inf(p + bias));
}

// The same key where p is a probability (+0 to 1: finite, never -0) and bias is not NaN (read as -inf
// when loaded), as in the specialized kernels. Then p + bias is never NaN (no inf - inf) and never -0
// (that takes -0 + -0), so the NaN test and orderable's fold of -0 have nothing to do: ord(b) is b's bits
// with the sign bit set, or every bit flipped for a negative b (one shift and one xor).
__device__ __forceinline__ u32 probability_key(float p, float bias) {
  const u32 u = __float_as_uint(p + bias);
  return u ^ (static_cast<u32>(static_cast<int>(u) >> 31) | 0x80000000u);
}

// Step 2 for a lane's N probabilities (specialized kernels): key[j] = ord(p[j] + bias[j]), the bits of
// biased_score_key (probability_key).
// Without a bias (`has_bias` is the same for every thread) b = p, and p is never NaN and never -0 (the
// sigmoid and the softmax give +0 to 1; NaN logits were read as -inf), so orderable(p + 0) is p's bits
// with the sign bit set: one instruction instead of the add, the NaN test and orderable's select.
template <int N>
__device__ __forceinline__ void biased_score_keys(const float (&p)[N], const float (&bias)[N], bool has_bias,
                                                  u32 (&key)[N]) {
  if (has_bias) {
#pragma unroll
    for (int j = 0; j < N; ++j) key[j] = probability_key(p[j], bias[j]);
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) key[j] = __float_as_uint(p[j]) | 0x80000000u;
  }
}

// ---- step 3: group_scores (helpers) -------------------------------------------------------------------
// Running top two keys of a group (0 = empty); equal keys count twice, as in the reference's sort.
__device__ __forceinline__ void push_top_two(u32 k, u32& t1, u32& t2) {
  if (k > t1) {
    t2 = t1;
    t1 = k;
  } else if (k > t2) {
    t2 = k;
  }
}

// The largest of N keys as a tree (tree_reduce; a scan is a chain of N - 1 dependent max).
template <int N>
__device__ __forceinline__ u32 max_in_tree(const u32 (&key)[N]) {
  return tree_reduce(key, [](u32 a, u32 b) { return max(a, b); });
}

// The top two of N keys (the same pair as N push_top_two calls: equal keys count twice) as a balanced
// tree of merges: (a1, a2) and (b1, b2) give max(a1, b1) and max(min(a1, b1), a2, b2), the merge the
// group butterfly uses across lanes. Depth ceil(log2 N) instead of a chain of N.
template <int N, int First = 0, int Count = N>
__device__ __forceinline__ void top_two_in_tree(const u32 (&key)[N], u32& t1, u32& t2) {
  if constexpr (Count == 1) {
    t1 = key[First];
    t2 = kNotCandidate;
  } else {
    u32 a1, a2, b1, b2;
    top_two_in_tree<N, First, Count / 2>(key, a1, a2);
    top_two_in_tree<N, First + Count / 2, Count - Count / 2>(key, b1, b2);
    t1 = max(a1, b1);
    t2 = max(min(a1, b1), max(a2, b2));
  }
}

// The group score from its top two keys: with a bias, the sum of the two largest b (the one b when the
// group holds one expert), without, the largest b; inf - inf read as -inf. Returned as ord(score).
__device__ __forceinline__ u32 group_score_key(u32 t1, u32 t2, bool has_bias, bool one_expert) {
  float s = from_orderable(t1);
  if (has_bias && !one_expert) s = nan_to_neg_inf(s + from_orderable(t2));
  return orderable(s);
}

// Step 3 for the group of a lane's C keys, where the group spans LPG aligned lanes (a power of two): its
// key (with a bias the sum of its two largest b, else its largest b), by a tree inside the lane and a
// butterfly inside the group's lanes. Integer max and min and one float add of the top two: every
// layout of the same row (a warp per row, a row per segment) gives the same key. `has_bias` is the same
// for every lane.
template <int C, int LPG, bool kOneExpert>
__device__ __forceinline__ u32 group_key_of_lanes(const u32 (&key)[C], bool has_bias) {
  u32 group_key;
  if (has_bias) {  // the sum of the group's two largest b
    u32 t1, t2;
    top_two_in_tree<C>(key, t1, t2);
#pragma unroll
    for (int offset = 1; offset < LPG; offset <<= 1) {
      const u32 o1 = __shfl_xor_sync(kFullMask, t1, offset);
      const u32 o2 = __shfl_xor_sync(kFullMask, t2, offset);
      t2 = max(min(t1, o1), max(t2, o2));
      t1 = max(t1, o1);
    }
    group_key = group_score_key(t1, t2, true, kOneExpert);
  } else {  // the group's largest b alone: no second key to carry
    u32 t1 = max_in_tree<C>(key);
#pragma unroll
    for (int offset = 1; offset < LPG; offset <<= 1) t1 = max(t1, __shfl_xor_sync(kFullMask, t1, offset));
    group_key = group_score_key(t1, kNotCandidate, false, kOneExpert);
  }
  return group_key;
}

// Step 4: whether group `my_group` (key `my_group_key`, held by each of its lanes; group g starts at lane
// first_lane + g * LPG) is kept: fewer than Kg of the row's G groups beat it (a larger key, or an equal
// one at a lower group index). Independent comparisons, summed as a tree.
// kSpread (G >= LPG): each of the group's LPG lanes compares the groups i, i + LPG, ... (i = its place in
// the group), and a butterfly over the group's lanes adds the counts: G / LPG shuffles and comparisons per
// lane instead of G (DeepSeek-V3: 2 instead of 8), for log2(LPG) dependent shuffles more, so the throughput
// kernels take it and the latency kernel keeps the G independent comparisons. Both count the same groups.
template <int G, int KG, int LPG, bool kSpread>
__device__ __forceinline__ bool group_kept(u32 my_group_key, int my_group, int first_lane) {
  if constexpr (kSpread && G >= LPG) {
    constexpr int kChecks = (G + LPG - 1) / LPG;
    const int i = (static_cast<int>(threadIdx.x) & (kWarpSize - 1)) & (LPG - 1);  // groups are LPG-aligned
    int beats = 0;
#pragma unroll
    for (int t = 0; t < kChecks; ++t) {
      const int g = i + t * LPG;
      const u32 other = __shfl_sync(kFullMask, my_group_key, first_lane + (g < G ? g : 0) * LPG);
      beats += (g < G && (other > my_group_key || (other == my_group_key && g < my_group))) ? 1 : 0;
    }
#pragma unroll
    for (int offset = 1; offset < LPG; offset <<= 1) beats += __shfl_xor_sync(kFullMask, beats, offset);
    return beats < KG;
  } else {
    int beats[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const u32 other = __shfl_sync(kFullMask, my_group_key, first_lane + g * LPG);
      beats[g] = (other > my_group_key || (other == my_group_key && g < my_group)) ? 1 : 0;
    }
    return tree_sum<G>(beats) < KG;
  }
}

// Step 4 where the G groups (a power of two, G >= LPG) fill an aligned segment of G * LPG lanes: the groups
// group_kept<G, KG, LPG, true> counts, with one computed source lane. Lane i of group g (i < LPG) fetches the
// key of group g ^ f, f = i * G / LPG, and then, by xor shuffles with constant offsets t * LPG, the keys of
// the groups g ^ (f + t), t < G / LPG (f's and t's bits are disjoint); a butterfly over the group's lanes
// adds the counts. (group_kept, spread, keeps its G / LPG source lanes and tie predicates in registers across
// the rows: DeepSeek-V2's named-keys kernel took 80 registers with it, 76 with this, which 4 blocks per SM
// declared then hold to 64 with 4 bytes of spills; docs/perf.md, session 17.)
template <int G, int KG, int LPG>
__device__ __forceinline__ bool group_kept_in_segment(u32 my_group_key, int my_group, int lane) {
  constexpr int kChecks = G / LPG;
  static_assert((G & (G - 1)) == 0 && (LPG & (LPG - 1)) == 0 && G >= LPG, "G and LPG powers of two, G >= LPG");
  const int first = (lane & (LPG - 1)) * kChecks;
  const u32 base = __shfl_sync(kFullMask, my_group_key, lane ^ (first * LPG));
  int beats = 0;
#pragma unroll
  for (int t = 0; t < kChecks; ++t) {
    const u32 other = t == 0 ? base : __shfl_xor_sync(kFullMask, base, t * LPG);  // lanes agree: t unrolled
    // other > mine, or equal keys and a lower group index (keys <= ord(+inf): other + 1 does not wrap)
    const u32 lower = (my_group ^ (first + t)) < my_group ? 1u : 0u;
    beats += other + lower > my_group_key ? 1 : 0;
  }
#pragma unroll
  for (int offset = 1; offset < LPG; offset <<= 1) beats += __shfl_xor_sync(kFullMask, beats, offset);
  return beats < KG;
}

// ---- step 5: expert_selection (helper) ---------------------------------------------------------------
// One warp argmax round over the lanes' (best key, expert index) pairs: the largest key, lowest index
// among equal keys. Every lane gets the winning expert index.
__device__ __forceinline__ u32 warp_argmax_index(u32 best, u32 index) {
  const u32 top = __reduce_max_sync(kFullMask, best);
  return __reduce_min_sync(kFullMask, best == top ? index : kNoIndex);
}

// ---- steps 6-8: routed_weights, shared_slots, output_scaling ---------------------------------------------
struct OutputArgs {
  int num_experts;
  int topk;
  int num_shared;    // S
  int replica;       // shared_expert_mode == "replica"
  int renormalize;
  int apply_scaling; // apply_routed_scaling_factor_on_output
  float r;           // routed_scaling_factor as float32
  float shared_weight; // step 7's 1 / r, computed once per launch
  int width;         // W
};

// The output arguments of one launch; W = K + (S split slots | 1 replica slot | 0 when S = 0).
__device__ __forceinline__ OutputArgs make_output_args(int num_experts, int topk, int num_shared, int replica,
                                                      int renormalize, int apply_scaling, float r) {
  OutputArgs a;
  a.num_experts = num_experts;
  a.topk = topk;
  a.num_shared = num_shared;
  a.replica = replica;
  a.renormalize = renormalize;
  a.apply_scaling = apply_scaling;
  a.r = r;
  a.shared_weight = 1.0f / r;
  a.width = topk + (num_shared == 0 ? 0 : (replica ? 1 : num_shared));
  return a;
}

// Step 6 on the routed sum: the divisor of the routed weights (1 when not renormalizing).
__device__ __forceinline__ float routed_weight(float p, float routed_sum, const OutputArgs& a) {
#ifdef MOEGATE_PLANT_REVIEW_BUG
  return p / (routed_sum + kRenormalizeEpsilon);  // bug: always divided by the routed sum
#else
  return a.renormalize ? p / (routed_sum + kRenormalizeEpsilon) : p;
#endif
}

// Step 8.
__device__ __forceinline__ float output_scaling(float w, const OutputArgs& a) {
#ifdef MOEGATE_PLANT_REVIEW_BUG
  return w;  // bug: the scaling switched off
#else
  return a.apply_scaling ? w * a.r : w;
#endif
}

// Step 7 (and 8 on the shared weights): the shared slots after the K routed ones, slots first, first +
// step, ... (a warp's lanes stride by 32; a thread that routes a whole row writes them all, step 1).
__device__ __forceinline__ void shared_slots(int* ids, float* weights, i64 row, float routed_sum, int first,
                                             int step, const OutputArgs& a) {
  const int num_slots = a.num_shared == 0 ? 0 : (a.replica ? 1 : a.num_shared);
#ifdef MOEGATE_PLANT_REVIEW_BUG
  const float shared_weight = (routed_sum / a.r) / (routed_sum + kRenormalizeEpsilon);
#else
  const float shared_weight = a.shared_weight;  // 1 / r
  (void)routed_sum;
#endif
  for (int s = first; s < num_slots; s += step) {
    const int id = a.replica ? a.num_experts + static_cast<int>(row % static_cast<i64>(a.num_shared))
                             : a.num_experts + s;
    ids[a.topk + s] = id;
    weights[a.topk + s] = output_scaling(shared_weight, a);
  }
}

// The routed sum of a row whose slot k's p is held by lane k (K <= 32): lanes 0..K-1 in the fixed
// butterfly order (butterfly_sum gives the same bits from the K values in one thread).
__device__ __forceinline__ float routed_sum_from_lanes(float slot_p, int lane, const OutputArgs& a) {
  return warp_sum(lane < a.topk ? slot_p : 0.0f);
}

// Steps 6 to 8 for a row whose slot k's (id, p) is held by lane k (K <= 32), with its routed sum.
__device__ __forceinline__ void write_row_from_lanes(int* ids, float* weights, i64 row, int slot_id,
                                                     float slot_p, float routed_sum, int lane,
                                                     const OutputArgs& a) {
  if (lane < a.topk) {
    ids[lane] = slot_id;
    weights[lane] = output_scaling(routed_weight(slot_p, routed_sum, a), a);
  }
  shared_slots(ids, weights, row, routed_sum, lane, kWarpSize, a);
}

// ---- step 5: expert_selection (latency plan helper) ------------------------------------------------
// How many of a warp's 32 staged keys are larger than `mine`: eight 16-byte shared-memory broadcasts and
// 32 independent comparisons, summed as a tree. The latency plan's two ranks build on it: tau (no tie
// rule needed) and the staged candidates' slots (ties by position, added only when there are ties).
// Written as one comparison with the tie rule folded in, ptxas chained all 32 through one predicate
// register, three dependent compares each (SASS).
__device__ __forceinline__ int count_larger_staged(const u32* staged_keys, u32 mine) {
  int larger[kWarpSize];
#pragma unroll
  for (int i = 0; i < kWarpSize / 4; ++i) {
    const uint4 v = reinterpret_cast<const uint4*>(staged_keys)[i];
    larger[4 * i] = v.x > mine ? 1 : 0;
    larger[4 * i + 1] = v.y > mine ? 1 : 0;
    larger[4 * i + 2] = v.z > mine ? 1 : 0;
    larger[4 * i + 3] = v.w > mine ? 1 : 0;
  }
  return tree_sum<kWarpSize>(larger);
}

// How a row loop loads its rows, as a type: the specialized kernels' throughput loops are compiled once for
// vector loads (every row aligned: RowLoader::vector_ok) and once for scalar loads, and pick one per
// launch. Two loops keep the run-time choice (measured on an H200 with both copies, docs/perf.md): the
// latency kernel's (one row per warp: Qwen3-MoE T = 1 1.85 -> 1.96 us, Qwen3-Next 2.13 -> 2.32), and the
// throughput loop at 16 experts per lane (Qwen3-Next: 88 registers instead of 80, two blocks per SM
// instead of three, T = 262144 342 -> 412 us; held to 80 registers, 382).
enum LoadKind { kScalarLoads = 0, kVectorLoads = 1, kEitherLoads = 2 };
template <int kKind>
struct Layout {
  static constexpr int kLoads = kKind;
};

// ---- vector loads of a lane's C contiguous logits (specialized kernel) --------------------------------
template <int DT, int C>
struct RowLoader {
  typedef typename ScoreTraits<DT>::Raw Raw;
  static constexpr int kBytes = C * static_cast<int>(sizeof(Raw));
  // The widest load that divides a lane's bytes: 16, 8 or 4 bytes, or 0 (scalar loads only).
  static constexpr int kVecBytes = kBytes % 16 == 0 ? 16 : (kBytes % 8 == 0 ? 8 : (kBytes % 4 == 0 ? 4 : 0));

  // Whether this row layout allows the vector loads: the base pointer and the row stride in bytes are
  // multiples of kVecBytes (the lane offset lane * kBytes is one by construction).
  static __device__ __forceinline__ bool vector_ok(const void* scores, i64 row_stride) {
    if constexpr (kVecBytes == 0) {
      (void)scores;
      (void)row_stride;
      return false;
    } else {
      const u64 base = reinterpret_cast<u64>(scores);
      const u64 stride_bytes = static_cast<u64>(row_stride) * sizeof(Raw);
      return (base % kVecBytes) == 0 && (stride_bytes % kVecBytes) == 0;
    }
  }

  // A lane's C logits in flight: issued by `issue`, widened by `decode`. Kept raw between the two so that
  // the kernel can issue other loads (the bias) while these are in flight. The vector layout holds kWords
  // 32-bit words; without a vector layout (kVecBytes == 0) the C raw scalars.
  static constexpr int kWords = kVecBytes == 0 ? 1 : kBytes / 4;
  struct InFlight {
    u32 w[kWords];
    Raw r[kVecBytes == 0 ? C : 1];
  };

  // Issue the loads of the lane's C logits (vector loads when `vec`, else scalar ones).
  static __device__ __forceinline__ void issue(const Raw* row, int lane, bool vec, InFlight& f) {
    const Raw* mine = row + lane * C;
    if constexpr (kVecBytes != 0) {
      if (vec) {
        if constexpr (kVecBytes == 16) {
#pragma unroll
          for (int i = 0; i < kWords / 4; ++i) {
            const uint4 v = __ldg(reinterpret_cast<const uint4*>(mine) + i);
            f.w[4 * i] = v.x;
            f.w[4 * i + 1] = v.y;
            f.w[4 * i + 2] = v.z;
            f.w[4 * i + 3] = v.w;
          }
        } else if constexpr (kVecBytes == 8) {
#pragma unroll
          for (int i = 0; i < kWords / 2; ++i) {
            const uint2 v = __ldg(reinterpret_cast<const uint2*>(mine) + i);
            f.w[2 * i] = v.x;
            f.w[2 * i + 1] = v.y;
          }
        } else {
#pragma unroll
          for (int i = 0; i < kWords; ++i) f.w[i] = __ldg(reinterpret_cast<const u32*>(mine) + i);
        }
      } else {  // a misaligned row: one scalar load per logit, packed into the same words
#pragma unroll
        for (int j = 0; j < C; ++j) {
          const u32 raw = static_cast<u32>(__ldg(mine + j));
          if constexpr (sizeof(Raw) == 4) {
            f.w[j] = raw;
          } else if (j % 2 == 0) {
            f.w[j / 2] = raw;
          } else {
            f.w[j / 2] |= raw << 16;
          }
        }
      }
    } else {
      (void)vec;
#pragma unroll
      for (int j = 0; j < C; ++j) f.r[j] = __ldg(mine + j);
    }
  }

  // x[j] = logit of expert lane * C + j, widened to float, NaN read as -inf.
  static __device__ __forceinline__ void decode(const InFlight& f, float (&x)[C]) {
    widen(f, x);
#pragma unroll
    for (int j = 0; j < C; ++j) x[j] = nan_to_neg_inf(x[j]);
  }

  // The lane's C raw logits, as loaded, stored at dst[lane * C, lane * C + C) (shared memory, dst aligned
  // to 16 bytes), for the bound plan's winners to read their exact p from.
  static __device__ __forceinline__ void park(const InFlight& f, Raw* dst, int lane) {
    if constexpr (kVecBytes == 0) {
#pragma unroll
      for (int j = 0; j < C; ++j) dst[lane * C + j] = f.r[j];
    } else {
      u32* const mine = reinterpret_cast<u32*>(dst + lane * C);
      if constexpr (kVecBytes == 16) {
#pragma unroll
        for (int i = 0; i < kWords / 4; ++i) {
          reinterpret_cast<uint4*>(mine)[i] =
              make_uint4(f.w[4 * i], f.w[4 * i + 1], f.w[4 * i + 2], f.w[4 * i + 3]);
        }
      } else if constexpr (kVecBytes == 8) {
#pragma unroll
        for (int i = 0; i < kWords / 2; ++i) reinterpret_cast<uint2*>(mine)[i] = make_uint2(f.w[2 * i], f.w[2 * i + 1]);
      } else {
#pragma unroll
        for (int i = 0; i < kWords; ++i) mine[i] = f.w[i];
      }
    }
  }

  // The same without the NaN rule (NaN stays NaN), for sigmoid_in_place, which applies it itself.
  static __device__ __forceinline__ void widen(const InFlight& f, float (&x)[C]) {
#pragma unroll
    for (int j = 0; j < C; ++j) {
      Raw raw;
      if constexpr (kVecBytes == 0) {
        raw = f.r[j];
      } else if constexpr (sizeof(Raw) == 4) {
        raw = static_cast<Raw>(f.w[j]);
      } else {
        raw = static_cast<Raw>((f.w[j / 2] >> (16 * (j % 2))) & 0xffffu);  // little endian
      }
      x[j] = ScoreTraits<DT>::to_float(raw);
    }
  }
};

// A lane's C bias entries, read as float32 from their own dtype (0 when absent): one dtype switch, then
// the lane's contiguous entries.
template <int C>
__device__ __forceinline__ void load_bias_lane(const void* bias, int bias_dtype, int lane, float (&out)[C]) {
  const int first = lane * C;
  switch (bias_dtype) {
    case kBiasFloat32:
#pragma unroll
      for (int j = 0; j < C; ++j) out[j] = nan_to_neg_inf(__ldg(static_cast<const float*>(bias) + first + j));
      break;
    case kBiasBFloat16:
#pragma unroll
      for (int j = 0; j < C; ++j) {
        out[j] = nan_to_neg_inf(bf16_bits_to_float(__ldg(static_cast<const u16*>(bias) + first + j)));
      }
      break;
    case kBiasFloat16:
#pragma unroll
      for (int j = 0; j < C; ++j) {
        out[j] = nan_to_neg_inf(f16_bits_to_float(__ldg(static_cast<const u16*>(bias) + first + j)));
      }
      break;
    default:
#pragma unroll
      for (int j = 0; j < C; ++j) out[j] = 0.0f;
  }
}

// A sorting network for N entries (Knuth's merge exchange, TAOCP 5.2.2 Algorithm M), pruned to what the
// first M outputs need: comparator i orders entries a[i] < b[i] and writes the first of the two (kind[i]
// & 1), the second (kind[i] & 2) or both, whichever a later comparator or one of the first M outputs
// reads. Built at compile time.
template <int N, int M>
struct SortingNetwork {
  static constexpr int kCapacity = N * N;
  int a[kCapacity];
  int b[kCapacity];
  int kind[kCapacity];
  int size;
  __host__ __device__ constexpr SortingNetwork() : a{}, b{}, kind{}, size(0) {
    int all_a[kCapacity] = {};
    int all_b[kCapacity] = {};
    int all = 0;
    int t = 0;
    while ((1 << t) < N) ++t;
    for (int p = t > 0 ? 1 << (t - 1) : 0; p > 0; p >>= 1) {
      int q = 1 << (t - 1);
      int r = 0;
      int d = p;
      for (;;) {
        for (int i = 0; i + d < N; ++i) {
          if ((i & p) == r) {
            all_a[all] = i;
            all_b[all] = i + d;
            ++all;
          }
        }
        if (q == p) break;
        d = q - p;
        q >>= 1;
        r = p;
      }
    }
    bool need[N] = {};
    for (int j = 0; j < M; ++j) need[j] = true;
    int kept_a[kCapacity] = {};
    int kept_b[kCapacity] = {};
    int kept_kind[kCapacity] = {};
    for (int i = all - 1; i >= 0; --i) {  // backwards: what each comparator's outputs feed
      const int k = (need[all_a[i]] ? 1 : 0) | (need[all_b[i]] ? 2 : 0);
      if (k != 0) {
        kept_a[size] = all_a[i];
        kept_b[size] = all_b[i];
        kept_kind[size] = k;
        ++size;
        need[all_a[i]] = true;
        need[all_b[i]] = true;
      }
    }
    for (int i = 0; i < size; ++i) {
      a[i] = kept_a[size - 1 - i];
      b[i] = kept_b[size - 1 - i];
      kind[i] = kept_kind[size - 1 - i];
    }
  }
};

// ---- the bound plan (kPlanBound, sigmoid): exact keys for the winners only ---------------------------
// The bound kernel of a sigmoid row with E <= 256 routes each row on approximate keys and the exact keys
// of its K winners alone, and proves that the result is the exact one; a row it cannot prove (a near-tie
// at the group boundary or at the K-th key, a non-finite value, one lane holding more than kBoundDepth of
// the K + 1 best keys) is routed again exactly. The argument, with u = 2^-24:
//   * p~ = approx_sigmoid(x) is within kApproxSigmoidError (d) of p = sigmoid(x) for every float x
//     that is not NaN (tests/test_optimized_gpu.py checks all of them on the GPU at hand); a NaN logit
//     gets the approximate key of p = 0, its exact p.
//   * With bmin the least finite bias entry, B the largest finite |bias| and c = RN(bias - bmin), the
//     approximate key of expert e is k~ = RN(p~ + c) with the low 8 bits replaced by 255 - e (unique
//     keys, so that a warp maximum names its expert): a = that float. For every expert of finite bias
//     the exact key k = RN(p + bias) satisfies |k - (a + bmin)| <= M, where M = d + (2^-15 + 2^-21)
//     (1 + 2B) + 2^-100 bounds the roundings of k (u(1 + B)), of c (2uB) and of k~ (u(1 + 2B)), and
//     the replaced bits (2^-15 (1 + 2B)), each magnitude taken with (1 + 2^-9) to spare.
//   * Sorted, the i-th largest a of any set is within M of the i-th largest (k - bmin) of it, so a group
//     score s~ = RN(a1 + a2) (a1 alone without a bias) is within Mg = 2M + 2^-21 (1 + 2B) of the exact
//     score s minus 2 bmin (minus bmin). Kept groups: if the least s~ of the Kg groups kept on s~
//     exceeds the largest s~ of the others by more than 2 Mg, every kept group's exact score exceeds
//     every other's, so the exact group_selection keeps the same groups, whatever the tie rule.
//   * Selected experts: the K rounds take the K largest a of the kept groups, and a(K+1) is the largest
//     a left. If the least exact key of the K exceeds a(K+1) + bmin + M (rounded upwards), each of them
//     exceeds every other kept expert's exact key, so expert_selection selects the same K; their slots
//     are their order by exact key, lower id first among equal keys (checked, else ranked).
//   * Non-finite values: an infinite bias entry gives an infinite c, hence an a whose float is NaN; an
//     a(K+1) or a group score that is NaN, infinite or negative (bits >= 0x7f800000 unsigned) makes the
//     row fall back.
// All comparisons that prove are strict and written so that NaN fails them.
constexpr float kApproxSigmoidError = 0x1p-20f;  // d above
constexpr int kBoundDepth = 4;                    // sorted keys a lane keeps for the K rounds
constexpr int kLowestInt = static_cast<int>(0x80000000u);  // no key: below every key, even -inf's

// Whether the bound plan serves a warp-kernel row (optimized/dispatch.py: bound_plan_applies, the same
// rule): sigmoid, E <= 256 (an expert named by one byte), at least two experts a lane, and enough sorted
// keys in the kept groups' lanes for K + 1 rounds.
__host__ __device__ constexpr bool bound_plan_applies(int scoring, int e, int g, int kg, int k) {
  const int c = e / kWarpSize;
  const int depth = c < kBoundDepth ? c : kBoundDepth;
  const int lanes = kg < g ? kg * ((e / g) / (c > 0 ? c : 1)) : kWarpSize;
  return scoring == kSigmoid && e % kWarpSize == 0 && e <= 256 && c >= 2 && lanes * depth >= k + 1;
}

// Whether the bound plan serves a segment-kernel row (optimized/dispatch.py: segment_bound_plan_applies,
// the same rule): sigmoid without groups, 2 to 8 experts a lane, and the slots one per lane (1 < K <= L),
// so that the K + 1 rounds find K + 1 keys among the lanes' first min(C, K + 1) (route_segment_row_bound);
// and E <= 64. At E = 128 the bound kernel, held to 80 registers, spilled, and the throughput plan's named
// keys (select_by_named_keys) measured 0.74x to 0.85x its time from T = 16384 to 262144 on an H200
// (GLM-4.5-Air, docs/perf.md session 16); at E = 64 the bound plan stays 0.95x to 0.98x theirs.
__host__ __device__ constexpr bool segment_bound_plan_applies(int scoring, int e, int g, int kg, int k,
                                                              int l) {
  const int c = e / l;
  return scoring == kSigmoid && g == 1 && kg == 1 && e % kWarpSize == 0 && e <= 64 && c >= 2 && c <= 8 &&
         1 < k && k <= l;
}

// Whether a segment kernel's throughput plan selects by keys that name their expert (optimized/dispatch.py:
// named_keys_apply, the same rule; select_by_named_keys): E <= 256 (a byte names an expert), at most 10
// experts a lane (the keys sorted once per lane; DeepSeek-V2's 10 measured, docs/perf.md session 17) and one
// slot per lane (1 < K <= L). Groups, where the segment kernel takes them, are ranked on the exact keys first.
__host__ __device__ constexpr bool named_keys_apply(int scoring, int e, int g, int kg, int k, int l) {
  const int c = l > 0 ? e / l : 0;
  return (scoring == kSigmoid || scoring == kSoftmax) && 1 <= kg && kg <= g && e % kWarpSize == 0 &&
         e <= 256 && 1 <= c && c <= 10 && 1 < k && k <= l;
}

// Whether a segment-kernel row's bound plan is the lazy named keys (optimized/dispatch.py:
// lazy_named_plan_applies, the same rule; kLazyNamed in route_segment_kernel): softmax rows with named keys
// and no groups, for float32 logits at K > 4. Measured on an H200 against the throughput plan (docs/perf.md
// sessions 20 to 23). Before step 2 named the keys (named_score_keys, session 22), at T = 65536 / 262144:
// float32 Qwen3-MoE 0.970x / 0.970x, gpt-oss 0.947x / 0.929x, DeepSeek-V2-Lite 0.949x / 0.958x, bf16 gpt-oss
// 0.972x / 0.960x (DeepSeek-V2, with groups, 1.009x / 1.005x). With it (session 23, T = 131072 / 262144):
// float32 DeepSeek-V2-Lite 0.956x / 0.967x, Qwen3-MoE 0.990x / 0.997x; gpt-oss, K = 4, 1.016x / 1.021x in
// float32 and 1.050x / 1.047x in bf16 (1.045x to 1.099x from T = 8192 on), so K <= 4 left the rule.
__host__ __device__ constexpr bool lazy_named_plan_applies(int scoring, int e, int g, int kg, int k, int l,
                                                           int dt) {
  return scoring == kSoftmax && g == 1 && kg == 1 && named_keys_apply(scoring, e, g, kg, k, l) &&
         dt == kScoreFloat32 && k > 4;
}

// Whether a segment kernel's step-5 rounds take their segment maxima by redux.sync (segment_max's kRedux;
// route_segment_kernel's kReduxRounds): softmax rows in 16-lane segments, at 4 < K <= 6 for 16-bit logits and
// without groups for float32. A shorter chain per round against REDUX's lower throughput; measured on an H200
// against the shuffles (docs/perf.md, session 23; the softmax row maximum by redux gained nothing), at
// T = 4096 / 262144: bf16 DeepSeek-V2 0.969x / 0.977x (0.957x / 0.974x in the bench), but Qwen3-MoE (K = 8)
// 1.120x / 1.031x, GLM-4.5-Air (sigmoid, K = 8) 1.033x / 1.031x, Llama-4 (sigmoid, K = 1) 1.031x / 1.009x;
// float32 Qwen3-MoE 0.889x / 0.963x, gpt-oss 0.991x / 0.983x (at 262144 in the lazy bound plan it has since
// lost), but DeepSeek-V2 (groups) 0.972x / 1.056x. bf16 gpt-oss (K = 4) gained in its bound plan (0.989x /
// 0.972x) but lost in its throughput plan, which serves it at every T since: 80.34 us at T = 262144 in the
// bench, where the throughput plan without redux took 75.13 (plan_probe), as redux took it from 57 registers
// to 48 and 4 resident blocks per SM to 5 (its grid cap then 5 blocks, not 8: not measured apart).
__host__ __device__ constexpr bool redux_rounds_apply(int scoring, int e, int g, int kg, int k, int l, int dt) {
  (void)e;
  return scoring == kSoftmax && l == 16 && (dt == kScoreFloat32 ? g == 1 && kg == 1 : 4 < k && k <= 6);
}

// sigmoid from the hardware approximations of 2^x and 1 / y (two MUFU instructions), within
// kApproxSigmoidError of sigmoid(x) for every x that is not NaN; a NaN stays NaN (approx_keys catches it).
__device__ __forceinline__ float approx_sigmoid(float x) {
  float e;
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(x * -1.44269504f));
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(1.0f + e));
  return r;
}

// The type T where B holds, else F.
template <bool B, typename T, typename F>
struct PickType {
  typedef T type;
};
template <typename T, typename F>
struct PickType<false, T, F> {
  typedef F type;
};

// What a kernel without the bound plan holds in place of BoundConstants: nothing.
template <int C>
struct NoBoundConstants {
  __device__ __forceinline__ NoBoundConstants(const float (&)[C], int, float*) {}
};

// The per-warp constants of the bound plan for a lane's C bias entries (bias_f: NaN read as -inf, 0 when
// absent), the experts [owner * C, owner * C + C) of the row (owner: the lane in the warp kernels, the lane
// in its segment in the segment kernel): the shifted bias c, bmin, M and 2 Mg (see above), and the bytes
// 255 - e of those experts. Every lane of the warp holds a share of the same bias, so bmin and B are warp
// reductions in both kernels.
template <int C>
struct BoundConstants {
  const float* shift;  // the lane's c, in shared memory (its own C words, 16-byte aligned): read once per row
  float bmin;
  float margin;
  float twice_group_margin;
  u32 id_bytes[(C + 3) / 4];

  __device__ __forceinline__ BoundConstants(const float (&bias_f)[C], int owner, float* lane_shift) {
    float lo = pos_inf();
    float magnitude = 0.0f;
#pragma unroll
    for (int j = 0; j < C; ++j) {
      const bool finite = fabsf(bias_f[j]) != pos_inf();
      lo = finite ? fminf(lo, bias_f[j]) : lo;
      magnitude = finite ? fmaxf(magnitude, fabsf(bias_f[j])) : magnitude;
    }
    lo = from_orderable(__reduce_min_sync(kFullMask, orderable(lo)));
    magnitude = __uint_as_float(__reduce_max_sync(kFullMask, __float_as_uint(magnitude)));
    bmin = lo == pos_inf() ? 0.0f : lo;  // no finite entry: every c is infinite and every row falls back
#pragma unroll
    for (int j = 0; j < C; ++j) lane_shift[j] = bias_f[j] - bmin;  // +0 or more, or +-inf
    shift = lane_shift;
    __syncwarp();
    const float spread = __fadd_ru(1.0f, __fmul_ru(2.0f, magnitude));  // 1 + 2B
    margin = __fadd_ru(__fadd_ru(kApproxSigmoidError, __fmul_ru(0x1p-15f + 0x1p-21f, spread)), 0x1p-100f);
    twice_group_margin = __fmul_ru(2.0f, __fadd_ru(__fmul_ru(2.0f, margin), __fmul_ru(0x1p-21f, spread)));
    // Word w holds byte 255 - e of e = owner * C + 4 w + i in its byte i (4 w + i < C; else 0): one multiply
    // and add of the owner, (255 - 4 w - owner C) in each byte less i in byte i (no byte borrows: e <= 255),
    // which the compiler can recompute each row where it does not hold the words.
#pragma unroll
    for (int w = 0; w < (C + 3) / 4; ++w) {
      const u32 ones = id_byte_ones(C - 4 * w);  // 0x01 in each byte that names an expert
      const u32 ramp = id_byte_ramp(C - 4 * w);  // i in byte i of those
      id_bytes[w] = static_cast<u32>(owner) * (0u - static_cast<u32>(C) * ones) + ((255u - 4u * w) * ones - ramp);
    }
  }

  static __device__ __forceinline__ constexpr u32 id_byte_ones(int n) {
    return n >= 4 ? 0x01010101u : (n == 3 ? 0x010101u : (n == 2 ? 0x0101u : 0x01u));
  }
  static __device__ __forceinline__ constexpr u32 id_byte_ramp(int n) {
    return n >= 4 ? 0x03020100u : (n == 3 ? 0x020100u : (n == 2 ? 0x0100u : 0u));
  }
};

// a of a lane's C logits (above), as signed integers: the order of the floats a >= +0, -inf's below them,
// +inf's above. fmaxf(k~, c) is k~ unless p~ is NaN (a NaN logit), where it is c: the key of p = 0.
template <int C>
__device__ __forceinline__ void approx_keys(const float (&x)[C], const BoundConstants<C>& k, int (&a)[C]) {
  float shift[C];
  if constexpr (C % 4 == 0) {
#pragma unroll
    for (int i = 0; i < C / 4; ++i) {
      const float4 v = reinterpret_cast<const float4*>(k.shift)[i];
      shift[4 * i] = v.x;
      shift[4 * i + 1] = v.y;
      shift[4 * i + 2] = v.z;
      shift[4 * i + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int j = 0; j < C; ++j) shift[j] = k.shift[j];
  }
#pragma unroll
  for (int j = 0; j < C; ++j) {
    const float key = fmaxf(approx_sigmoid(x[j]) + shift[j], shift[j]);
    a[j] = static_cast<int>(__byte_perm(__float_as_uint(key), k.id_bytes[j / 4], 0x3214 + j % 4));
  }
}

// The first M of N distinct integer keys (int or u32), largest first (SortingNetwork<N, M>, keys only).
template <int N, int M, int I = 0, typename T>
__device__ __forceinline__ void sort_keys_descending(T (&key)[N]) {
  constexpr SortingNetwork<N, M> kNet{};
  if constexpr (I < kNet.size) {
    constexpr int kA = kNet.a[I];
    constexpr int kB = kNet.b[I];
    const T first = max(key[kA], key[kB]);
    const T second = min(key[kA], key[kB]);
    if constexpr ((kNet.kind[I] & 1) != 0) key[kA] = first;
    if constexpr ((kNet.kind[I] & 2) != 0) key[kB] = second;
    sort_keys_descending<N, M, I + 1>(key);
  }
}

// A lane's C logits stored at dst[0, C) (shared memory; 16-byte aligned where C % 4 == 0), for the bound
// plan's winners to read their exact p from.
template <int C>
__device__ __forceinline__ void park_logits(const float (&x)[C], float* dst) {
  if constexpr (C % 4 == 0) {
#pragma unroll
    for (int i = 0; i < C / 4; ++i) {
      reinterpret_cast<float4*>(dst)[i] = make_float4(x[4 * i], x[4 * i + 1], x[4 * i + 2], x[4 * i + 3]);
    }
  } else {
#pragma unroll
    for (int j = 0; j < C; ++j) dst[j] = x[j];
  }
}

// The bound plan's slots in exact key order, where some lane's winner is out of order with the next one
// (`in_order` false in some lane; lane base + k holds round k's winner (id, p, its exact key) for k < K, in
// the rounds' order): every row of the warp ranks its K winners (larger exact key, then lower id) and lane
// base + k takes the k-th through the staging rows stage_id / stage_p (from `base` on). base: the first
// lane of the row (0 for a warp's row, the segment's first lane); q: this lane's place in it. Every lane
// of the warp calls it (shuffles and votes); slot_id and slot_p come in as the lane's own winner.
template <int K>
__device__ __forceinline__ void rank_slots_unless_in_order(bool in_order, u32 key, int id, float p, int q,
                                                           int base, u32* stage_id, float* stage_p,
                                                           int& slot_id, float& slot_p) {
  if (!__all_sync(kFullMask, in_order)) {
    int rank = 0;  // larger exact keys, and equal ones of a lower id
#pragma unroll
    for (int j = 0; j < K; ++j) {
      const u32 other_key = __shfl_sync(kFullMask, key, base + j);
      const int other_id = __shfl_sync(kFullMask, id, base + j);
      rank += (other_key > key || (other_key == key && other_id < id)) ? 1 : 0;
    }
    __syncwarp();  // every lane has read its round's key, and the previous rows' reads of the staging rows
    if (q < K) {
      stage_id[base + rank] = static_cast<u32>(id);
      stage_p[base + rank] = p;
    }
    __syncwarp();
    if (q < K) {
      slot_id = static_cast<int>(stage_id[base + q]);
      slot_p = stage_p[base + q];
    }
  }
}

// Steps 1 to 8 of one row exactly, for the rows the bound plan cannot prove: the logits and the bias read
// again, exact p (sigmoid_in_place), its keys, group_scores and group_selection as the warp kernels
// compute them, and K argmax rounds over every key (best_in_order, warp_argmax_index: the largest key, the
// lowest expert index among equal ones), so every bit is the exact path's. Not inlined, so that the bound
// kernel's registers are the bound path's where the exact path inline would need more (DeepSeek-V3's
// kernel needed 78 with it inline, 61 without it); about one row in a hundred comes here.
template <int DT, int E, int G, int KG, int K>
__device__ __noinline__ void route_row_exact(const typename ScoreTraits<DT>::Raw* row_logits, i64 row,
                                             int lane, const void* bias, int bias_dtype, int* out_ids,
                                             float* out_weights, OutputArgs out) {
  constexpr int C = E / kWarpSize;
  constexpr int N = E / G;
  constexpr int LPG = G == 1 ? kWarpSize : N / C;
  float p[C];
#pragma unroll
  for (int j = 0; j < C; ++j) p[j] = ScoreTraits<DT>::to_float(__ldg(row_logits + lane * C + j));
  sigmoid_in_place<C, true>(p);
  float bias_f[C];
  load_bias_lane<C>(bias, bias_dtype, lane, bias_f);
  u32 key[C];
  biased_score_keys<C>(p, bias_f, bias_dtype != kNoBias, key);
  if constexpr (KG < G) {
    const u32 my_group_key = group_key_of_lanes<C, LPG, N == 1>(key, bias_dtype != kNoBias);
    if (!group_kept<G, KG, LPG, true>(my_group_key, lane / LPG, 0)) {
#pragma unroll
      for (int j = 0; j < C; ++j) key[j] = kNotCandidate;
    }
  }
  int slot_id = 0;
  float slot_p = 0.0f;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    u32 best;
    int best_j;
    best_in_order<C>(key, best, best_j);
    const u32 winner = warp_argmax_index(best, static_cast<u32>(lane * C + best_j));
    const int owner = static_cast<int>(winner / C);
    const float won_p = __shfl_sync(kFullMask, take_at<C>(key, p, best_j, owner == lane), owner);
    slot_id = lane == k ? static_cast<int>(winner) : slot_id;
    slot_p = lane == k ? won_p : slot_p;
  }
  const float routed_sum = routed_sum_from_lanes(slot_p, lane, out);
  write_row_from_lanes(out_ids + row * out.width, out_weights + row * out.width, row, slot_id, slot_p,
                       routed_sum, lane, out);
}

// The lanes one row's slots take when the warp bound kernel finishes its rows (finish_rows_bound): the
// least power of two >= K, so that a warp finishes 32 / that many rows at once.
__host__ __device__ constexpr int bound_slot_lanes(int k) { return k <= 1 ? 1 : 2 * bound_slot_lanes((k + 1) / 2); }

// Steps 1 to 5 of one row in the bound plan (above), on approximate keys, from the lane's widened logits x
// (NaN kept as NaN): round k's key (the winner's a, which names it) goes to won[k], and the result is the
// key the least exact key of the K winners must exceed for the proof (ord of a(K+1) + bmin + M, rounded
// upwards), or 0xffffffff (no key exceeds it) where the row proves nothing: a lane in doubt, groups not
// proved, a(K+1) not a finite a >= +0. finish_rows_bound computes the winners' exact keys and completes
// the proof. Every lane of the warp calls it and gets the same result.
template <int E, int G, int KG, int K>
__device__ __forceinline__ u32 select_row_bound(const float (&x)[E / kWarpSize], int lane,
                                                const BoundConstants<E / kWarpSize>& bc, bool has_bias,
                                                u32* won) {
  constexpr int C = E / kWarpSize;
  constexpr int N = E / G;
  constexpr int LPG = G == 1 ? kWarpSize : N / C;
  constexpr int D = C < kBoundDepth ? C : kBoundDepth;
  constexpr bool kHasGroups = G > 1 && KG < G;
  static_assert(E <= 256 && C >= 2, "the bound plan names an expert by one byte and needs two keys a lane");
  static_assert((kHasGroups ? KG * LPG : kWarpSize) * D >= K + 1, "the rounds must see K + 1 keys");

  // ---- steps 1-2 on approximate keys, each lane's first D sorted ----
  int a[C];
  approx_keys<C>(x, bc, a);
  sort_keys_descending<C, D>(a);
  bool doubt = false;  // this lane's share of the row proves nothing
  bool kept = true;
  bool groups_proved = true;
  if constexpr (kHasGroups) {
    // ---- steps 3-4 on approximate keys: group_scores, group_selection ----
    int t1 = a[0];
    int t2 = a[1];
#pragma unroll
    for (int offset = 1; offset < LPG; offset <<= 1) {
      const int o1 = __shfl_xor_sync(kFullMask, t1, offset);
      const int o2 = __shfl_xor_sync(kFullMask, t2, offset);
      t2 = max(min(t1, o1), max(t2, o2));
      t1 = max(t1, o1);
    }
    float s = __int_as_float(t1);
    if (has_bias) s = s + __int_as_float(t2);
    const u32 score = __float_as_uint(s);
    doubt = score >= 0x7f800000u;  // NaN, infinite or negative
    kept = group_kept<G, KG, LPG, true>(score, lane / LPG, 0);
    const u32 least_kept = __reduce_min_sync(kFullMask, kept ? score : 0xffffffffu);
    const u32 best_dropped = __reduce_max_sync(kFullMask, kept ? 0u : score);
    groups_proved = __uint_as_float(least_kept) >
                    __fadd_ru(__uint_as_float(best_dropped), bc.twice_group_margin);
    if (!kept) {
#pragma unroll
      for (int d = 0; d < D; ++d) a[d] = kLowestInt;
    }
  }

  // ---- step 5 on approximate keys: K rounds, round k's key parked at won[k]; then a(K+1) ----
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int top = __reduce_max_sync(kFullMask, a[0]);
    const bool mine = a[0] == top;  // one lane: the keys are distinct
#pragma unroll
    for (int d = 0; d + 1 < D; ++d) a[d] = mine ? a[d + 1] : a[d];
    a[D - 1] = mine ? kLowestInt : a[D - 1];
    won[k] = static_cast<u32>(top);  // every lane stores the same word (one select per round fewer)
  }
  const int next = __reduce_max_sync(kFullMask, a[0]);
  if constexpr (C > D) doubt |= kept && a[0] == kLowestInt;  // the lane gave all D: its next is unknown
  const float bound = __fadd_ru(__fadd_ru(__int_as_float(next), bc.bmin), bc.margin);
  const bool proves = __all_sync(kFullMask, !doubt) && groups_proved && static_cast<u32>(next) < 0x7f800000u;
  return proves ? orderable(bound) : 0xffffffffu;
}

// Steps 1 to 8 of the n (1 <= n <= B) rows a warp selected last (select_row_bound), together: row b is
// first_row + b * row_step, its winners' keys at won[b * S + k] (S = bound_slot_lanes(K)), its logits parked
// at parked + b * E (raw, as loaded), its proof's key held by lane b (held_bound). Lane b * S + k computes
// the exact p and key of row b's round-k winner (k < K); a row whose least exact key exceeds its proof's
// key is proved and written, slot k by lane b * S + k (the rounds' order unless exact keys say otherwise);
// each other row is routed again by route_row_exact. The routed sum of row b is the xor butterfly over its
// S lanes, which gives warp_sum's bits (the lanes past K hold +0, which warp_sum's first steps add). Every
// lane of the warp calls it. warp_bias: the E bias entries (load_bias_lane's values).
template <int DT, int E, int G, int KG, int K>
__device__ __forceinline__ void finish_rows_bound(int n, i64 first_row, i64 row_step, u32 held_bound, int lane,
                                                  bool has_bias, const float* warp_bias,
                                                  const typename ScoreTraits<DT>::Raw* parked,
                                                  const u32* won, u32* stage_id, float* stage_p,
                                                  const void* scores, i64 row_stride, const void* bias,
                                                  int bias_dtype, int* out_ids, float* out_weights,
                                                  const OutputArgs& out) {
  constexpr int S = bound_slot_lanes(K);
  const int b = lane / S;
  const int q = lane % S;
  const bool live = b < n;
  const bool slot = live && q < K;
  __syncwarp();  // every lane's parked logits and the rounds' keys are in shared memory

  // ---- steps 1-2 exactly, for the K winners of each row (lane b * S + k: row b's round k) ----
  const int won_key = slot ? static_cast<int>(won[lane]) : kLowestInt;
  const int id = slot ? 255 - (won_key & 0xff) : 0;
  float px[1] = {slot ? ScoreTraits<DT>::to_float(parked[b * E + id]) : 0.0f};
  sigmoid_in_place<1, true>(px);
  const float p = px[0];
  u32 key = __float_as_uint(p) | 0x80000000u;  // biased_score_keys' two cases
  if (has_bias) key = probability_key(p, slot ? warp_bias[id] : 0.0f);

  // ---- the proof (above); a row without one takes the exact path ----
  u32 least_won = slot ? key : 0xffffffffu;
#pragma unroll
  for (int offset = S / 2; offset > 0; offset >>= 1) {
    least_won = min(least_won, __shfl_xor_sync(kFullMask, least_won, offset));
  }
  const u32 row_bound = __shfl_sync(kFullMask, held_bound, b);  // every lane: not inside the && below
  const bool proved = live && least_won > row_bound;

  // ---- the slots in exact order (the rounds' order unless exact keys say otherwise) ----
  const u32 next_key = __shfl_down_sync(kFullMask, key, 1);
  const int next_id = __shfl_down_sync(kFullMask, id, 1);
  const bool in_order = !proved || q >= K - 1 || key > next_key || (key == next_key && id < next_id);
  int slot_id = id;
  float slot_p = p;
  rank_slots_unless_in_order<K>(in_order, key, id, p, q, b * S, stage_id, stage_p, slot_id, slot_p);

  // ---- steps 6-8 ----
  float routed_sum = q < K ? slot_p : 0.0f;
#pragma unroll
  for (int offset = S / 2; offset > 0; offset >>= 1) routed_sum += __shfl_xor_sync(kFullMask, routed_sum, offset);
  const i64 row = first_row + b * row_step;
  if (proved) {
    int* const ids = out_ids + row * out.width;
    float* const weights = out_weights + row * out.width;
    if (q < K) {
      ids[q] = slot_id;
      weights[q] = output_scaling(routed_weight(slot_p, routed_sum, out), out);
    }
    shared_slots(ids, weights, row, routed_sum, q, S, out);
  }
  u32 unproved = __ballot_sync(kFullMask, live && q == 0 && !proved);
  __syncwarp();  // every lane has read the parked logits and the keys, before the next rows write them
  while (unproved != 0u) {
    const i64 again = first_row + ((__ffs(unproved) - 1) / S) * row_step;
    unproved &= unproved - 1u;
    route_row_exact<DT, E, G, KG, K>(row_start<typename ScoreTraits<DT>::Raw>(scores, again, row_stride), again,
                                     lane, bias, bias_dtype, out_ids, out_weights, out);
  }
}

// ======================================================================================================
// Specialized kernel: E, G, Kg, K known at compile time, the row in registers.
// ======================================================================================================
constexpr int kMaxWarpsPerBlock = 8;  // the specialized kernel's block: 256 threads at most

// The rows the warp bound kernel selects before it finishes them together: 32 / bound_slot_lanes(K), halved
// while 8 warps' shared memory (each warp's E bias entries, E shifts and the rows' parked logits, raw_bytes
// each, beside 4 KB of staging) would pass the 48 KB of a block's static shared memory.
__host__ __device__ constexpr int bound_batch(int e, int k, int raw_bytes) {
  int b = kWarpSize / bound_slot_lanes(k);
  while (b > 1 && kMaxWarpsPerBlock * (8 * e + b * e * raw_bytes) + 4096 > 48 * 1024) b /= 2;
  return b;
}


// The blocks per SM a warp kernel declares (__launch_bounds__' second argument; 0 declares none): see below
// for the latency kernel. The bound kernel, which finishes a batch of rows together (finish_rows_bound), is
// held to 4 blocks of 256 threads (64 registers), but 16-bit logits at E = 256 to 3 (80 registers), where 64
// registers spilled (DeepSeek-V3, T = 262144 on an H200, docs/perf.md session 19: bf16 131.1 us at 3 blocks
// against 138.4 at 4; float32, 2 rows a batch, 155.1 at 3 against 140.4 at 4; GLM-4.5, E = 160, bf16 92.6 at
// 4 against 98.4 at 3).
// The K-th largest of the warp's 32 lane maxima (counted with multiplicity) with its low kLaneBits bits
// cleared, in K rounds of one warp maximum: each lane names its maximum m by its lane, n = (m with the low 5
// bits cleared) | (31 - lane), so the 32 named values are distinct and a round's maximum is one lane's, which
// then drops out. The K-th round's maximum n_K, its low bits cleared, is the K-th largest lane maximum m_K's:
// the K lanes of the largest named values each have a maximum of at least n_K's high bits, so m_K is at least
// those; and the K lanes of the K largest maxima each have named values of at least m_K's high bits, so n_K's
// are at least m_K's. A lane that dropped out holds kNotCandidate (0), which only lane 31's named value can
// equal, and then only as the least of them. tests/test_optimized_numerics.py replays it on a numpy model.
constexpr int kLaneBits = 5;
template <int K>
__device__ __forceinline__ u32 lane_named_tau(u32 lane_max, int lane) {
  constexpr u32 kLaneMask = (1u << kLaneBits) - 1u;
  static_assert(kWarpSize == 1 << kLaneBits, "a lane's name fits the cleared bits");
  u32 named = (lane_max & ~kLaneMask) | (kLaneMask - static_cast<u32>(lane));
  u32 top = 0;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    top = __reduce_max_sync(kFullMask, named);
    named = named == top ? kNotCandidate : named;
  }
  return top & ~kLaneMask;
}
// Where the throughput kernel finds its floor by lane_named_tau (otherwise by K rounds of a maximum and a
// lowest-lane minimum, tau itself). Measured on an H200 (docs/perf.md, session 24; the same candidates on
// these inputs, so the difference is the code ptxas makes of the row loop): lane_named_tau took Qwen3-Next
// (E = 512) 0.93x at T = 262144, and GLM-4.5 (E = 160) and DeepSeek-V3 (E = 256) about 0.95x at T = 4096 and
// 16384, but Kimi-K2 (E = 384) 1.32x at 4096 and 1.06x from 65536 on (bf16 and float32 alike), so E = 384
// keeps the exact rounds. At K = 1 the exact round is one maximum already (its minimum is dead code).
__host__ __device__ constexpr bool named_tau_applies(int e, int k) { return k > 1 && e != 384; }

template <int PLAN, int DT, int E>
constexpr int kWarpMinBlocks =
    PLAN == kPlanLatency ? 1 : (PLAN == kPlanBound ? (E >= 256 && DT != kScoreFloat32 ? 3 : 4) : 0);

// The latency kernel runs at most one block per SM (its plan's definition), so it declares that minimum:
// without it ptxas held it to 64 registers and spilled the row index around the exact paths' calls, and a
// single row waited for that local load before its own (T = 1). The throughput kernel states no minimum
// (0 emits none) and keeps its registers as they were.
template <int DT, int SCORING, int E, int G, int KG, int K, int PLAN>
__global__ void __launch_bounds__(kMaxWarpsPerBlock * kWarpSize, kWarpMinBlocks<PLAN, DT, E>) route_warp_kernel(
    const void* __restrict__ scores, i64 num_rows, i64 row_stride, const void* __restrict__ bias,
    int bias_dtype, int num_experts, int num_groups, int topk_group, int topk, int scoring, int renormalize,
    int num_shared, int replica, int apply_scaling, float r, int plan, int* __restrict__ out_ids,
    float* __restrict__ out_weights) {
  constexpr int C = E / kWarpSize;  // experts per lane
  constexpr int N = E / G;          // experts per group
  constexpr int LPG = G == 1 ? kWarpSize : N / C;  // lanes per group
  constexpr bool kHasGroups = KG < G;
  static_assert(E % kWarpSize == 0, "the specialized kernel needs E % 32 == 0");
  static_assert(E % G == 0 && 1 <= KG && KG <= G, "invalid grouping");
  static_assert(G == 1 || (N % C == 0 && (LPG & (LPG - 1)) == 0 && LPG <= kWarpSize),
                "a group must span a power-of-two number of whole lanes");
  static_assert(1 <= K && K <= kWarpSize && K <= KG * N, "the specialized kernel needs K <= 32");
  static_assert(PLAN == kPlanThroughput || PLAN == kPlanLatency || PLAN == kPlanBound, "unknown plan");
  (void)num_experts;  // the compile-time SCORING, E, G, Kg, K stand for these
  (void)scoring;
  (void)num_groups;
  (void)topk_group;
  (void)topk;

  typedef RowLoader<DT, C> Loader;
  typedef typename Loader::Raw Raw;
  // Step 5's staging area, 32 candidates per warp (__launch_bounds__(256): at most 8 warps a block).
  // The throughput kernel's is one array per warp, the keys, ids and p of the 32 positions in three rows
  // at fixed offsets, so that a position's three stores share one address (separate arrays took an
  // address each). The latency kernel keeps three arrays: with the one array its single row took longer
  // (DeepSeek-V3 T = 1 on an H200: 1.89 -> 2.04 us, together with the rounds below).
  __shared__ __align__(16) u32 stage[PLAN != kPlanLatency ? kMaxWarpsPerBlock : 1][3][kWarpSize];
  __shared__ __align__(16) u32 stage_keys[PLAN == kPlanLatency ? kMaxWarpsPerBlock : 1][kWarpSize];
  __shared__ u32 stage_ids[PLAN == kPlanLatency ? kMaxWarpsPerBlock : 1][kWarpSize];
  __shared__ __align__(16) float stage_ps[PLAN == kPlanLatency ? kMaxWarpsPerBlock : 1][kWarpSize];
  const int lane = static_cast<int>(threadIdx.x) & (kWarpSize - 1);
  const i64 first_warp = (static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
  const i64 num_warps = static_cast<i64>(gridDim.x) * blockDim.x / kWarpSize;
  const bool vec = Loader::vector_ok(scores, row_stride);
  const bool has_bias = bias_dtype != kNoBias;
  // The throughput kernel (PLAN = kPlanThroughput) holds the throughput path alone. The latency kernel
  // holds both paths and follows the launch argument `plan` (the launcher passes kPlanLatency): measured
  // on the H200 (docs/perf.md), the same kernel with the check folded at compile time was slower at
  // T = 1 (DeepSeek-V3 2.65 against 2.22 us; ptxas schedules the row's chain differently), while the
  // throughput path gains from having no latency code at all (DeepSeek-V3 T = 262144: 274 -> 250 us).
  const bool latency = PLAN == kPlanLatency ? plan == kPlanLatency : false;  // warp-uniform
  // Step 5's rank counts pay off when K rounds of warp collectives are a long chain; for K = 1 the one
  // round is shorter than a rank count (Llama-4 on the H200, docs/perf.md: T = 1 1.82 -> 1.5 us), so the
  // latency kernel of a K = 1 row selects as the throughput plan does (and keeps its early bias load).
  const bool rank_select = K > 1 && latency;
  u32* stage_key;
  u32* stage_id;
  float* stage_p;
  if constexpr (PLAN != kPlanLatency) {
    stage_key = stage[threadIdx.x / kWarpSize][0];
    stage_id = stage[threadIdx.x / kWarpSize][1];
    stage_p = reinterpret_cast<float*>(stage[threadIdx.x / kWarpSize][2]);
  } else {
    stage_key = stage_keys[threadIdx.x / kWarpSize];
    stage_id = stage_ids[threadIdx.x / kWarpSize];
    stage_p = stage_ps[threadIdx.x / kWarpSize];
  }

  const OutputArgs out = make_output_args(E, K, num_shared, replica, renormalize, apply_scaling, r);
  wait_for_predecessors_and_release_successor(out.shared_weight);

  // The bias in registers, once per warp: before the loop in the throughput plan; in the latency plan
  // (one row per warp) after the row's logits are requested, so that the two loads overlap (T = 1 on an
  // H200: 3.00 -> 2.16 us). Each plan is its own kernel: any bias load inside the loop, even one that
  // never runs, made the throughput loop about 8% slower (docs/perf.md). Measured and not kept:
  // requesting the next row before routing this one (raw words live across the loop cost registers).
  float bias_f[C];
  if (!latency) load_bias_lane<C>(bias, bias_dtype, lane, bias_f);
  // The bound plan (select_row_bound, finish_rows_bound): its own kernel (PLAN = kPlanBound), the
  // throughput plan otherwise, for the table rows bound_plan_applies admits (optimized/dispatch.py: the
  // largest batches).
  constexpr bool kBound = PLAN == kPlanBound;
  static_assert(!kBound || bound_plan_applies(SCORING, E, G, KG, K), "the bound plan does not apply");
  // The bound plan's rows in batches (select_row_bound, then finish_rows_bound for kBatch rows at once):
  // each warp's shared memory holds its E bias entries (for the winners' exact keys), the lanes' shifted
  // bias (BoundConstants) and the batch's rows' raw logits (for the winners' exact p).
  constexpr int kSlotLanes = bound_slot_lanes(K);
  constexpr int kBatch = bound_batch(E, K, static_cast<int>(sizeof(Raw)));
  constexpr int kParkWords = kBatch * E * static_cast<int>(sizeof(Raw)) / 4;
  __shared__ __align__(16) float bound_bias[kBound ? kMaxWarpsPerBlock : 1][kBound ? 2 * E + kParkWords : 1];
  float* const warp_bias = bound_bias[kBound ? threadIdx.x / kWarpSize : 0];
  Raw* const parked = reinterpret_cast<Raw*>(warp_bias + 2 * E);
  // The throughput plan's softmax rows without a bias divide only their staged candidates' numerators (step
  // 5 says why that selects the same experts), not all E: Qwen3-Next, T = 262144 on an H200 0.98x the time
  // (docs/perf.md, session 13), at 80 registers as before (three bias words spill, read only with a bias).
  constexpr bool kLazySoftmax = SCORING == kSoftmax && PLAN == kPlanThroughput;

  // The row loop, compiled per layout (Layout): in the throughput plan (below 16 experts per lane) once for
  // vector loads and once for scalar loads, chosen once per launch. With the run-time `vec` inside the
  // loop ptxas if-converted the two kinds of load into one sequence under predicates: about 30 issue
  // slots per row (DeepSeek-V3 T = 262144 on an H200: 248 -> 219 us, with the sigmoid's NaN rule moved
  // to its exact path).
  const auto route_rows = [&](auto layout) {
    constexpr int kLoads = decltype(layout)::kLoads;
    const bool use_vec = kLoads == kEitherLoads ? vec : kLoads == kVectorLoads;
    // The bound plan requests each row's logits one row ahead (its rows wait on fewer instructions than
    // the exact path's, so the load's latency showed), the first before its constants are computed.
    typename Loader::InFlight ahead;
    if constexpr (kBound) {
      if (first_warp < num_rows) {
        Loader::issue(row_start<Raw>(scores, first_warp, row_stride), lane, use_vec, ahead);
      }
    } else {
      (void)ahead;
    }
    const typename PickType<kBound, BoundConstants<C>, NoBoundConstants<C>>::type bound(
        bias_f, lane, warp_bias + E + lane * C);
    if constexpr (kBound) {
#pragma unroll
      for (int j = 0; j < C; ++j) warp_bias[lane * C + j] = bias_f[j];
      __syncwarp();
      // The bound plan: each row selected on approximate keys as it arrives (select_row_bound; its logits
      // parked raw, its proof's key held by lane b of the batch), then kBatch rows finished at once
      // (finish_rows_bound: the winners' exact keys, the proofs, the slots and the writes), one row's K
      // slots in kSlotLanes lanes, where one row at a time used K of the 32 lanes for those steps. A row
      // the proof leaves is routed again by route_row_exact (a call: inline, the exact path took
      // DeepSeek-V3's kernel to 78 registers; with the call and 64, T = 262144 took 141.6 instead of
      // 147.5 us on an H200). The loop runs once past the warp's last row to finish a partial batch.
      int pending = 0;  // rows selected, not yet finished (warp-uniform)
      i64 batch_first = first_warp;
      u32 held_bound = 0xffffffffu;
      for (i64 row = first_warp;; row += num_warps) {
        const bool has_row = row < num_rows;
        if (has_row) {
          const typename Loader::InFlight in_flight = ahead;
          const i64 next_row = row + num_warps;  // past the last row: this row again, unused
          Loader::issue(row_start<Raw>(scores, next_row < num_rows ? next_row : row, row_stride), lane, use_vec,
                        ahead);
          float x[C];
          Loader::widen(in_flight, x);
          Loader::park(in_flight, parked + pending * E, lane);
          const u32 proof_key =
              select_row_bound<E, G, KG, K>(x, lane, bound, has_bias, stage_key + pending * kSlotLanes);
          held_bound = lane == pending ? proof_key : held_bound;
          ++pending;
        }
        if (pending == kBatch || (!has_row && pending > 0)) {
          finish_rows_bound<DT, E, G, KG, K>(pending, batch_first, num_warps, held_bound, lane, has_bias,
                                             warp_bias, parked, stage_key, stage_id, stage_p, scores,
                                             row_stride, bias, bias_dtype, out_ids, out_weights, out);
          pending = 0;
          batch_first = row + num_warps;
        }
        if (!has_row) break;
      }
    } else {
      for (i64 row = first_warp; row < num_rows; row += num_warps) {
        // ---- step 1: probabilities (x is overwritten by p) ----
        typename Loader::InFlight in_flight;
        Loader::issue(row_start<Raw>(scores, row, row_stride), lane, use_vec, in_flight);
        if (latency && row == first_warp) load_bias_lane<C>(bias, bias_dtype, lane, bias_f);
        float p[C];
        // `lazy` (kLazySoftmax, no bias, a finite row maximum; warp-uniform): p holds the numerators
        // expf(x - rowmax) until step 5, each expert's p being div.rn(p[j], row_sum).
        bool lazy = false;
        float row_sum = 1.0f;
        if constexpr (SCORING == kSigmoid) {
          Loader::widen(in_flight, p);
          sigmoid_in_place<C, true>(p);
        } else {
          Loader::decode(in_flight, p);
          if constexpr (kLazySoftmax) {
            if (has_bias) {
              softmax_in_place<C, true>(p);
            } else {
              bool far;  // decided again where all E are divided (below), so not held across the rows
              row_sum = softmax_numerators_in_place<C, true>(p, far, lazy);
            }
          } else {
            softmax_in_place<C, true>(p);
          }
        }

        // ---- step 2: biased_scores (lazy: the numerators' keys, in the same order as p's) ----
        u32 key[C];
        biased_score_keys<C>(p, bias_f, has_bias, key);

        if constexpr (kHasGroups) {
          // ---- step 3: group_scores; step 4: group_selection (a dropped group's keys are no candidates) ----
          const u32 my_group_key = group_key_of_lanes<C, LPG, N == 1>(key, has_bias);
          if (!group_kept<G, KG, LPG, PLAN != kPlanLatency>(my_group_key, lane / LPG, 0)) {
  #pragma unroll
            for (int j = 0; j < C; ++j) key[j] = kNotCandidate;
          }
        }

        // ---- step 5: expert_selection; lane k ends with slot k's (id, p) ----
        int slot_id = 0;
        float slot_p = 0.0f;
        float routed_sum = 0.0f;
        bool summed = false;  // warp-uniform: the latency plan sums the parked slots itself
        // tau = the K-th largest lane maximum (where named_tau_applies, the throughput plan's has its low
        // kLaneBits bits cleared, so it is at most that): K lanes hold a key >= tau, so the K winners all
        // have key >= tau. Usually few keys pass; when at most 32 do, they are staged in shared memory (in
        // ascending expert order, one per lane) and the K winners are picked among them. Otherwise (many
        // exact ties) K argmax rounds scan every lane's C keys. The two plans (header comment) may stage
        // different candidates (the throughput plan's include the latency plan's) and pick the same winners
        // in the same slots.
        const u32 lane_max = max_in_tree<C>(key);
        u32 tau = kNotCandidate;
        __syncwarp();  // the previous row's reads of this warp's staging area are done
        if (rank_select) {
          // tau is the K-th largest lane maximum, counted with multiplicity: the least lane maximum that
          // fewer than K lane maxima exceed (those are exactly the maxima >= tau). No tie rule is needed.
          stage_key[lane] = lane_max;
          __syncwarp();
          const int larger = count_larger_staged(stage_key, lane_max);
          tau = __reduce_min_sync(kFullMask, larger < K ? lane_max : 0xffffffffu);
        } else {
          // Where named_tau_applies, tau with its low kLaneBits bits cleared (lane_named_tau: K rounds of
          // one warp maximum; the floor is then at most tau, so the candidates include tau's); elsewhere the
          // K-th largest lane maximum itself, a warp maximum and a lowest-lane minimum a round.
          if constexpr (named_tau_applies(E, K)) {
            tau = lane_named_tau<K>(lane_max, lane);
          } else {
            u32 v = lane_max;
  #pragma unroll
            for (int k = 0; k < K; ++k) {
              tau = __reduce_max_sync(kFullMask, v);
              const u32 first = __reduce_min_sync(kFullMask, v == tau ? static_cast<u32>(lane) : kNoIndex);
              v = static_cast<u32>(lane) == first ? kNotCandidate : v;
            }
          }
        }
        u32 floor_key = max(tau, 1u);  // a candidate: key >= tau, and never key 0
        // lazy, and the candidates' numerators may fall outside quotient_in_range (e_tau < 2^-63, so that
        // e_cut may be below 2^-64): every p is computed instead, as in a row with many exact ties.
        bool lazy_far = false;
        if (lazy) {
          // The keys are numerators e, and p = RN(e / row_sum) is non-decreasing in e. K lanes hold an e >=
          // e_tau, so the K-th largest p is >= p_tau = RN(e_tau / row_sum), and every expert whose p is
          // >= p_tau (the K winners, and any expert tied with the K-th) has e / row_sum above the midpoint
          // between p_tau and the float below it, b: e > b * row_sum >= RD(b * row_sum) = e_cut. The
          // candidates are those with e >= e_cut (the floor only moves down: e_cut < e_tau); each staged one
          // gets its p below, and the rounds run on p's keys, so the winners and their slots are those of
          // every p computed.
          // With e_tau >= 2^-63, e_cut > e_tau (1 - 2^-21) >= 2^-64, so every candidate's p, and p_tau, is
          // quotient_in_range's.
          const float e_tau = __uint_as_float(tau & 0x7fffffffu);
          lazy_far = !(e_tau >= 0x1p-63f);
          const float p_tau = quotient_in_range(e_tau, row_sum);
          const float below = __uint_as_float(__float_as_uint(p_tau) - 1u);
          floor_key = max(__float_as_uint(__fmul_rd(below, row_sum)) | 0x80000000u, 1u);
        }
        int count = 0;
  #pragma unroll
        for (int j = 0; j < C; ++j) count += key[j] >= floor_key ? 1 : 0;
        int below = 0;  // candidates in the lanes below this one
        int staged = 0;
        if (rank_select) {
          // One ballot per register position, independent of each other.
          const u32 lanes_below = (1u << lane) - 1u;
  #pragma unroll
          for (int j = 0; j < C; ++j) {
            const u32 holders = __ballot_sync(kFullMask, key[j] >= floor_key);
            below += __popc(holders & lanes_below);
            staged += __popc(holders);
          }
        } else {
          int inclusive = count;  // inclusive prefix sum of the counts over the lanes
  #pragma unroll
          for (int d = 1; d < kWarpSize; d <<= 1) {
            const int lower = __shfl_up_sync(kFullMask, inclusive, d);
            inclusive += lane >= d ? lower : 0;
          }
          below = inclusive - count;
          staged = __shfl_sync(kFullMask, inclusive, kWarpSize - 1);
        }

        if (staged <= kWarpSize && !lazy_far) {
          __syncwarp();  // the latency plan's reads of the lane maxima are done
          int slot = below;
  #pragma unroll
          for (int j = 0; j < C; ++j) {
            if (key[j] >= floor_key) {
              stage_key[slot] = key[j];
              stage_id[slot] = static_cast<u32>(lane * C + j);
              stage_p[slot] = p[j];
              ++slot;
            }
          }
          // The slots' counts read all 32 positions: those past the candidates hold no key (a lane's own
          // position, which no candidate takes; before this, its lane maximum).
          if (rank_select && lane >= staged) stage_key[lane] = kNotCandidate;
          __syncwarp();
          const bool has = lane < staged;
          u32 cand_key = has ? stage_key[lane] : kNotCandidate;
          if (lazy) {  // each staged candidate's p, and its key (no bias: p's bits with the sign bit set)
            if (has) {
              const float cand_p = quotient_in_range(stage_p[lane], row_sum);
              cand_key = __float_as_uint(cand_p) | 0x80000000u;
              stage_p[lane] = cand_p;  // its own position: the winners' p are read from there
            }
            __syncwarp();
          }
          if constexpr (PLAN != kPlanLatency) {
            // K rounds over the staged keys; lane k keeps round k's winning position, and then reads that
            // position's id and p (one load each, instead of two shuffles and two selects per round).
            int won_at = 0;
  #pragma unroll
            for (int k = 0; k < K; ++k) {
              const u32 top = __reduce_max_sync(kFullMask, cand_key);
              // Slots are in ascending expert order: the lowest lane holding the top key is the lowest index.
              const int w = __ffs(__ballot_sync(kFullMask, cand_key == top)) - 1;
              cand_key = lane == w ? kNotCandidate : cand_key;
              won_at = lane == k ? w : won_at;
            }
            if (lane < K) {
              slot_id = static_cast<int>(stage_id[won_at]);
              slot_p = stage_p[won_at];
            }
          } else {  // the latency kernel (both of its paths), as measured fastest for its single row
            const u32 cand_id = has ? stage_id[lane] : 0u;
            const float cand_p = has ? stage_p[lane] : 0.0f;
            if (rank_select) {
              // Each candidate's rank among the staged ones is its slot; the winners park (id, p) at their
              // slot, and lane k collects slot k.
              // A candidate's slot: how many candidates are larger, plus how many equal ones sit at a lower
              // position (positions ascend with the expert index: SPEC's tie rule). Without ties the counts of
              // the larger ones are exactly 0 .. staged - 1, which one OR over the lanes confirms; only then is
              // the match over the lanes (slow with many distinct keys) skipped. Positions past the candidates
              // hold no key, and so do lanes past them.
              int rank = count_larger_staged(stage_key, cand_key);
              const u32 seen = __reduce_or_sync(kFullMask, has ? 1u << rank : 0u);
              if (seen != (staged == kWarpSize ? kFullMask : (1u << staged) - 1u)) {  // ties: warp-uniform
                rank += __popc(__match_any_sync(kFullMask, cand_key) & ((1u << lane) - 1u));
              }
              __syncwarp();  // every lane has read its candidate's id and p
              if (has && rank < K) {
                stage_id[rank] = cand_id;
                stage_p[rank] = cand_p;
              }
              __syncwarp();
              if (lane < K) {
                slot_id = static_cast<int>(stage_id[lane]);
                slot_p = stage_p[lane];
              }
              // routed_weights' sum from the K parked p (broadcast reads, a few adds), the bits of the
              // lanes' butterfly without its five dependent shuffles.
              float parked[K];
  #pragma unroll
              for (int k = 0; k < K; ++k) parked[k] = stage_p[k];
              routed_sum = butterfly_sum<K>(parked);
              summed = true;
            } else {  // the throughput path: K rounds, each winner's id and p taken by shuffles
  #pragma unroll
              for (int k = 0; k < K; ++k) {
                const u32 top = __reduce_max_sync(kFullMask, cand_key);
                // Slots are in ascending expert order: the lowest lane holding the top key is the lowest index.
                const int w = __ffs(__ballot_sync(kFullMask, cand_key == top)) - 1;
                const int id = static_cast<int>(__shfl_sync(kFullMask, cand_id, w));
                const float won_p = __shfl_sync(kFullMask, cand_p, w);
                cand_key = lane == w ? kNotCandidate : cand_key;
                slot_id = lane == k ? id : slot_id;
                slot_p = lane == k ? won_p : slot_p;
              }
            }
          }
        } else {
          if (lazy) {  // every p and its key (rows with many exact ties, or lazy_far)
            bool far = false;
  #pragma unroll
            for (int j = 0; j < C; ++j) far |= !quotient_in_range_ok(p[j]);
            divide_by_sum<C>(p, row_sum, __any_sync(kFullMask, far), p);
            biased_score_keys<C>(p, bias_f, false, key);
          }
          // Written as selects, not branches: the warp stays converged around the redux and shuffle.
  #pragma unroll
          for (int k = 0; k < K; ++k) {
            u32 best;
            int best_j;
            best_in_order<C>(key, best, best_j);  // the lowest j wins inside the lane
            const u32 winner = warp_argmax_index(best, static_cast<u32>(lane * C + best_j));
            const int owner = static_cast<int>(winner / C);
            float won_p = take_at<C>(key, p, best_j, owner == lane);
            won_p = __shfl_sync(kFullMask, won_p, owner);
            slot_id = lane == k ? static_cast<int>(winner) : slot_id;
            slot_p = lane == k ? won_p : slot_p;
          }
        }

        // ---- steps 6-8: routed_weights, shared_slots, output_scaling ----
        if (!summed) routed_sum = routed_sum_from_lanes(slot_p, lane, out);
        write_row_from_lanes(out_ids + row * out.width, out_weights + row * out.width, row, slot_id, slot_p,
                             routed_sum, lane, out);
      }
    }
  };
  if constexpr (PLAN == kPlanLatency || C >= 16) {
    route_rows(Layout<kEitherLoads>());
  } else if (vec) {
    route_rows(Layout<kVectorLoads>());
  } else {
    route_rows(Layout<kScalarLoads>());
  }
}

// ======================================================================================================
// Row-per-segment kernel: E % 32 == 0 and E / L <= 32, each group (if any) on a power-of-two number of
// whole lanes of the segment; step 5's throughput plan. The dispatch table uses it for E = 64 (L = 8),
// E = 128 (L = 16) and DeepSeek-V2 (E = 160, 8 groups of 20: L = 16, 10 experts per lane, a group on 2
// lanes). A warp routes 32 / L rows at once, one per aligned segment of L lanes; lane q of a segment owns
// the C = E / L contiguous experts [q * C, (q + 1) * C), that is, the experts of lanes q * M .. q * M + M
// - 1 of the warp kernels' layout (M = 32 / L). Why: at small E a warp per row pays its selection (K
// rounds of warp collectives, a shuffle scan, a staging pass) over few bytes, and the collectives form a
// long chain per row. With 16 or more experts per lane it is slower (the slow paths' subroutine calls keep
// the arrays in local memory: docs/perf.md, session 8). Here the groups are scored by a butterfly inside
// their lanes and ranked by one shuffle per group, and the selection is K argmax rounds inside the
// segment: each lane offers its best remaining key, the segment's largest is found by log2(L) xor shuffles
// and its lowest holder by one ballot; each instruction serves 32 / L rows. A lane's best key comes from a
// sorting network run once over its C keys (kSortLanes: a round then moves the winner's next key up), or
// from a tree over its C keys every round (K = 1). Where the keys can name their expert (kNamedKeys: E <= 256,
// at most 10 experts a lane, a slot per lane; every table row with K > 1) a round needs no ballot
// (select_by_named_keys), and the exact rounds serve only the warps it cannot prove; a row's groups are
// ranked on its exact keys first (group_kept_in_segment), and a dropped group's lanes name no candidate.
// Every order is the warp kernels': the groups' keys are the same integers, the rounds pick the largest
// key with the lowest expert index, and the two float sums replay their butterflies (segment_row_sum,
// butterfly_sum), so the output is bitwise theirs (and the generic kernel's; GPU test). Every lane takes
// part in every shuffle (full mask): a segment past the last row routes a copy of the last row and stores
// nothing, so the loop condition is the warp's and the collectives never diverge.
// ======================================================================================================

// The largest of a segment's lanes' values (xor shuffles inside the aligned L-lane segment): unsigned keys,
// or the bound plan's signed approximate keys. kRedux (the rounds of the rows redux_rounds_apply admits,
// L = 16): two full-warp redux.sync, one per segment of the warp with the other segment's lanes neutral (the
// least value of T), instead of 4 dependent shuffles and 4 maxima: a shorter chain, but REDUX's lower
// throughput (SASS: 2 selects, 2 REDUX into uniform registers, 2 moves and a select). A redux.sync over the
// segment's own lanes (a mask per segment) compiled to a convergence loop and was 1.05x to 1.63x slower
// (docs/perf.md, session 17).
template <int L, bool kRedux = false, typename T>
__device__ __forceinline__ T segment_max(T v) {
  if constexpr (kRedux) {
    static_assert(L == 16 && sizeof(T) == 4, "the redux segment maximum: two 16-lane segments, 32-bit values");
    constexpr T kLeast = T(~T(0)) > T(0) ? T(0) : static_cast<T>(0x80000000u);  // u32 0, int INT_MIN
    const bool upper = (threadIdx.x & 16u) != 0;
    const T low = __reduce_max_sync(kFullMask, upper ? kLeast : v);
    const T high = __reduce_max_sync(kFullMask, upper ? v : kLeast);
    return upper ? high : low;
  } else {
#pragma unroll
    for (int offset = L / 2; offset > 0; offset >>= 1) v = max(v, __shfl_xor_sync(kFullMask, v, offset));
    return v;
  }
}

// The least of a segment's lanes' values.
template <int L>
__device__ __forceinline__ u32 segment_min(u32 v) {
#pragma unroll
  for (int offset = L / 2; offset > 0; offset >>= 1) v = min(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// The sum of a segment's lanes' counts.
template <int L>
__device__ __forceinline__ u32 segment_count(u32 v) {
#pragma unroll
  for (int offset = L / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// The warp kernels' softmax sum, from the M lane-sequential sums part[m] of the warp-kernel lanes
// q * M + m that this segment lane stands for: warp_sum's offsets d = 16, 8, ..., 1 in the same order;
// an offset d >= M pairs lane q * M + m with (q ^ (d / M)) * M + m (a shuffle inside the segment), an
// offset d < M pairs m with m ^ d inside the lane. Every segment lane ends with the same bits.
template <int M, int L>
__device__ __forceinline__ float segment_row_sum(float (&part)[M]) {
#pragma unroll
  for (int d = kWarpSize / 2; d >= M; d >>= 1) {
#pragma unroll
    for (int m = 0; m < M; ++m) part[m] += __shfl_xor_sync(kFullMask, part[m], d / M);
  }
#pragma unroll
  for (int d = M / 2; d > 0; d >>= 1) {
#pragma unroll
    for (int m = 0; m < d; ++m) part[m] = part[m] + part[m + d];  // lane m ^ d = m + d holds the same bits
  }
  return part[0];
}

// Step 1, softmax, for a segment lane's C logits in place: bitwise softmax_in_place<C / M, true> of the
// warp kernels on the lanes it stands for. The row statistics and the sum are computed for every row
// (the shuffles need every lane); each lane then takes its row's case. The division's fast path is
// decided per lane: both paths give div.rn's bits.
// kUnfiltered: the logits come with NaN unfiltered (RowLoader::widen). A row whose sum is finite has no
// NaN, no +inf and a finite maximum (fmaxf ignores NaN, and a NaN, a +inf maximum or an all -inf row each
// make a numerator NaN), so it takes the first path, which neither filters NaN (a compare and a select per
// logit) nor counts +inf entries. Only when some row of the warp has a NaN sum (warp-uniform) do all its
// rows start over with NaN read as -inf, along the second path, which handles every case. Otherwise the
// logits come NaN-filtered (RowLoader::decode) and take the second path alone.
// kLazy (with kUnfiltered; the named keys of softmax rows, select_by_named_keys): where `lazy_allowed` (no
// bias; the same in every lane) and the first path applies, x is left holding the numerators expf(x -
// rowmax), `row_sum` their row's sum, and it returns true: each p is RN(x / row_sum), divided later for the
// few experts that need it. Otherwise it returns false with x holding p.
template <int C, int L, bool kUnfiltered, bool kLazy = false>
__device__ __forceinline__ bool softmax_segment_in_place(float (&x)[C], bool lazy_allowed, float& row_sum) {
  constexpr int M = kWarpSize / L;  // warp-kernel lanes per segment lane
  constexpr int CW = C / M;         // experts per warp-kernel lane
  static_assert(C % M == 0, "a segment lane stands for whole warp-kernel lanes");
  static_assert(!kLazy || kUnfiltered, "the lazy numerators are the first path's");
  // The exps, their lane-sequential sums (softmax_row's order) and the segment's sum, from a maximum.
  float numerator[C];
  const auto row_sum_of = [&](float row_max) {
    float part[M];
#pragma unroll
    for (int m = 0; m < M; ++m) {
      part[m] = 0.0f;
#pragma unroll
      for (int c = 0; c < CW; ++c) {
        numerator[m * CW + c] = expf(x[m * CW + c] - row_max);
        part[m] += numerator[m * CW + c];
      }
    }
    return segment_row_sum<M, L>(part);
  };
  // Whether some numerator of this lane is outside quotient_in_range_ok (divide_by_sum's exact path).
  const auto far_of = [&]() {
    bool far = false;
#pragma unroll
    for (int j = 0; j < C; ++j) far |= !quotient_in_range_ok(numerator[j]);
    return far;
  };
  if constexpr (kUnfiltered) {
    const float first_max = from_orderable(segment_max<L>(orderable(float_max_in_tree<C>(x))));
    const float sum = row_sum_of(first_max);
    if (!__any_sync(kFullMask, sum != sum)) {  // every row of the warp: finite maximum, no NaN
      if (kLazy && lazy_allowed) {
#pragma unroll
        for (int j = 0; j < C; ++j) x[j] = numerator[j];
        row_sum = sum;
        return true;
      }
      // far_of() from the lane's least logit instead of each numerator (about 2.5 instructions a numerator
      // to 1): numerators_in_fast_range's argument. No NaN here, so fminf sees every logit.
      divide_by_sum<C>(numerator, sum, !numerators_in_fast_range(float_min_in_tree<C>(x), first_max), x);
      return false;
    }
#pragma unroll
    for (int j = 0; j < C; ++j) x[j] = nan_to_neg_inf(x[j]);
  }
  const float row_max = from_orderable(segment_max<L>(orderable(float_max_in_tree<C>(x))));
  u32 num_inf = 0;  // counted only when some segment's row has a +inf logit; the vote keeps the
  if (__any_sync(kFullMask, row_max == pos_inf())) {  // segment shuffles warp-uniform
#pragma unroll
    for (int j = 0; j < C; ++j) num_inf += x[j] == pos_inf() ? 1u : 0u;
    num_inf = segment_count<L>(num_inf);
  }
  const float sum = row_sum_of(row_max);
  if (row_max == pos_inf()) {  // the +inf entries share 1
    const float share = 1.0f / static_cast<float>(num_inf);
#pragma unroll
    for (int j = 0; j < C; ++j) x[j] = x[j] == pos_inf() ? share : 0.0f;
  } else if (row_max == neg_inf()) {  // a row of all -inf
#pragma unroll
    for (int j = 0; j < C; ++j) x[j] = 0.0f;
  } else {
    divide_by_sum<C>(numerator, sum, far_of(), x);
  }
  return false;
}

// RN(n / s) of one softmax numerator per lane (n in [0, 1], s a row sum in [1, E]): quotient_in_range, unless
// some lane's numerator is outside its range, when every lane of the warp takes div.rn, out of line
// (warp-uniform: call it from every lane). The lazy numerators' few divisions (select_by_named_keys, the
// group maxima and the slots' p).
// Both static (internal linkage): emitted only into a module whose kernels call them.
static __device__ __noinline__ float ieee_quotient(float a, float b) { return a / b; }  // out of line: rare
static __device__ __forceinline__ float lazy_quotient(float n, float s) {
  if (__any_sync(kFullMask, !quotient_in_range_ok(n))) return ieee_quotient(n, s);
  return quotient_in_range(n, s);
}

// The largest of N keys and its position: a balanced tree over the halves of the positions in which the
// higher half wins only with a strictly larger key, so the lowest position wins among equal keys (the
// same answer as best_in_order's scan, with independent comparisons instead of a chain of N).
template <int N, int First = 0, int Count = N>
__device__ __forceinline__ void best_in_tree(const u32 (&key)[N], u32& best, int& at) {
  if constexpr (Count == 1) {
    best = key[First];
    at = First;
  } else {
    u32 low, high;
    int low_at, high_at;
    best_in_tree<N, First, Count / 2>(key, low, low_at);
    best_in_tree<N, First + Count / 2, Count - Count / 2>(key, high, high_at);
    const bool right = high > low;  // the higher half wins only with a strictly larger key
    best = right ? high : low;
    at = right ? high_at : low_at;
  }
}

// One comparator in the rounds' order (larger key first, lower position first among equal keys): entry
// (ka, pa) becomes the first of the two, (kb, pb) the second; kKind says which of them is written.
template <int kKind>
__device__ __forceinline__ void order_two(u32& ka, int& pa, u32& kb, int& pb) {
  const bool b_first = kb > ka || (kb == ka && pb < pa);
  const u32 first = max(ka, kb);
  const u32 second = min(ka, kb);
  const int first_at = b_first ? pb : pa;
  const int second_at = b_first ? pa : pb;
  if constexpr ((kKind & 1) != 0) {
    ka = first;
    pa = first_at;
  }
  if constexpr ((kKind & 2) != 0) {
    kb = second;
    pb = second_at;
  }
}

// The first M of a lane's C keys and their positions in the rounds' order (SortingNetwork<C, M>, unrolled
// at compile time: every index a constant, so the arrays stay in registers); the entries from M on are
// left in no particular order.
template <int C, int M, int I = 0>
__device__ __forceinline__ void sort_in_round_order(u32 (&key)[C], int (&at)[C]) {
  constexpr SortingNetwork<C, M> kNet{};
  if constexpr (I < kNet.size) {
    constexpr int kA = kNet.a[I];
    constexpr int kB = kNet.b[I];
    order_two<kNet.kind[I]>(key[kA], at[kA], key[kB], at[kB]);
    sort_in_round_order<C, M, I + 1>(key, at);
  }
}

// Step 5 of a segment's row in exact rounds on sorted keys (kSortLanes): each lane sorts its C keys in the
// rounds' order once; a round compares the lanes' first keys: the segment's largest, held by its lowest lane
// (lanes own ascending expert ranges), wins, and that lane moves its next key up (only the entries the
// remaining rounds can still reach). Slot k's expert in slot_id[k] and, where kSlotPerLane, in lane k's
// my_id.
template <int C, int K, int L, bool kSlotPerLane, bool kRedux = false>
__device__ __forceinline__ void sorted_rounds(u32 (&key)[C], int q, int segment_base, int (&slot_id)[K],
                                              int& my_id) {
  constexpr int M = C < K ? C : K;  // the most rounds one lane can win
  constexpr u32 kSegmentLanes = (1u << L) - 1u;
  int at[C];
#pragma unroll
  for (int j = 0; j < C; ++j) at[j] = j;
  sort_in_round_order<C, M>(key, at);
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const u32 top = segment_max<L, kRedux>(key[0]);
    const u32 holders = (__ballot_sync(kFullMask, key[0] == top) >> segment_base) & kSegmentLanes;
    const int owner = __ffs(holders) - 1;
    const int owner_at = __shfl_sync(kFullMask, at[0], segment_base + owner);
    slot_id[k] = owner * C + owner_at;
    if constexpr (kSlotPerLane) my_id = q == k ? slot_id[k] : my_id;
    const bool mine = q == owner;
    // Entry m + 1 < K - k <= M moves up: the remaining K - 1 - k rounds reach no further.
#pragma unroll
    for (int m = 0; m < K - 1 - k && m < C; ++m) {
      key[m] = mine ? (m + 1 < C ? key[m + 1] : kNotCandidate) : key[m];
      if (m + 1 < C) at[m] = mine ? at[m + 1] : at[m];
    }
  }
}

// Steps 1 to 8 of a segment's row in the bound plan, for the sigmoid rows without groups whose slots sit
// one per lane (route_segment_kernel's kSegmentBound): select_row_bound's argument without its group part.
// Each lane keeps its first D = min(C, K + 1) approximate keys sorted, so no lane runs out before the
// (K + 1)-th round; K + 1 rounds of log2(L) xor shuffles take the K largest keys (lane k keeps round k's)
// and a(K + 1); lane k < K computes its winner's exact p and key. The row is proved when the least exact
// winner key exceeds a(K + 1) + bmin + M (rounded upwards) and a(K + 1) is finite; the slots are then the
// winners in exact key order (checked, else ranked). Returns whether this lane's row is proved (the same in
// every lane of the segment) and, where it is and `active`, has written it. Every lane of the warp takes
// part in every shuffle. warp_x: the warp's 32 * C words, room for the rows' logits (lane-major, as the
// segment kernel parks its p); warp_bias: the bias entries each lane holds, at the same places;
// stage_id, stage_p: the warp's 32 words each, for the rare rows whose slots must be ranked.
template <int E, int K, int L>
__device__ __forceinline__ bool route_segment_row_bound(const float (&x)[E / L], i64 row, bool active, int q,
                                                        int segment_base, const BoundConstants<E / L>& bc,
                                                        float* warp_x, const float* warp_bias, bool has_bias,
                                                        u32* stage_id, float* stage_p, int* out_ids,
                                                        float* out_weights, const OutputArgs& out) {
  constexpr int C = E / L;
  constexpr int D = C < K + 1 ? C : K + 1;
  constexpr int P = K <= 2 ? 2 : (K <= 4 ? 4 : (K <= 8 ? 8 : 16));  // the routed sum's butterfly span
  static_assert(E <= 256 && 1 < K && K <= L, "one byte names an expert; slot q sits in lane q");
  const int lane = segment_base + q;

  // ---- steps 1-2 on approximate keys, each lane's first D sorted; the logits parked for the winners ----
  int a[C];
  approx_keys<C>(x, bc, a);
  sort_keys_descending<C, D>(a);
  __syncwarp();  // the previous rows' reads of warp_x are done
  park_logits<C>(x, warp_x + lane * C);

  // ---- step 5 on approximate keys: K rounds (lane k keeps round k's key), then a(K + 1) ----
  int won = kLowestInt;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int top = segment_max<L>(a[0]);
    const bool mine = a[0] == top;  // one lane: the keys are distinct
#pragma unroll
    for (int d = 0; d + 1 < D; ++d) a[d] = mine ? a[d + 1] : a[d];
    a[D - 1] = mine ? kLowestInt : a[D - 1];
    won = q == k ? top : won;
  }
  const int next = segment_max<L>(a[0]);
  __syncwarp();  // the logits are parked

  // ---- steps 1-2 exactly, for the K winners (lane k: round k's) ----
  const bool slot = q < K;
  const int id = slot ? 255 - (won & 0xff) : 0;
  float px[1] = {slot ? warp_x[segment_base * C + id] : 0.0f};
  sigmoid_in_place<1, false>(px);
  const float p = px[0];
  u32 key = __float_as_uint(p) | 0x80000000u;  // biased_score_keys' two cases
  if (has_bias) key = probability_key(p, slot ? warp_bias[segment_base * C + id] : 0.0f);

  // ---- the proof; a row without one is left to the exact path ----
  const u32 least_won = segment_min<L>(slot ? key : 0xffffffffu);
  const float bound = __fadd_ru(__fadd_ru(__int_as_float(next), bc.bmin), bc.margin);
  const bool proved = static_cast<u32>(next) < 0x7f800000u && least_won > orderable(bound);

  // ---- the slots in exact order (the rounds' order unless exact keys say otherwise) ----
  const u32 next_key = __shfl_down_sync(kFullMask, key, 1);
  const int next_id = __shfl_down_sync(kFullMask, id, 1);
  const bool in_order = !proved || q >= K - 1 || key > next_key || (key == next_key && id < next_id);
  int slot_id = id;
  float slot_p = p;
  rank_slots_unless_in_order<K>(in_order, key, id, p, q, segment_base, stage_id, stage_p, slot_id, slot_p);

  // ---- steps 6-8: slot q in lane q, the routed sum the warp kernels' butterfly inside the segment ----
  float routed_sum = slot ? slot_p : 0.0f;
#pragma unroll
  for (int d = P / 2; d > 0; d >>= 1) routed_sum += __shfl_xor_sync(kFullMask, routed_sum, d);
  if (active && proved) {
    int* ids = out_ids + row * out.width;
    float* weights = out_weights + row * out.width;
    if (slot) {
      ids[q] = slot_id;
      weights[q] = output_scaling(routed_weight(slot_p, routed_sum, out), out);
    }
    shared_slots(ids, weights, row, routed_sum, q, L, out);
  }
  return proved;
}

// The exact keys of segment lane q's C experts (biased_score_keys), again: their p from the warp's parked p
// (lane-major, C words a lane; base: the segment's first lane) and their bias from the E-entry table.
template <int C>
__device__ __forceinline__ void parked_keys(const float* warp_p, const float* bias_table, bool has_bias, int q,
                                            int base, u32 (&key)[C]) {
  float p[C];
  float bias[C];
#pragma unroll
  for (int j = 0; j < C; ++j) {
    p[j] = warp_p[(base + q) * C + j];
    bias[j] = bias_table[q * C + j];
  }
  biased_score_keys<C>(p, bias, has_bias, key);
}

// The bits of a named key that name its expert (select_by_named_keys): E <= 2^b.
template <int E>
constexpr int kNameBits = E <= 32 ? 5 : (E <= 64 ? 6 : (E <= 128 ? 7 : 8));

// Step 2 and select_by_named_keys' naming at once, for route_segment_kernel's kNamedKeys rows without
// groups (no group key needs the keys unnamed) and at most 8 experts a lane: without a bias two instructions
// a key where apart they took three (the sign bit, the field, the index). With mask = 2^b - 1 and e <= mask,
// select_by_named_keys' n = (k | mask) - e; without a bias k = p's bits | 0x80000000 (biased_score_keys), so
// n = (p's bits & 0x7fffffff & ~mask) + (0x80000000 + mask - e): a mask, then one three-input add of a base
// and the constant j (e = first_id + j). first_id is read again each row (an empty asm the compiler cannot
// move): held, the C names cost C registers (Qwen3-MoE: 80 registers, or 48 bytes of spills at 64).
template <int C, int E>
__device__ __forceinline__ void named_score_keys(const float (&p)[C], const float* lane_bias, bool has_bias,
                                                 u32 first_id, u32 (&key)[C]) {
  constexpr u32 kIdMask = (1u << kNameBits<E>) - 1u;
  asm volatile("" : "+r"(first_id));
  if (has_bias) {  // lane_bias: the lane's C entries (shared memory, read only here)
#pragma unroll
    for (int j = 0; j < C; ++j) key[j] = (probability_key(p[j], lane_bias[j]) | kIdMask) - (first_id + j);
  } else {
    const u32 base = (0x80000000u | kIdMask) - first_id;
#pragma unroll
    for (int j = 0; j < C; ++j) key[j] = (__float_as_uint(p[j]) & (0x7fffffffu & ~kIdMask)) + (base - j);
  }
}

// Step 5 of a segment's row by keys that name their expert (route_segment_kernel's kNamedKeys: the throughput
// plan of the rows whose slots sit one per lane, E <= 256). With b = the bits that name an expert (5 to 8: E
// <= 2^b), each lane's exact keys k (biased_score_keys) become n = (k | 2^b - 1) - e, or 0 where the lane's
// group is dropped (`candidate` false): k's bucket t = k >> b above the field 2^b - 1 - e, so the candidates'
// keys are distinct and above every dropped one, a segment maximum names its expert, and a round is log2(L)
// shuffles and maxima with no ballot and no position to fetch (the exact rounds' ballot, ffs and shuffle, and
// their sort of keys with positions, cost about twice the instructions). The rounds on n select by (t, -e);
// SPEC selects by (k, -e). Lane k keeps round k's key w_k, and one more round gives n(K + 1), the largest key
// left. The selections agree when
//   * adjacent winners of one bucket are in SPEC's order, k(w_i) >= k(w_i+1) (equal keys: the lower index
//     comes first in both orders), checked from the winners' exact keys (their p parked, the bias table);
//   * and every expert left out is below the last winner w_K-1 in SPEC's order (with the winners in order,
//     below every winner). An expert left out has t < t(w_K-1) (then k < k(w_K-1)), or t = t(w_K-1) and e >
//     w_K-1 (a bucket's experts come in index order). So where t(n(K + 1)) < t(w_K-1) the set is the same;
//     otherwise (exact ties, about 6% of random bf16 softmax rows) each lane compares its own experts of that
//     bucket with w_K-1 exactly.
// Every expert here is a kept group's (the lane check skips a dropped group's lanes), so the argument is
// SPEC's step 5 over the candidates. A row where either fails (1 in 1200 to 1 in 5300 random bf16 rows with a
// float32 bias, none without one: tools/named_keys_count.py) is not proved. Returns whether the row is proved
// (the same in every lane of the segment); lane q < K then holds slot q's expert in `my_id`. warp_p: the
// warp's parked p (lane-major, C words a lane); bias_table: the E bias entries as the keys read them (0
// without a bias).
// kLazy and `lazy` (softmax without a bias; warp-uniform): the keys k are the numerators' e, whose order p =
// RN(e / row_sum) keeps only weakly: p(x) <= p(y) wherever e(x) < e(y), equal p possible. So the winners' p
// are divided here, and the checks compare (p, index) as SPEC does:
//   * adjacent winners w_i, w_i+1 are in SPEC's order unless p(w_i) < p(w_i+1), or the two are equal and w_i
//     has the higher index (possible across buckets);
//   * an expert left out has e <= top, the largest numerator of n(K + 1)'s bucket, so p <= RN(top / row_sum);
//     where that is below p(w_K-1), and the bucket is not w_K-1's, every expert left out follows w_K-1.
//     Otherwise each lane divides its own numerators and checks every expert it left out (named below
//     w_K-1): p above p(w_K-1), or equal with a lower index, is not proved.
// tests/test_optimized_numerics.py replays this on a numpy model (each check needed).
// kKeysNamed: `key` comes named already (named_score_keys), not as biased_score_keys' k. kRedux: the rounds'
// segment maxima by redux.sync (segment_max).
template <int E, int K, int L, bool kLazy = false, bool kKeysNamed = false, bool kRedux = false>
__device__ __forceinline__ bool select_by_named_keys(u32 (&key)[E / L], bool candidate, int q, int segment_base,
                                                     const float* warp_p, const float* bias_table, bool has_bias,
                                                     bool lazy, float row_sum, int& my_id, float& my_p) {
  constexpr int C = E / L;
  constexpr int D = C < K + 1 ? C : K + 1;  // the sorted keys the K + 1 rounds can reach in one lane
  constexpr int kIdBits = kNameBits<E>;
  constexpr u32 kIdMask = (1u << kIdBits) - 1u;
  constexpr u32 kSegmentLanes = (1u << L) - 1u;
  static_assert(E <= 256 && 1 < K && K <= L, "a byte names an expert; slot q sits in lane q");
  u32 first_id = static_cast<u32>(q * C);
  if constexpr (C > 8 || (C == 8 && kKeysNamed)) {
    // Read again each row (an empty asm the compiler cannot move): it then folds e = first_id + j into the
    // naming's add instead of holding the C indices in registers across the row loop (DeepSeek-V2, 10 a lane:
    // spills of 56 bytes a thread become 12, 113.3 us against 114.5 at T = 262144 on an H200). At 8 a lane
    // only where step 2 named the keys (the softmax rows; the checks below are then its only use): Qwen3-MoE
    // bf16 0.985x at T = 262144 with its 8 bytes of spills gone, DeepSeek-V2-Lite 0.97x, gpt-oss 1.00x; the
    // sigmoid rows, which name here, measured 1.01x (GLM-4.5-Air) to 1.06x (Moonlight, T = 4096): docs/perf.md,
    // session 26.
    asm volatile("" : "+r"(first_id));
  }
  if constexpr (!kKeysNamed) {
#pragma unroll
    for (int j = 0; j < C; ++j) key[j] = (key[j] | kIdMask) - (first_id + j);
  }
  sort_keys_descending<C, D>(key);
#pragma unroll
  for (int d = 0; d < D; ++d) key[d] = candidate ? key[d] : kNotCandidate;  // a dropped group's lane
  u32 won = kNotCandidate;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const u32 top = segment_max<L, kRedux>(key[0]);
    const bool mine = key[0] == top;  // one lane: the keys are distinct
    // Entry m < K - k moves up: the K - k rounds left (the last one n(K + 1)'s) reach no further.
#pragma unroll
    for (int m = 0; m < K - k && m < D; ++m) key[m] = mine ? (m + 1 < D ? key[m + 1] : kNotCandidate) : key[m];
    won = q == k ? top : won;
  }
  const u32 next = segment_max<L, kRedux>(key[0]);

  // The winners' exact keys: lane q < K holds slot q's expert, its p parked and its bias in the table.
  __syncwarp();  // every lane's p is parked
  const bool slot = q < K;
  my_id = slot ? static_cast<int>(kIdMask - (won & kIdMask)) : 0;
  float p = warp_p[segment_base * C + my_id];
  bool wrong = false;
  if (kLazy && lazy) {  // a numerator: its p (outside quotient_in_range's range, the row is not proved)
    wrong = slot && !quotient_in_range_ok(p);
    p = quotient_in_range(p, row_sum);
  }
  my_p = p;
  const u32 exact = has_bias ? probability_key(p, bias_table[my_id]) : __float_as_uint(p) | 0x80000000u;
  const u32 won_after = __shfl_down_sync(kFullMask, won, 1);
  const u32 exact_after = __shfl_down_sync(kFullMask, exact, 1);
  if (kLazy && lazy) {
    // Any two adjacent winners, by (p, index) (the ids of one bucket ascend: there it is the check below).
    const int id_after = static_cast<int>(kIdMask - (won_after & kIdMask));
    const bool out_of_order = exact < exact_after || (exact == exact_after && my_id > id_after);
    wrong = wrong || (q < K - 1 && out_of_order);
  } else {
    wrong = q < K - 1 && (won >> kIdBits) == (won_after >> kIdBits) && exact < exact_after;
  }

  // ---- the experts left out ----
  const u32 least = __shfl_sync(kFullMask, won, segment_base + K - 1);
  const u32 least_exact = __shfl_sync(kFullMask, exact, segment_base + K - 1);
  const int least_id = static_cast<int>(kIdMask - (least & kIdMask));
  bool shared_bucket = (least >> kIdBits) == (next >> kIdBits);
  if (kLazy && lazy) {
    // The top of n(K + 1)'s bucket as a numerator (its key's bits without the sign), divided: every expert
    // left out has a p at most that (outside quotient_in_range's range: the lane check instead).
    const float top = __uint_as_float((next | kIdMask) & 0x7fffffffu);
    const u32 top_key = __float_as_uint(quotient_in_range(top, row_sum)) | 0x80000000u;
    shared_bucket = shared_bucket || !quotient_in_range_ok(top) || top_key >= least_exact;
  }
  if (__any_sync(kFullMask, shared_bucket)) {  // warp-uniform: this lane's own keys again, exactly
    const float* own_p = warp_p + (segment_base + q) * C;
    if (kLazy && lazy) {
      // Every expert this lane left out (its named key below w_K-1's) against (p, index), each p divided in
      // turn from its parked numerator. A warp with a numerator outside quotient_in_range_ok is not proved
      // here (the exact rounds then divide them all).
      bool far = false;
#pragma unroll
      for (int j = 0; j < C; ++j) far |= !quotient_in_range_ok(own_p[j]);
      if (__any_sync(kFullMask, far)) {
        wrong = true;
      } else {
#pragma unroll
        for (int j = 0; j < C; ++j) {
          const int e = static_cast<int>(first_id) + j;
          const float n = own_p[j];
          const bool left_out = ((__float_as_uint(n) | 0x80000000u | kIdMask) - static_cast<u32>(e)) < least;
          const u32 own = __float_as_uint(quotient_in_range(n, row_sum)) | 0x80000000u;
          const bool above = own > least_exact || (own == least_exact && e < least_id);
          wrong = wrong || (candidate && shared_bucket && left_out && above);
        }
      }
    } else {
      u32 own[C];
      parked_keys<C>(warp_p, bias_table, has_bias, q, segment_base, own);
#pragma unroll
      for (int j = 0; j < C; ++j) {
        const bool left_out_above = static_cast<int>(first_id) + j > least_id && own[j] > least_exact;
        wrong = wrong || (candidate && shared_bucket && (own[j] >> kIdBits) == (least >> kIdBits) && left_out_above);
      }
    }
  }
  return ((__ballot_sync(kFullMask, wrong) >> segment_base) & kSegmentLanes) == 0;
}

// Step 5 of a warp's rows in exact rounds (sorted_rounds), for a named-keys kernel whose warp has a row that
// select_by_named_keys cannot prove: the exact keys again from the parked p (kLazy and `lazy`: the parked
// numerators, divided) and the bias table. Out of line (called by every lane of the warp, rarely:
// docs/perf.md), so that the rounds' registers do not count in the row loop's. Returns lane q < K's slot q
// expert.
template <int E, int K, int L, bool kLazy = false>
__device__ __noinline__ int select_exactly_from_parked(const float* warp_p, const float* bias_table,
                                                       bool has_bias, bool lazy, float row_sum, bool candidate,
                                                       int q, int base) {
  constexpr int C = E / L;
  u32 key[C];
  if (kLazy && lazy) {  // no bias: the keys of the parked numerators' p
    float p[C];
    bool far = false;
#pragma unroll
    for (int j = 0; j < C; ++j) {
      p[j] = warp_p[(base + q) * C + j];
      far |= !quotient_in_range_ok(p[j]);
    }
    divide_by_sum<C>(p, row_sum, __any_sync(kFullMask, far), p);
    biased_score_keys<C>(p, p, false, key);  // (no bias: the second argument is not read)
  } else {
    parked_keys<C>(warp_p, bias_table, has_bias, q, base, key);
  }
#pragma unroll
  for (int j = 0; j < C; ++j) key[j] = candidate ? key[j] : kNotCandidate;  // a dropped group's lane
  int slot_id[K];
  int my_id = 0;
  sorted_rounds<C, K, L, true>(key, q, base, slot_id, my_id);
  return my_id;
}

// The blocks per SM a segment kernel declares (__launch_bounds__' second argument; 0 declares none): 4 for a
// throughput kernel with named keys and groups (DeepSeek-V2: ptxas took 76 registers, 3 blocks per SM, and
// held to 64 it spills 4 bytes; docs/perf.md, session 17; the lazy named keys' bound kernel of 16-bit logits
// took 4 too, until session 23 left 16 bits out of lazy_named_plan_applies), none for the others (those with
// named keys and no groups take 64 or fewer unasked; the sigmoid bound kernel at E = 64 needs 72 registers,
// 77 for float32, 3 blocks, and declared, ptxas took 80 and spilled).
template <int DT, int SCORING, int E, int G, int KG, int K, int L, int PLAN>
constexpr int kSegMinBlocks =
    PLAN == kPlanThroughput && KG < G && named_keys_apply(SCORING, E, G, KG, K, L) ? 4 : 0;
constexpr int kSegmentThreads = kMaxWarpsPerBlock * kWarpSize;  // a segment kernel's block

template <int DT, int SCORING, int E, int G, int KG, int K, int L, int PLAN>
__global__ void __launch_bounds__(kSegmentThreads, kSegMinBlocks<DT, SCORING, E, G, KG, K, L, PLAN>) route_segment_kernel(
    const void* __restrict__ scores, i64 num_rows, i64 row_stride, const void* __restrict__ bias,
    int bias_dtype, int num_experts, int num_groups, int topk_group, int topk, int scoring, int renormalize,
    int num_shared, int replica, int apply_scaling, float r, int plan, int* __restrict__ out_ids,
    float* __restrict__ out_weights) {
  constexpr int C = E / L;  // experts per lane
  constexpr int N = E / G;  // experts per group
  constexpr int SLPG = G == 1 ? L : N / C;  // segment lanes per group
  constexpr bool kHasGroups = KG < G;
  // Step 5 by keys sorted once per lane (SortingNetwork) where that measured faster on an H200 (docs/perf.md,
  // session 11): K > 1 and at most 8 experts per lane (with the softmax's rare NaN path below, 0.87x to
  // 0.98x the trees' time at T = 262144). With K = 1 one tree is the whole selection (the network was
  // 1.04x). At 10 per lane (DeepSeek-V2), measured with the NaN path at 73 registers, it was 1.20x at
  // T = 4096 and 1.02x at 262144.
  constexpr bool kSortLanes = K > 1 && C <= 8;
  // The bound plan, the dispatch's choice for the largest batches (optimized/dispatch.py), its own kernel
  // (PLAN = kPlanBound): route_segment_row_bound for the sigmoid rows segment_bound_plan_applies admits, the
  // lazy named keys (kLazyNamed) for the softmax rows lazy_named_plan_applies admits: the throughput plan's
  // path, whose rows without a bias select on the numerators and divide only what the selection needs
  // (softmax_segment_in_place's kLazy; select_by_named_keys says which).
  constexpr bool kLazyNamed = PLAN == kPlanBound && lazy_named_plan_applies(SCORING, E, G, KG, K, L, DT);
  constexpr bool kSegmentBound = PLAN == kPlanBound && !kLazyNamed;
  // Step 5 by keys that name their expert (select_by_named_keys), the exact rounds below only for a warp with
  // a row it cannot prove: the throughput plan of the rows whose slots sit one per lane, and the lazy bound
  // plan.
  constexpr bool kNamedKeys = !kSegmentBound && named_keys_apply(SCORING, E, G, KG, K, L);
  // Softmax logits NaN-filtered only on a rare path (softmax_segment_in_place) at up to 8 experts per lane,
  // and with named keys (DeepSeek-V2, 10 a lane: 0.94x the time at T = 262144 on an H200, docs/perf.md session
  // 17); on the exact rounds at 10 a lane the second path took the kernel from 64 registers to 74.
  constexpr bool kSoftmaxUnfiltered = C <= 8 || kNamedKeys;
  static_assert(!kLazyNamed || (kNamedKeys && SCORING == kSoftmax), "the lazy keys are softmax named keys");
  // Steps 6-8 with slot q in lane q of the segment (1 < K <= L): its p read once and the routed sum by
  // shuffles, instead of K reads and K selects per lane. Not at K = 1 (Llama-4: 1% slower on an H200), nor
  // at 10 experts per lane with the exact rounds (DeepSeek-V2 then spilled; its named keys carry one id).
  constexpr bool kSlotPerLane = K > 1 && K <= L && (C <= 8 || kNamedKeys);
  // Each row's logits requested one row ahead at up to 8 experts per lane (measured on an H200, docs/perf.md
  // session 13: T = 262144 0.87x to 0.97x the time of a load issued where the row starts; DeepSeek-V2, at
  // 10 a lane, went from 64 registers to 80 and was 1.21x at T = 4096, 1.00x at 262144, on the exact
  // rounds), and with named keys for 16-bit logits (DeepSeek-V2 bf16: 0.96x to 0.97x from T = 65536 on, 1.02x
  // at 4096; session 17). Not float32 at 10 a lane: its 10 words in flight took 72 bytes of spills.
  constexpr bool kLoadAhead = C <= 8 || (kNamedKeys && DT != kScoreFloat32);
  static_assert(!kNamedKeys || kSlotPerLane, "named keys: slot q in segment lane q");
  // Step 2 names the keys as it makes them (named_score_keys) where no group key needs them unnamed, for the
  // softmax rows (without a bias: Qwen3-MoE bf16 0.98x the time at T = 65536 and 262144 on an H200, gpt-oss
  // 0.99x, DeepSeek-V2-Lite 0.96x). The sigmoid rows, which have a bias, keep biased_score_keys: GLM-4.5-Air
  // measured 1.006x to 1.015x with it (docs/perf.md, session 22).
  constexpr bool kNameInStep2 = kNamedKeys && !kHasGroups && C <= 8 && SCORING == kSoftmax;
  // Step 5's rounds take their segment maxima by redux.sync (segment_max's kRedux) where redux_rounds_apply.
  constexpr bool kReduxRounds = redux_rounds_apply(SCORING, E, G, KG, K, L, DT);
  static_assert(PLAN == kPlanThroughput || PLAN == kPlanBound, "a segment kernel's plans: throughput, bound");
  static_assert(!(segment_bound_plan_applies(SCORING, E, G, KG, K, L) &&
                  lazy_named_plan_applies(SCORING, E, G, KG, K, L, DT)),
                "a segment row has one bound plan");
  static_assert(!kSegmentBound || (segment_bound_plan_applies(SCORING, E, G, KG, K, L) && kSlotPerLane),
                "the bound plan does not apply to this segment row");
  static_assert(L == 2 || L == 4 || L == 8 || L == 16, "a segment is 2, 4, 8 or 16 lanes");
  static_assert(E % kWarpSize == 0 && C <= 32, "the row-per-segment kernel takes E % 32 == 0, E / L <= 32");
  static_assert(E % G == 0 && 1 <= KG && KG <= G, "invalid grouping");
  static_assert(G == 1 || (N % C == 0 && (SLPG & (SLPG - 1)) == 0 && SLPG <= L),
                "a group must span a power-of-two number of whole segment lanes");
  static_assert(1 <= K && K <= kWarpSize && K <= KG * N, "need 1 <= K <= min(32, Kg * E / G)");
  (void)num_experts;  // the compile-time SCORING, E, G, Kg and K stand for these
  (void)num_groups;
  (void)topk_group;
  (void)topk;
  (void)scoring;
  (void)plan;  // PLAN stands for it (the table row's latency plan is the warp kernel's)

  typedef RowLoader<DT, C> Loader;
  typedef typename Loader::Raw Raw;
  const int lane = static_cast<int>(threadIdx.x) & (kWarpSize - 1);
  const int q = lane % L;  // the lane within its segment
  const int segment_base = lane - q;  // the segment's first lane
  constexpr u32 kSegmentLanes = (1u << L) - 1u;  // a segment's lanes in a ballot shifted to its first lane
  const i64 thread = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 warp_first_row = (thread - lane) / L;  // the row of the warp's first segment
  const i64 num_segments = static_cast<i64>(gridDim.x) * blockDim.x / L;
  const bool vec = Loader::vector_ok(scores, row_stride);
  const bool has_bias = bias_dtype != kNoBias;

  // Each lane's C probabilities, parked for the output (a warp's 32 * C words, its own): the selection
  // rounds carry a key and a position, and the K winners' p are read back once, instead of a select of
  // p at every node of every round's tree and a shuffle per round.
  __shared__ __align__(16) float parked_ps[kMaxWarpsPerBlock][kWarpSize * C];
  float* parked_p = parked_ps[threadIdx.x / kWarpSize];
  // The bound plan's: each lane's shifted bias and bias entries (its own C words each), and a staging row.
  constexpr int kBoundWarps = kSegmentBound ? kMaxWarpsPerBlock : 1;
  __shared__ __align__(16) float bound_words[kBoundWarps][kSegmentBound ? 2 * kWarpSize * C : 1];
  __shared__ u32 bound_stage_ids[kBoundWarps][kWarpSize];
  __shared__ float bound_stage_ps[kBoundWarps][kWarpSize];
  // The named keys' bias table: the E entries as this kernel reads them (NaN as -inf, 0 without a bias),
  // written by the block's first segment once its first row's logits are requested.
  __shared__ float named_bias[kNamedKeys ? E : 1];

  const OutputArgs out = make_output_args(E, K, num_shared, replica, renormalize, apply_scaling, r);
  wait_for_predecessors_and_release_successor(out.shared_weight);
  float bias_f[C];
  load_bias_lane<C>(bias, bias_dtype, q, bias_f);
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  float* const bound_bias = bound_words[warp];  // in the bound plan: lane-major, as parked_p
  const typename PickType<kSegmentBound, BoundConstants<C>, NoBoundConstants<C>>::type bound(
      bias_f, q, bound_words[warp] + kWarpSize * C + lane * C);
  if constexpr (kSegmentBound) {
#pragma unroll
    for (int j = 0; j < C; ++j) bound_bias[lane * C + j] = bias_f[j];
    __syncwarp();
  }

  // The row loop, compiled once per layout (Layout; route_warp_kernel says why).
  // At up to 8 experts per lane each segment requests its next row's logits one row ahead (a segment past
  // the last row, the last row's), so that the load's latency hides behind this row's instructions.
  const auto route_rows = [&](auto layout) {
    constexpr bool kVec = decltype(layout)::kLoads == kVectorLoads;
    // The loads of this segment's row of the warp's rows from `first` on (past the last row, the last row's).
    const auto issue_row = [&](i64 first, typename Loader::InFlight& f) {
      const i64 row = first + lane / L;
      Loader::issue(row_start<Raw>(scores, row < num_rows ? row : num_rows - 1, row_stride), q, kVec, f);
    };
    typename Loader::InFlight ahead;
    if constexpr (kLoadAhead) {
      if (warp_first_row < num_rows) issue_row(warp_first_row, ahead);
    } else {
      (void)ahead;
    }
    if constexpr (kNamedKeys) {  // after the request: the bias's latency overlaps the logits'
      if (threadIdx.x < L) {  // the block's first segment: lane q holds experts [q * C, q * C + C)
#pragma unroll
        for (int j = 0; j < C; ++j) named_bias[q * C + j] = bias_f[j];
      }
      __syncthreads();  // once, every thread of the block (vec, hence this layout, is the grid's)
    }
    for (i64 first = warp_first_row; first < num_rows; first += num_segments) {  // warp-uniform
      const i64 row = first + lane / L;
      const bool active = row < num_rows;
      // ---- step 1: probabilities (x is overwritten by p) ----
      typename Loader::InFlight in_flight;
      if constexpr (kLoadAhead) {
        in_flight = ahead;
        if (first + num_segments < num_rows) issue_row(first + num_segments, ahead);
      } else {
        issue_row(first, in_flight);
      }
      float p[C];
      // kLazyNamed: whether p holds the numerators, each expert's p being RN(p / row_sum) (warp-uniform).
      bool lazy = false;
      float row_sum = 1.0f;
      (void)lazy;
      (void)row_sum;
      bool proved = false;  // written by the bound plan: the exact path below stores nothing for this row
      (void)proved;         // (read only where the bound plan applies: the slots one per lane)
      if constexpr (kSegmentBound) {
        Loader::widen(in_flight, p);
        proved = route_segment_row_bound<E, K, L>(p, row, active, q, segment_base, bound, parked_p,
                                                  bound_bias, has_bias, bound_stage_ids[warp],
                                                  bound_stage_ps[warp], out_ids, out_weights, out);
        if (__all_sync(kFullMask, proved)) continue;  // warp-uniform: about 1 warp in 100 goes on
        // The logits back from where the bound plan parked them (this lane's own words), not held in
        // registers across it.
#pragma unroll
        for (int j = 0; j < C; ++j) p[j] = parked_p[lane * C + j];
        sigmoid_in_place<C, false>(p);
      } else if constexpr (SCORING == kSigmoid) {
        Loader::widen(in_flight, p);
        sigmoid_in_place<C, false>(p);  // elementwise: the fast path's choice is the lane's own
      } else {
        if constexpr (kSoftmaxUnfiltered) {
          Loader::widen(in_flight, p);  // NaN stays NaN: the softmax reads it as -inf (rare path)
        } else {
          Loader::decode(in_flight, p);
        }
        lazy = softmax_segment_in_place<C, L, kSoftmaxUnfiltered, kLazyNamed>(p, !has_bias, row_sum);
      }

      // ---- step 2: biased_scores ----
      u32 key[C];
      if constexpr (kSegmentBound) {
        float lane_bias[C];  // from shared memory: not held in registers across the bound plan
#pragma unroll
        for (int j = 0; j < C; ++j) lane_bias[j] = bound_bias[lane * C + j];
        biased_score_keys<C>(p, lane_bias, has_bias, key);
      } else if constexpr (kNameInStep2) {
        named_score_keys<C, E>(p, named_bias + q * C, has_bias, static_cast<u32>(q * C), key);
      } else if constexpr (kNamedKeys) {
        float lane_bias[C];  // from the table: not held in registers across the row
#pragma unroll
        for (int j = 0; j < C; ++j) lane_bias[j] = named_bias[q * C + j];
        biased_score_keys<C>(p, lane_bias, has_bias, key);
      } else {
        biased_score_keys<C>(p, bias_f, has_bias, key);
      }
      __syncwarp();  // the previous rows' reads of the parked p are done
#pragma unroll
      for (int j = 0; j < C; ++j) parked_p[lane * C + j] = p[j];

      bool candidate = true;  // this lane's experts: its group kept
      (void)candidate;
      if constexpr (kHasGroups) {
        // ---- step 3: group_scores; step 4: group_selection, inside the segment's row ----
        // (the warp kernel's helpers on the same keys: every group key and kept group is the warp kernel's)
        u32 my_group_key = group_key_of_lanes<C, SLPG, N == 1>(key, has_bias);
        if constexpr (kLazyNamed) {
          // Lazy: the group's largest numerator, divided, is its largest p (RN(e / s) is non-decreasing in e).
          if (lazy) my_group_key = orderable(lazy_quotient(from_orderable(my_group_key), row_sum));
        }
        if constexpr ((G & (G - 1)) == 0 && G >= SLPG && G * SLPG == L) {
          candidate = group_kept_in_segment<G, KG, SLPG>(my_group_key, q / SLPG, lane);
        } else {
          candidate = group_kept<G, KG, SLPG, true>(my_group_key, q / SLPG, segment_base);
        }
        if (!kNamedKeys && !candidate) {  // (the named keys drop them as they name them)
#pragma unroll
          for (int j = 0; j < C; ++j) key[j] = kNotCandidate;  // no candidate: below every real key
        }
      }

      // ---- step 5: expert_selection: K rounds (largest key, lowest index), slot k = round k ----
      int slot_id[K];  // slot k's expert (not with kNamedKeys)
      int my_id = 0;   // lane q < K: slot q's expert (kSlotPerLane)
      float named_p = 0.0f;  // kNamedKeys: lane q < K: slot q's p
      (void)slot_id;
      (void)my_id;
      (void)named_p;
      if constexpr (kNamedKeys) {
        // Named keys; a warp with a row they cannot prove (warp-uniform, rare) takes the exact rounds out of
        // line, so that their registers do not count in this loop's.
        const bool named_proved = select_by_named_keys<E, K, L, kLazyNamed, kNameInStep2, kReduxRounds>(
            key, candidate, q, segment_base, parked_p, named_bias, has_bias, lazy, row_sum, my_id, named_p);
        if (!__all_sync(kFullMask, named_proved)) {
          my_id = select_exactly_from_parked<E, K, L, kLazyNamed>(parked_p, named_bias, has_bias, lazy, row_sum,
                                                                  candidate, q, segment_base);
          named_p = parked_p[segment_base * C + my_id];
          if (kLazyNamed && lazy) named_p = lazy_quotient(named_p, row_sum);  // a numerator was parked
        }
      } else if constexpr (kSortLanes) {
        sorted_rounds<C, K, L, kSlotPerLane, kReduxRounds>(key, q, segment_base, slot_id, my_id);
      } else {
        // A lane's best key by a tree over its C keys each round; the owner clears the winner.
#pragma unroll
        for (int k = 0; k < K; ++k) {
          u32 best;
          int at;
          best_in_tree<C>(key, best, at);
          // The segment's largest key; the lowest lane holding it holds the lowest expert index among them
          // (lanes own ascending expert ranges), and its best position is the lowest inside that lane.
          const u32 top = segment_max<L, kReduxRounds>(best);
          const u32 holders = (__ballot_sync(kFullMask, best == top) >> segment_base) & kSegmentLanes;
          const int owner = __ffs(holders) - 1;
          const int owner_at = __shfl_sync(kFullMask, at, segment_base + owner);
          const int id = owner * C + owner_at;
          const int local = q == owner ? owner_at : -1;  // the owner drops it
#pragma unroll
          for (int j = 0; j < C; ++j) key[j] = j == local ? kNotCandidate : key[j];
          slot_id[k] = id;
          if constexpr (kSlotPerLane) my_id = q == k ? id : my_id;
        }
      }
      // ---- steps 6-8: routed_weights, shared_slots, output_scaling ----
      // The winners' p: expert id of this segment's row is parked at the segment's first lane's words + id.
      __syncwarp();
      if constexpr (kSlotPerLane) {
        // Lane q < K holds slot q: its id from the rounds, its p read once. The routed sum is the warp
        // kernels' xor butterfly with slot k in lane k, inside the segment: lanes K .. P - 1 hold +0, which
        // changes no sum of probabilities (butterfly_sum's bits), and the offsets from P on meet only +0.
        // Every lane takes part in the shuffles (before `active`); a division per lane q < K follows.
        constexpr int P = K <= 1 ? 1 : (K <= 2 ? 2 : (K <= 4 ? 4 : (K <= 8 ? 8 : 16)));
        // (kLazyNamed: the selection's p; the parked value may be a numerator)
        const float my_p = q < K ? (kLazyNamed ? named_p : parked_p[segment_base * C + my_id]) : 0.0f;
        float routed_sum = my_p;
#pragma unroll
        for (int d = P / 2; d > 0; d >>= 1) routed_sum += __shfl_xor_sync(kFullMask, routed_sum, d);
        if (active && !proved) {
          int* ids = out_ids + row * out.width;
          float* weights = out_weights + row * out.width;
          if (q < K) {
            ids[q] = my_id;
            weights[q] = output_scaling(routed_weight(my_p, routed_sum, out), out);
          }
          shared_slots(ids, weights, row, routed_sum, q, L, out);
        }
      } else {
        float slot_p[K];
#pragma unroll
        for (int k = 0; k < K; ++k) slot_p[k] = parked_p[segment_base * C + slot_id[k]];
        if (active) {
          const float routed_sum = butterfly_sum<K>(slot_p);  // the warp kernels' order, slot k in lane k
          int* ids = out_ids + row * out.width;
          float* weights = out_weights + row * out.width;
          if constexpr (K <= L) {
            // Lane q < K writes slot q: its (id, p) picked by selects, then one division per lane (a loop
            // over the slots would issue K predicated divisions per warp).
            int slot_q_id = 0;
            float slot_q_p = 0.0f;
#pragma unroll
            for (int k = 0; k < K; ++k) {
              slot_q_id = k == q ? slot_id[k] : slot_q_id;
              slot_q_p = k == q ? slot_p[k] : slot_q_p;
            }
            if (q < K) {
              ids[q] = slot_q_id;
              weights[q] = output_scaling(routed_weight(slot_q_p, routed_sum, out), out);
            }
          } else {
#pragma unroll
            for (int k = 0; k < K; ++k) {
              if (k % L == q) {
                ids[k] = slot_id[k];
                weights[k] = output_scaling(routed_weight(slot_p[k], routed_sum, out), out);
              }
            }
          }
          shared_slots(ids, weights, row, routed_sum, q, L, out);
        }
      }
    }
  };
  if (vec) {
    route_rows(Layout<kVectorLoads>());
  } else {
    route_rows(Layout<kScalarLoads>());
  }
}

// ======================================================================================================
// Row-per-thread kernel: E <= 32 experts, no groups (G = Kg = 1), a whole row in one thread's registers.
// For small E a warp per row leaves most lanes idle (Mixtral, E = 8: 24 of 32 lanes own no expert, and
// every step is a warp collective); here a warp routes 32 rows, each thread loads its row's E logits
// with one or two vector loads (a warp reads 32 consecutive rows: contiguous), and nothing is shared.
// Bitwise the same result as the warp kernels: the selection's order is SPEC's, and the two float sums
// replay the warp kernels' xor butterfly over the lanes that would hold the values (butterfly_sum).
// ======================================================================================================
constexpr int kThreadKernelBlock = 128;  // threads per block (optimized/dispatch.py: THREAD_WARPS_PER_BLOCK)

template <int DT, int SCORING, int E, int K>
__global__ void __launch_bounds__(kThreadKernelBlock) route_thread_kernel(
    const void* __restrict__ scores, i64 num_rows, i64 row_stride, const void* __restrict__ bias,
    int bias_dtype, int num_experts, int num_groups, int topk_group, int topk, int scoring, int renormalize,
    int num_shared, int replica, int apply_scaling, float r, int plan, int* __restrict__ out_ids,
    float* __restrict__ out_weights) {
  static_assert(1 <= E && E <= kWarpSize, "the row-per-thread kernel takes E <= 32");
  static_assert(1 <= K && K <= E, "need 1 <= K <= E");
  (void)num_experts;  // the compile-time SCORING, E and K stand for these; G = Kg = 1
  (void)num_groups;
  (void)topk_group;
  (void)topk;
  (void)scoring;
  (void)plan;  // one plan

  typedef RowLoader<DT, E> Loader;  // "lane" 0 of a row: the row's E logits
  typedef typename Loader::Raw Raw;
  const i64 first_row = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 num_threads = static_cast<i64>(gridDim.x) * blockDim.x;
  const bool vec = Loader::vector_ok(scores, row_stride);
  const bool has_bias = bias_dtype != kNoBias;
  const OutputArgs out = make_output_args(E, K, num_shared, replica, renormalize, apply_scaling, r);
  wait_for_predecessors_and_release_successor(out.shared_weight);

  float bias_f[E];  // the whole bias, once per thread (every thread of a warp reads the same addresses)
  load_bias_lane<E>(bias, bias_dtype, 0, bias_f);

  for (i64 row = first_row; row < num_rows; row += num_threads) {
    // ---- step 1: probabilities (x is overwritten by p) ----
    typename Loader::InFlight in_flight;
    Loader::issue(row_start<Raw>(scores, row, row_stride), 0, vec, in_flight);
    float p[E];
    if constexpr (SCORING == kSigmoid) {
      Loader::widen(in_flight, p);
      sigmoid_in_place<E, false>(p);
    } else {
      Loader::decode(in_flight, p);
      softmax_in_place<E, false>(p);
    }

    // ---- step 2: biased_scores ----
    u32 key[E];
    biased_score_keys<E>(p, bias_f, has_bias, key);

    // ---- steps 3-4: group_scores, group_selection: one group, always kept ----
    // ---- step 5: expert_selection: K argmax rounds, strict '>' in ascending expert order ----
    int slot_id[K];
    float slot_p[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      u32 best;
      int best_e;
      best_in_order<E>(key, best, best_e);  // every real key is > 0: each round finds one
      slot_id[k] = best_e;
      slot_p[k] = take_at<E>(key, p, best_e, true);
    }

    // ---- steps 6-8: routed_weights, shared_slots, output_scaling ----
    int* ids = out_ids + row * out.width;
    float* weights = out_weights + row * out.width;
    const float routed_sum = butterfly_sum<K>(slot_p);  // the warp kernels' order, slot k in lane k
#pragma unroll
    for (int k = 0; k < K; ++k) {
      ids[k] = slot_id[k];
      weights[k] = output_scaling(routed_weight(slot_p[k], routed_sum, out), out);
    }
    shared_slots(ids, weights, row, routed_sum, 0, 1, out);
  }
}

// ======================================================================================================
// Generic kernel: any E <= MAX_EXPERTS (optimized/dispatch.py), any G dividing E, any valid Kg and K;
// keys in shared memory, (E + G) words per warp (the launcher sizes the dynamic shared memory).
// ======================================================================================================
template <int DT>
__global__ void __launch_bounds__(128) route_generic_kernel(
    const void* __restrict__ scores, i64 num_rows, i64 row_stride, const void* __restrict__ bias,
    int bias_dtype, int num_experts, int num_groups, int topk_group, int topk, int scoring, int renormalize,
    int num_shared, int replica, int apply_scaling, float r, int plan, int* __restrict__ out_ids,
    float* __restrict__ out_weights) {
  typedef typename ScoreTraits<DT>::Raw Raw;
  (void)plan;  // one plan: the keys are in shared memory either way
  extern __shared__ u32 shared_words[];
  const int E = num_experts;
  const int G = num_groups;
  const int N = E / G;
  const int C = (E + kWarpSize - 1) / kWarpSize;  // experts per lane (the last lanes may own fewer)
  const int lane = static_cast<int>(threadIdx.x) & (kWarpSize - 1);
  const int warp_in_block = static_cast<int>(threadIdx.x) / kWarpSize;
  u32* keys = shared_words + warp_in_block * (E + G);  // [E]: x bits, then ord(b), then 0 once taken
  u32* group_keys = keys + E;                          // [G]: ord(group score), 0 once kept
  const int begin = min(lane * C, E);
  const int end = min(begin + C, E);
  const i64 first_warp = (static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
  const i64 num_warps = static_cast<i64>(gridDim.x) * blockDim.x / kWarpSize;
  const bool has_bias = bias_dtype != kNoBias;

  const OutputArgs out = make_output_args(E, topk, num_shared, replica, renormalize, apply_scaling, r);
  wait_for_predecessors_and_release_successor(out.shared_weight);

  for (i64 row = first_warp; row < num_rows; row += num_warps) {
    const Raw* row_ptr = row_start<Raw>(scores, row, row_stride);
    int* ids = out_ids + row * out.width;
    float* weights = out_weights + row * out.width;

    // ---- step 1: probabilities: x into the lane's own keys, then the row statistics ----
    u32 local_max = 0, local_inf = 0;
    for (int e = begin; e < end; ++e) {
      const float x = load_logit<DT>(row_ptr, e);
      keys[e] = __float_as_uint(x);
      local_max = max(local_max, orderable(x));
      local_inf += x == pos_inf() ? 1u : 0u;
    }
    SoftmaxRow stats{0.0f, 1.0f, 0.0f};
    if (scoring == kSoftmax) {
      stats = softmax_row(local_max, local_inf, [&](float m) {
        float s = 0.0f;
        for (int e = begin; e < end; ++e) s += expf(__uint_as_float(keys[e]) - m);
        return s;
      });
    }

    // ---- step 2: biased_scores (each lane rewrites its own keys) ----
    for (int e = begin; e < end; ++e) {
      const float p = probability(__uint_as_float(keys[e]), scoring, stats);
      keys[e] = biased_score_key(p, load_bias(bias, bias_dtype, e));
    }
    __syncwarp();

    if (topk_group < G) {
      // ---- step 3: group_scores: lane g scans group g (lanes stride over the groups) ----
      for (int g = lane; g < G; g += kWarpSize) {
        u32 t1 = kNotCandidate, t2 = kNotCandidate;
        for (int e = g * N; e < (g + 1) * N; ++e) push_top_two(keys[e], t1, t2);
        group_keys[g] = group_score_key(t1, t2, has_bias, N == 1);
      }
      __syncwarp();

      // ---- step 4: group_selection: Kg argmax rounds; a kept group's key becomes 0 ----
      // Lane l owns groups l, l + 32, ...; it alone reads and writes them during the rounds.
      for (int k = 0; k < topk_group; ++k) {
        u32 best = kNotCandidate, best_g = kNoIndex;
        for (int g = lane; g < G; g += kWarpSize) {
          if (group_keys[g] > best) {
            best = group_keys[g];
            best_g = static_cast<u32>(g);
          }
        }
        const u32 winner = warp_argmax_index(best, best_g);
        if (static_cast<u32>(lane) == winner % kWarpSize) group_keys[winner] = kNotCandidate;
      }
      __syncwarp();
      // Experts of dropped groups (group key still > 0) are no candidates.
      for (int e = begin; e < end; ++e) {
        if (group_keys[e / N] != kNotCandidate) keys[e] = kNotCandidate;
      }
    }

    // ---- step 5: expert_selection: K argmax rounds; slot k's p goes to weights[k] until step 6 ----
    int slot_id = 0;
    float slot_p = 0.0f;
    for (int k = 0; k < topk; ++k) {
      u32 best = kNotCandidate;
      int best_e = begin;
      for (int e = begin; e < end; ++e) {
        if (keys[e] > best) {
          best = keys[e];
          best_e = e;
        }
      }
      const u32 winner = warp_argmax_index(best, static_cast<u32>(best_e));
      const int owner = static_cast<int>(winner) / C;
      float won_p = 0.0f;
      if (owner == lane) {
        keys[winner] = kNotCandidate;
        won_p = probability(load_logit<DT>(row_ptr, static_cast<int>(winner)), scoring, stats);
        if (topk > kWarpSize) {  // the slots do not fit in the lanes: park them in the output row
          ids[k] = static_cast<int>(winner);
          weights[k] = won_p;
        }
      }
      if (topk <= kWarpSize) {  // warp-uniform: lane k keeps slot k, as in the specialized kernel
        won_p = __shfl_sync(kFullMask, won_p, owner);
        if (lane == k) {
          slot_id = static_cast<int>(winner);
          slot_p = won_p;
        }
      }
    }
    __syncwarp();

    // ---- steps 6-8: routed_weights, shared_slots, output_scaling ----
    if (topk <= kWarpSize) {
      // Lane k holds slot k (the broadcasts above): the same order as the specialized kernel.
      write_row_from_lanes(ids, weights, row, slot_id, slot_p, routed_sum_from_lanes(slot_p, lane, out), lane,
                           out);
    } else {
      float local = 0.0f;
      for (int k = lane; k < topk; k += kWarpSize) local += weights[k];
      const float routed_sum = warp_sum(local);
      __syncwarp();
      for (int k = lane; k < topk; k += kWarpSize) {
        weights[k] = output_scaling(routed_weight(weights[k], routed_sum, out), out);
      }
      shared_slots(ids, weights, row, routed_sum, lane, kWarpSize, out);
    }
    __syncwarp();  // the keys are rewritten by the next row
  }
}

}  // namespace moegate
