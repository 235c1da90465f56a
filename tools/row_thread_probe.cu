// A probe, not a dispatch row: the bound plan of DeepSeek-V3's configuration (E = 256, G = 8, Kg = 4, K = 8,
// sigmoid, bf16 logits) with a row per thread instead of a row per warp. tools/row_thread_probe.py appends
// this file to route.cu (it reopens namespace moegate, so every helper of route.cu is in scope), compiles it
// with route.cu's options, checks its output bitwise against the dispatch's bound kernel and times both.
//
// Why (docs/perf.md, session 28): the warp kernels spend a large share of a row's warp instructions on the
// selection's warp collectives (group butterflies, K rounds of redux), which serve one row each. Here a thread
// owns a whole row, so no instruction crosses lanes on the common path and each warp instruction serves 32 rows;
// what is left is the per-expert arithmetic, done twice for the kept groups:
//   1. a warp copies its tile of 32 rows into shared memory (cp.async, 16 bytes a lane, one row per warp
//      instruction, each row padded by 16 bytes so that the threads' 16-byte reads of their own rows take
//      distinct banks);
//   2. each thread computes its row's approximate keys (approx_sigmoid + the shifted bias, not named: the
//      bound plan's margin covers the names' bits and more) and each group's top two, so each group's
//      approximate score;
//   3. the Kg groups with the largest scores are kept, proved as the bound plan proves them (the least kept
//      score above the largest dropped one by more than 2 Mg); tau = the least second key of the kept
//      groups, a lower bound of the K-th largest key (those K keys are at least tau);
//   4. the kept groups' keys again, named (low byte 255 - e, as approx_keys names them), each one whose high
//      24 bits reach a floor 4 M below tau appended to the thread's candidate list (every key that can be among
//      the K + 1 largest named keys: each other one is below the K candidates that are the groups' top two);
//   5. the K + 1 largest candidates by insertion (a(K + 1) the (K + 1)-th, or the floor where only K passed:
//      a bound of it), the winners' exact p and keys, the proof of select_row_bound and finish_rows_bound (the
//      least exact key of the winners above a(K + 1) + bmin + M);
//   6. steps 6 to 8 for the proved rows; every other row (doubt, groups or winners not proved, more than
//      kRowThreadCandidates - 1 candidates, winners whose exact keys are out of the approximate order) is routed
//      again by route_row_exact, the whole warp together, as the bound kernel routes its rows it cannot
//      prove. So every row's output is the exact path's, bit for bit, on every row the probe routes.
// Three layouts of the same steps: the tile (kSlots = 0), the groups streamed through kSlots slots
// (RowThreadLayout), and a row per pair of threads (route_row_pair_probe, below: 16 rows a tile). Measured on an
// H200 (docs/perf.md, session 28): the pairs fastest, 0.79x the dispatch's bound kernel at T = 262144. At the end,
// route_row_flat_probe: the tile kernel for the sigmoid rows with a bias and no groups (Moonlight, GLM-4.5-Air,
// GLM-4.5), 0.89x the dispatch's kernel for GLM-4.5-Air, 1.04x to 1.16x for the other two.
// Only 16-byte-aligned rows (the host checks): the probe measures, it does not dispatch.

// The count of rows the probe routed again exactly (tools/row_thread_probe.py reads and resets it).
extern "C" {
__device__ unsigned long long g_row_thread_unproved;
}

namespace moegate {

constexpr int kRowThreadCandidates = 24;  // a row with this many candidates or more is routed exactly

__device__ __forceinline__ u32 shared_address(const void* p) {
  u64 a;
  asm("cvta.to.shared.u64 %0, %1;" : "=l"(a) : "l"(p));
  return static_cast<u32>(a);
}

// Eight bf16 logits of a 16-byte word group, widened (bf16_bits_to_float of each half).
__device__ __forceinline__ void widen_eight(const uint4 w, float (&x)[8]) {
  const u32 words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    x[2 * i] = __uint_as_float(words[i] << 16);
    x[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}

// Shared memory of one warp (dynamic, kWarps of them a block): the tile of 32 padded rows, the candidate
// lists (slot j of lane l at j * 32 + l) and the shifted bias (group g at g * (N + 4)). 22144 bytes, so that
// 10 warps fit an SM's 228 KB with the driver's 1 KB a block (the winners' bias entries come from global
// memory); with the E bias entries here too, 9 did.
// kSlots > 0 (streaming): instead of the tile, kSlots slots of one group of 32 rows each (64 bytes a row, padded
// by 16), through which step 2 streams the groups, kSlots - 1 groups ahead, and step 4 each thread's kept groups
// (copied again: L2 has them), the winners' logits read from global memory. Two slots take 10368 bytes a warp,
// so 20 warps an SM where the tile allows 10; each slot more, 2560 bytes.
template <int E, int G, int kSlots>
struct RowThreadLayout {
  static constexpr int kRowWords = E / 2 + 4;  // a bf16 row and 16 bytes of padding
  static constexpr int kChunkWords = E / G / 2 + 4;  // a row's group and 16 bytes of padding
  static constexpr int kSlotWords = kWarpSize * kChunkWords;
  static constexpr int kDataWords = kSlots > 0 ? kSlots * kSlotWords : kWarpSize * kRowWords;
  static constexpr int kListWords = (kRowThreadCandidates + 8) * kWarpSize;
  static constexpr int kShiftStride = E / G + 4;
  static constexpr int kWarpWords = kDataWords + kListWords + G * kShiftStride;
};

__device__ __forceinline__ void copy_16_bytes(const void* dst_shared, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(shared_address(dst_shared)), "l"(src) : "memory");
}
__device__ __forceinline__ void copies_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Wait for every group of copies but the last `N` committed.
template <int N>
__device__ __forceinline__ void copies_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// Step 2 for one group: the top two of its N = 32 approximate keys from its 16 words of bf16 logits and its shifted
// bias, as signed integers (a NaN key, of a NaN logit, is the largest: its group's score is NaN).
__device__ __forceinline__ void approx_group_top_two(const u32* words, const float* group_shift, int& t1, int& t2) {
  int c1[4];
  int c2[4];
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    float x[8];
    widen_eight(*reinterpret_cast<const uint4*>(words + c * 4), x);
    const float4 s0 = *reinterpret_cast<const float4*>(group_shift + c * 8);
    const float4 s1 = *reinterpret_cast<const float4*>(group_shift + c * 8 + 4);
    const float s[8] = {s0.x, s0.y, s0.z, s0.w, s1.x, s1.y, s1.z, s1.w};
    int k[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) k[j] = static_cast<int>(__float_as_uint(approx_sigmoid(x[j]) + s[j]));
    int p1[4];
    int p2[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      p1[j] = max(k[2 * j], k[2 * j + 1]);
      p2[j] = min(k[2 * j], k[2 * j + 1]);
    }
    const int q1a = max(p1[0], p1[1]);
    const int q2a = max(min(p1[0], p1[1]), max(p2[0], p2[1]));
    const int q1b = max(p1[2], p1[3]);
    const int q2b = max(min(p1[2], p1[3]), max(p2[2], p2[3]));
    c1[c] = max(q1a, q1b);
    c2[c] = max(min(q1a, q1b), max(q2a, q2b));
  }
  const int h1a = max(c1[0], c1[1]);
  const int h2a = max(min(c1[0], c1[1]), max(c2[0], c2[1]));
  const int h1b = max(c1[2], c1[3]);
  const int h2b = max(min(c1[2], c1[3]), max(c2[2], c2[3]));
  t1 = max(h1a, h1b);
  t2 = max(min(h1a, h1b), max(h2a, h2b));
}

// Step 4 for kept group g: its named keys (low byte 255 - e, as approx_keys names them) stored at list[at], `at`
// advancing by 32 for each one whose key reaches `cut`, clamped to `limit` after each 8.
__device__ __forceinline__ void approx_group_candidates(const u32* words, const float* group_shift, int g, int cut,
                                                      u32* list, int& at, int limit) {
  const u32 group_names = static_cast<u32>(255 - g * 32) * 0x01010101u - 0x03020100u;
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    float x[8];
    widen_eight(*reinterpret_cast<const uint4*>(words + c * 4), x);
    const float4 s0 = *reinterpret_cast<const float4*>(group_shift + c * 8);
    const float4 s1 = *reinterpret_cast<const float4*>(group_shift + c * 8 + 4);
    const float s[8] = {s0.x, s0.y, s0.z, s0.w, s1.x, s1.y, s1.z, s1.w};
    const u32 names[2] = {group_names - static_cast<u32>(c * 8) * 0x01010101u,
                          group_names - static_cast<u32>(c * 8 + 4) * 0x01010101u};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const u32 k = __float_as_uint(approx_sigmoid(x[j]) + s[j]);
      list[at] = __byte_perm(k, names[j / 4], 0x3214 + j % 4);
      at += static_cast<int>(k) >= cut ? kWarpSize : 0;
    }
    at = min(at, limit);
  }
}

// Step 3 from each group's top two (t1, t2): the groups kept on approximate scores (bit g of `mask`), proved as
// select_row_bound proves them (`proved`), `doubt` where a score is NaN, infinite or negative or a kept second key
// is -inf, and step 4's floor `cut`: tau, the least second key of the kept groups, less 4 M, its low byte cleared.
// Where only the K sure keys reach it, a(K + 1) is below it, and the K-th exact key (about tau + bmin) then clears
// the proof's a(K + 1) + bmin + M by about 3 M; a floor of tau itself failed that in 16% of random rows (its
// K-th key sits at the floor).
struct KeptGroups {
  u32 mask;
  bool doubt;
  bool proved;
  int cut;
};
template <int G, int KG>
__device__ __forceinline__ KeptGroups keep_groups(const int (&t1)[G], const int (&t2)[G], bool has_bias,
                                                  float margin, float twice_group_margin) {
  KeptGroups kg;
  u32 score[G];
  kg.doubt = false;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    float s = __int_as_float(t1[g]);
    if (has_bias) s = s + __int_as_float(t2[g]);
    score[g] = __float_as_uint(s);
    kg.doubt |= score[g] >= 0x7f800000u;  // NaN, infinite or negative
  }
  int beaten[G];
#pragma unroll
  for (int g = 0; g < G; ++g) beaten[g] = 0;
#pragma unroll
  for (int g = 0; g < G; ++g) {
#pragma unroll
    for (int h = g + 1; h < G; ++h) {
      const bool g_wins = score[g] >= score[h];  // equal scores: the lower index wins
      beaten[h] += g_wins ? 1 : 0;
      beaten[g] += g_wins ? 0 : 1;
    }
  }
  u32 least_kept = 0xffffffffu;
  u32 best_dropped = 0u;
  int tau = 0x7fffffff;
  kg.mask = 0u;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const bool kept = beaten[g] < KG;
    least_kept = kept ? min(least_kept, score[g]) : least_kept;
    best_dropped = kept ? best_dropped : max(best_dropped, score[g]);
    tau = kept ? min(tau, t2[g]) : tau;
    kg.mask |= kept ? (1u << g) : 0u;
  }
  kg.proved = __uint_as_float(least_kept) > __fadd_ru(__uint_as_float(best_dropped), twice_group_margin);
  kg.doubt |= tau < 0;  // a second key of -inf (an infinite bias entry below)
  const float floor_f = __fsub_rd(__int_as_float(tau), __fmul_ru(4.0f, margin));
  kg.cut = floor_f > 0.0f ? __float_as_int(floor_f) & ~0xff : 0;
  return kg;
}

// Step 5's K + 1 largest of a thread's `count` listed candidates (slot j at list[j * 32 + lane]), by insertion
// over the warp's longest list; kLowestInt where fewer.
template <int K>
__device__ __forceinline__ void largest_candidates(const u32* list, int lane, int count, bool live,
                                                   int (&top)[K + 1]) {
#pragma unroll
  for (int i = 0; i <= K; ++i) top[i] = kLowestInt;
  const int rounds = static_cast<int>(__reduce_max_sync(kFullMask, live ? static_cast<u32>(count) : 0u));
  for (int j = 0; j < rounds; ++j) {
    int a = j < count ? static_cast<int>(list[j * kWarpSize + lane]) : kLowestInt;
#pragma unroll
    for (int i = 0; i <= K; ++i) {
      const int hi = max(top[i], a);
      a = min(top[i], a);
      top[i] = hi;
    }
  }
}

// Step 6's other rows: the rows of `unproved` (bit q: row base + q) routed again exactly by the whole warp
// (route_row_exact), and counted in g_row_thread_unproved.
template <int DT, int E, int G, int KG, int K>
__device__ __forceinline__ void route_again_exactly(u32 unproved, i64 base, int lane, const void* scores,
                                                    i64 row_stride, const void* bias, int bias_dtype, int* out_ids,
                                                    float* out_weights, const OutputArgs& out) {
  if (lane == 0 && unproved != 0u) {
    atomicAdd(&g_row_thread_unproved, static_cast<unsigned long long>(__popc(unproved)));
  }
  while (unproved != 0u) {
    const i64 again = base + (__ffs(unproved) - 1);
    unproved &= unproved - 1u;
    route_row_exact<DT, E, G, KG, K>(row_start<u16>(scores, again, row_stride), again, lane, bias, bias_dtype,
                                     out_ids, out_weights, out);
  }
}

// Rows [first_row, first_row + rows) of the scores into a tile of kRowWords words a row, by cp.async of 16
// bytes: each warp copy takes kWarpSize / kChunks rows (kChunks = 16-byte pieces a row), lane l piece l % kChunks
// of row l / kChunks; then one commit. Every lane of the warp calls it.
template <int kTileRows, int kChunks, int kRowWords>
__device__ __forceinline__ void copy_tile_rows(u32* tile, const void* scores, i64 row_stride, i64 first_row,
                                               int rows, int lane) {
  constexpr int kRowsACopy = kWarpSize / kChunks > 0 ? kWarpSize / kChunks : 1;
  static_assert(kChunks <= kWarpSize, "a row's pieces fit one warp copy");
#pragma unroll 4
  for (int j0 = 0; j0 < kTileRows; j0 += kRowsACopy) {
    const int j = j0 + lane / kChunks;
    const int c = lane % kChunks;
    if (lane < kRowsACopy * kChunks && j < rows) {
      copy_16_bytes(tile + j * kRowWords + c * 4, row_start<u16>(scores, first_row + j, row_stride) + c * 8);
    }
  }
  copies_commit();
}

// The block's tables (the pair and flat kernels): warp 0's shifted bias (lane l's C entries at warp0_shift) and
// bias (block_bias, E = 32 C words), and every warp's BoundConstants (the others' constructors write their
// `scratch`, unread). Ends with a block barrier.
template <int C>
__device__ __forceinline__ BoundConstants<C> block_bound_constants(const void* bias, int bias_dtype, int lane,
                                                                   int warp, float* warp0_shift, float* scratch,
                                                                   float* block_bias) {
  float bias_f[C];
  load_bias_lane<C>(bias, bias_dtype, lane, bias_f);
  const BoundConstants<C> bc(bias_f, lane, warp == 0 ? warp0_shift : scratch);
  if (warp == 0) {
#pragma unroll
    for (int j = 0; j < C; ++j) block_bias[lane * C + j] = bias_f[j];
  }
  __syncthreads();  // warp 0's tables, for every warp
  return bc;
}

template <int E, int G, int KG, int K, int kWarps, int kSlots>
__global__ void __launch_bounds__(kWarps * kWarpSize) route_row_thread_probe(
    const void* __restrict__ scores, i64 num_rows, i64 row_stride, const void* __restrict__ bias,
    int bias_dtype, int num_experts, int num_groups, int topk_group, int topk, int scoring, int renormalize,
    int num_shared, int replica, int apply_scaling, float r, int plan, int* __restrict__ out_ids,
    float* __restrict__ out_weights) {
  constexpr int DT = kScoreBFloat16;
  constexpr int N = E / G;  // experts per group
  constexpr int C = E / kWarpSize;  // a lane's bias entries (BoundConstants, route_row_exact)
  typedef RowThreadLayout<E, G, kSlots> L;
  constexpr bool kStream = kSlots > 0;
  static_assert(kSlots == 0 || (kSlots >= 2 && KG >= kSlots - 1), "a tile, or slots to stream through");
  static_assert(E == 256 && N == 32 && C == 8 && KG < G && K <= 2 * KG, "DeepSeek-V3's shape");
  static_assert(2 * G <= kRowThreadCandidates && 2 * K <= kRowThreadCandidates, "the lists hold the scratch");
  (void)num_experts;
  (void)num_groups;
  (void)topk_group;
  (void)topk;
  (void)scoring;
  (void)plan;
  extern __shared__ __align__(16) u32 row_thread_smem[];
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) & (kWarpSize - 1);
  u32* const tile = row_thread_smem + warp * L::kWarpWords;  // or the slots (kStream)
  u32* const list = tile + L::kDataWords;
  float* const shift = reinterpret_cast<float*>(list + L::kListWords);
  const bool has_bias = bias_dtype != kNoBias;
  const OutputArgs out = make_output_args(E, K, num_shared, replica, renormalize, apply_scaling, r);
  wait_for_predecessors_and_release_successor(out.shared_weight);

  float bias_f[C];
  load_bias_lane<C>(bias, bias_dtype, lane, bias_f);
  // lane l's C experts are group l / 4's entries (l % 4) * C onward
  const BoundConstants<C> bc(bias_f, lane, shift + (lane / (N / C)) * L::kShiftStride + (lane % (N / C)) * C);

  const i64 num_tiles = (num_rows + kWarpSize - 1) / kWarpSize;
  const i64 tile_step = static_cast<i64>(gridDim.x) * kWarps;
  // The rows of tile t that exist.
  const auto rows_of = [&](i64 t) {
    const i64 left = num_rows - t * kWarpSize;
    return left < kWarpSize ? static_cast<int>(left) : kWarpSize;
  };
  // Group g of tile t's 32 rows into slot s (kStream): row q = lane / 4 + 8 m, 16 bytes (lane % 4) of it.
  const auto copy_group = [&](i64 t, int g, int s) {
    const int rows = rows_of(t);
#pragma unroll
    for (int m = 0; m < 4; ++m) {
      const int q = lane / 4 + 8 * m;
      if (q < rows) {
        copy_16_bytes(tile + s * L::kSlotWords + q * L::kChunkWords + (lane % 4) * 4,
                      row_start<u16>(scores, t * kWarpSize + q, row_stride) + g * N + (lane % 4) * 8);
      }
    }
    copies_commit();
  };
  // The first kSlots - 1 groups of tile t (each thread's copies of the previous tile's slots are done).
  const auto copy_first_groups = [&](i64 t) {
#pragma unroll
    for (int s = 0; s + 1 < kSlots; ++s) copy_group(t, s, s);
  };
  const i64 first_tile = static_cast<i64>(blockIdx.x) * kWarps + warp;
  if constexpr (kStream) {
    if (first_tile < num_tiles) copy_first_groups(first_tile);
  }
  for (i64 t = first_tile; t < num_tiles; t += tile_step) {
    const i64 base = t * kWarpSize;
    const int rows_here = rows_of(t);
    const bool live = lane < rows_here;
    const u16* const my_row = row_start<u16>(scores, base + (live ? lane : 0), row_stride);
    if constexpr (!kStream) {
      // ---- 1. the tile: row q by the warp's q-th copy, 16 bytes a lane ----
      copy_tile_rows<kWarpSize, E / 8, L::kRowWords>(tile, scores, row_stride, base, rows_here, lane);
      copies_wait<0>();
      __syncwarp();
    }
    const u32* const mine = tile + lane * (kStream ? L::kChunkWords : L::kRowWords);
    // ---- 2. steps 1-3 on approximate keys: each group's top two ----
    // The group loops stay loops (#pragma unroll 1), the groups' top two parked in the candidate lists' words
    // (free until step 4): unrolled, the tile's loop was about 5500 instructions (88 KB of code), and Nsight
    // Compute put 5.4 of the 8.7 cycles between a warp's instructions on fetching them (T = 262144, H200).
#pragma unroll 1
    for (int g = 0; g < G; ++g) {
      const u32* words = mine + g * (N / 2);
      if constexpr (kStream) {
        if (g + kSlots - 1 < G) {
          copy_group(t, g + kSlots - 1, (g + kSlots - 1) % kSlots);
        } else {
          copies_commit();  // an empty group: the wait below always leaves kSlots - 1 groups in flight
        }
        copies_wait<kSlots - 1>();
        __syncwarp();  // the other lanes' copies of this group are in
        words = mine + (g % kSlots) * L::kSlotWords;
      }
      int a1;
      int a2;
      approx_group_top_two(words, shift + g * L::kShiftStride, a1, a2);
      list[g * kWarpSize + lane] = static_cast<u32>(a1);
      list[(G + g) * kWarpSize + lane] = static_cast<u32>(a2);
      if constexpr (kStream) __syncwarp();  // every lane has read the slot before the next group's copies
    }
    int t1[G];
    int t2[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      t1[g] = static_cast<int>(list[g * kWarpSize + lane]);
      t2[g] = static_cast<int>(list[(G + g) * kWarpSize + lane]);
    }

    // ---- 3. step 4 on approximate scores, proved as select_row_bound proves it ----
    const KeptGroups kept = keep_groups<G, KG>(t1, t2, has_bias, bc.margin, bc.twice_group_margin);
    u32 kept_mask = kept.mask;
    const int cut = kept.cut;

    // ---- 4. the kept groups' named keys whose high bits reach the floor's: the candidates ----
    // Branch-free: every key is stored at the list's next free slot, which advances only for a candidate (a
    // branch per key diverged: 128 BSSY/BSYNC pairs in the SASS). The slot is clamped to kRowThreadCandidates
    // after each 8 keys, so 8 slots past it absorb the stores of a full list; a row with that many candidates
    // is routed again exactly.
    int at = lane;  // the next free slot's word: slot j of lane l at j * 32 + l
    // kStream: the thread's own kept group into its own place of slot s (no other lane reads it)
    const auto copy_kept = [&](int g, int s) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        copy_16_bytes(tile + s * L::kSlotWords + lane * L::kChunkWords + c * 4, my_row + g * N + c * 8);
      }
      copies_commit();
    };
    u32 to_copy = kept_mask;  // kStream: the kept groups not yet copied, kSlots - 1 ahead
    if constexpr (kStream) {
#pragma unroll
      for (int s = 0; s + 1 < kSlots; ++s) {
        copy_kept(__ffs(to_copy) - 1, s);
        to_copy &= to_copy - 1u;
      }
    }
#pragma unroll 1
    for (int i = 0; i < KG; ++i) {
      const int g = __ffs(kept_mask) - 1;
      kept_mask &= kept_mask - 1u;
      const u32* words = mine + g * (N / 2);
      if constexpr (kStream) {
        if (i + kSlots - 1 < KG) {
          copy_kept(__ffs(to_copy) - 1, (i + kSlots - 1) % kSlots);
          to_copy &= to_copy - 1u;
        } else {
          copies_commit();
        }
        copies_wait<kSlots - 1>();
        words = mine + (i % kSlots) * L::kSlotWords;
      }
      approx_group_candidates(words, shift + g * L::kShiftStride, g, cut, list, at,
                              kRowThreadCandidates * kWarpSize + lane);
    }
    const int count = (at - lane) / kWarpSize;  // kRowThreadCandidates: the list is full, maybe more
    if constexpr (kStream) {
      __syncwarp();  // every lane is done with the slots: the next tile's first groups come in during step 5
      if (t + tile_step < num_tiles) copy_first_groups(t + tile_step);
    }

    // ---- 5. the K + 1 largest candidates (insertion), then the winners' exact keys and the proof ----
    int top[K + 1];
    largest_candidates<K>(list, lane, count, live, top);
    const int next = count > K ? top[K] : cut;
    const float bound = __fadd_ru(__fadd_ru(__int_as_float(next), bc.bmin), bc.margin);
    bool proved = live && !kept.doubt && kept.proved && count < kRowThreadCandidates &&
                  static_cast<u32>(next) < 0x7f800000u;
    // The winners one at a time (loops, not unrolled: Nsight Compute's largest stall of the unrolled code was
    // fetching it), their named keys and then their p parked in the lists' first 2 K slots.
#pragma unroll
    for (int k = 0; k < K; ++k) list[k * kWarpSize + lane] = static_cast<u32>(top[k]);
    u32 least = 0xffffffffu;
    u32 last_key = 0xffffffffu;  // the previous winner's exact key and id (none before the first)
    int last_id = -1;
    bool in_order = true;
#pragma unroll 1
    for (int k = 0; k < K; ++k) {
      const int id = 255 - static_cast<int>(list[k * kWarpSize + lane] & 0xffu);
      float px[1];
      if constexpr (kStream) {
        px[0] = bf16_bits_to_float(__ldg(my_row + id));
      } else {
        const u32 w = mine[id / 2];
        px[0] = __uint_as_float((id & 1) ? (w & 0xffff0000u) : (w << 16));
      }
      sigmoid_in_place<1, false>(px);
      const u32 unbiased = __float_as_uint(px[0]) | 0x80000000u;  // biased_score_keys' two cases
      const u32 key = has_bias ? probability_key(px[0], load_bias(bias, bias_dtype, id)) : unbiased;
      least = min(least, key);
      in_order &= last_key > key || (last_key == key && last_id < id);
      last_key = key;
      last_id = id;
      list[(K + k) * kWarpSize + lane] = __float_as_uint(px[0]);
    }
    proved = proved && in_order && least > orderable(bound);

    // ---- 6. steps 6-8 for a proved row; the others routed again exactly by the warp ----
    if (proved) {
      const i64 row = base + lane;
      int* const ids = out_ids + row * out.width;
      float* const weights = out_weights + row * out.width;
      float p[K];
#pragma unroll
      for (int k = 0; k < K; ++k) p[k] = __uint_as_float(list[(K + k) * kWarpSize + lane]);
      const float routed_sum = butterfly_sum<K>(p);
#pragma unroll 1
      for (int k = 0; k < K; ++k) {
        ids[k] = 255 - static_cast<int>(list[k * kWarpSize + lane] & 0xffu);
        const float pk = __uint_as_float(list[(K + k) * kWarpSize + lane]);
        weights[k] = output_scaling(routed_weight(pk, routed_sum, out), out);
      }
      shared_slots(ids, weights, row, routed_sum, 0, 1, out);
    }
    route_again_exactly<DT, E, G, KG, K>(__ballot_sync(kFullMask, live && !proved), base, lane, scores, row_stride,
                                         bias, bias_dtype, out_ids, out_weights, out);
    __syncwarp();  // every lane is done with the tile and the lists before the next tile's copies
  }
}

// ---- a row per pair of threads (route_row_pair_probe) --------------------------------------------------------
// The tile kernel with 16 rows a warp: row q's threads are lanes q and q + 16 (half h = lane / 16), so a warp's
// tile takes half the shared memory and twice the warps fit an SM (the tile kernel's issue rate per warp was its
// best; its warps were what it lacked). Half h takes groups [4 h, 4 h + 4) in step 2 and the kept groups
// 2 h and 2 h + 1 (in index order) in step 4; the halves swap their groups' top two (8 shuffles), then both
// rank the groups, bitwise alike; each half's K + 1 largest candidates, swapped (K + 1 shuffles), are merged
// by a sorting network; half h computes the exact keys of winners [4 h, 4 h + 4), and the proof, the order
// and the routed sum take the other half's by shuffles (the sum in butterfly_sum's order).

// kCandidates: a half's candidate list (a half sees about half of a row's, at least its K / 2 sure keys); the
// shifted bias and the bias are one table each a block (warp 0's), so that a warp takes 8448 + 32 (kCandidates +
// 8) bytes. The next tile's copies start once the threads have read their winners' logits (step 5), so that
// they overlap the winners' exact keys, the writes and the rows routed again.
template <int E, int G, int KG, int K, int kWarps, int kCandidates>
__global__ void __launch_bounds__(kWarps * kWarpSize) route_row_pair_probe(
    const void* __restrict__ scores, i64 num_rows, i64 row_stride, const void* __restrict__ bias,
    int bias_dtype, int num_experts, int num_groups, int topk_group, int topk, int scoring, int renormalize,
    int num_shared, int replica, int apply_scaling, float r, int plan, int* __restrict__ out_ids,
    float* __restrict__ out_weights) {
  constexpr int DT = kScoreBFloat16;
  constexpr int N = E / G;
  constexpr int C = E / kWarpSize;
  constexpr int kRows = kWarpSize / 2;  // rows a warp's tile
  constexpr int kRowWords = E / 2 + 4;
  constexpr int kShiftStride = N + 4;
  constexpr int kListWords = (kCandidates + 8) * kWarpSize;
  constexpr int kWarpWords = kRows * kRowWords + kListWords;
  constexpr int H = K / 2;  // winners a half computes exactly
  static_assert(E == 256 && N == 32 && C == 8 && G == 8 && KG == 4 && K == 8, "DeepSeek-V3's shape");
  static_assert(G <= kCandidates && C <= kCandidates + 8 && kCandidates <= kRowThreadCandidates, "the list");
  (void)num_experts;
  (void)num_groups;
  (void)topk_group;
  (void)topk;
  (void)scoring;
  (void)plan;
  extern __shared__ __align__(16) u32 row_pair_smem[];
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) & (kWarpSize - 1);
  const int half = lane / kRows;
  const int q = lane % kRows;  // the thread's row in the tile
  float* const shift = reinterpret_cast<float*>(row_pair_smem);  // G * kShiftStride words, the block's
  float* const block_bias = shift + G * kShiftStride;  // E words, the block's (bias_f: NaN read as -inf)
  u32* const tile = row_pair_smem + G * kShiftStride + E + warp * kWarpWords;
  u32* const list = tile + kRows * kRowWords;
  const bool has_bias = bias_dtype != kNoBias;
  const OutputArgs out = make_output_args(E, K, num_shared, replica, renormalize, apply_scaling, r);
  wait_for_predecessors_and_release_successor(out.shared_weight);
  // lane l's C experts are group l / 4's entries (l % 4) * C onward
  const BoundConstants<C> bc = block_bound_constants<C>(
      bias, bias_dtype, lane, warp, shift + (lane / (N / C)) * kShiftStride + (lane % (N / C)) * C,
      reinterpret_cast<float*>(list) + lane * C, block_bias);

  const i64 num_tiles = (num_rows + kRows - 1) / kRows;
  const i64 tile_step = static_cast<i64>(gridDim.x) * kWarps;
  // ---- 1. tile t's rows: row j by the warp's j-th copy, 16 bytes a lane ----
  const auto copy_tile = [&](i64 t) {
    const i64 left = num_rows - t * kRows;
    copy_tile_rows<kRows, E / 8, kRowWords>(tile, scores, row_stride, t * kRows,
                                            left < kRows ? static_cast<int>(left) : kRows, lane);
  };
  const i64 first_tile = static_cast<i64>(blockIdx.x) * kWarps + warp;
  if (first_tile < num_tiles) copy_tile(first_tile);
  for (i64 t = first_tile; t < num_tiles; t += tile_step) {
    const i64 base = t * kRows;
    const i64 left = num_rows - base;
    const int rows_here = left < kRows ? static_cast<int>(left) : kRows;
    copies_wait<0>();
    __syncwarp();  // every lane's copies of the tile are in
    const bool live = q < rows_here;
    const u32* const mine = tile + q * kRowWords;

    // ---- 2. steps 1-3: this half's groups' top two, then the other half's by shuffles ----
    int own1[G / 2];
    int own2[G / 2];
#pragma unroll 1
    for (int i = 0; i < G / 2; ++i) {
      const int g = half * (G / 2) + i;
      int a1;
      int a2;
      approx_group_top_two(mine + g * (N / 2), shift + g * kShiftStride, a1, a2);
      list[i * kWarpSize + lane] = static_cast<u32>(a1);
      list[(G / 2 + i) * kWarpSize + lane] = static_cast<u32>(a2);
    }
#pragma unroll
    for (int i = 0; i < G / 2; ++i) {
      own1[i] = static_cast<int>(list[i * kWarpSize + lane]);
      own2[i] = static_cast<int>(list[(G / 2 + i) * kWarpSize + lane]);
    }
    int t1[G];
    int t2[G];
#pragma unroll
    for (int i = 0; i < G / 2; ++i) {
      const int other1 = __shfl_xor_sync(kFullMask, own1[i], kRows);
      const int other2 = __shfl_xor_sync(kFullMask, own2[i], kRows);
      t1[i] = half == 0 ? own1[i] : other1;
      t2[i] = half == 0 ? own2[i] : other2;
      t1[G / 2 + i] = half == 0 ? other1 : own1[i];
      t2[G / 2 + i] = half == 0 ? other2 : own2[i];
    }

    // ---- 3. step 4, as the tile kernel (both halves alike) ----
    const KeptGroups kept = keep_groups<G, KG>(t1, t2, has_bias, bc.margin, bc.twice_group_margin);
    u32 kept_mask = kept.mask;
    const int cut = kept.cut;

    // ---- 4. this half's two kept groups' candidates ----
    if (half == 1) {  // skip the first KG / 2 kept groups
#pragma unroll
      for (int i = 0; i < KG / 2; ++i) kept_mask &= kept_mask - 1u;
    }
    int at = lane;
    constexpr int kLimit = kCandidates * kWarpSize;
#pragma unroll 1
    for (int i = 0; i < KG / 2; ++i) {
      const int g = __ffs(kept_mask) - 1;
      kept_mask &= kept_mask - 1u;
      approx_group_candidates(mine + g * (N / 2), shift + g * kShiftStride, g, cut, list, at, kLimit + lane);
    }
    const int count = (at - lane) / kWarpSize;

    // ---- 5. each half's K + 1 largest, merged; the winners' exact keys, half h taking [H h, H h + H) ----
    int top[K + 1];
    largest_candidates<K>(list, lane, count, live, top);
    // the K + 1 largest of both halves: top and the other half's reversed give each place's larger (a bitonic
    // sequence holding the K + 1 largest), sorted by the network
    int merged[K + 1];
#pragma unroll
    for (int i = 0; i <= K; ++i) {
      const int other = __shfl_xor_sync(kFullMask, top[K - i], kRows);
      merged[i] = max(top[i], other);
    }
    sort_keys_descending<K + 1, K + 1>(merged);
    const int total = count + __shfl_xor_sync(kFullMask, count, kRows);
    const bool full = max(count, __shfl_xor_sync(kFullMask, count, kRows)) >= kCandidates;
    const int next = total > K ? merged[K] : cut;
    const float bound = __fadd_ru(__fadd_ru(__int_as_float(next), bc.bmin), bc.margin);
    bool proved = live && !kept.doubt && kept.proved && !full && static_cast<u32>(next) < 0x7f800000u;
    float p[H];
    u32 key[H];
    int id[H];
#pragma unroll
    for (int k = 0; k < H; ++k) {
      const int w = half == 0 ? merged[k] : merged[H + k];
      id[k] = 255 - (w & 0xff);
      const u32 word = mine[id[k] / 2];
      p[k] = __uint_as_float((id[k] & 1) ? (word & 0xffff0000u) : (word << 16));
    }
    __syncwarp();  // every lane has read the tile: the next tile's copies overwrite it
    if (t + tile_step < num_tiles) copy_tile(t + tile_step);
    sigmoid_in_place<H, false>(p);
#pragma unroll
    for (int k = 0; k < H; ++k) {
      const u32 unbiased = __float_as_uint(p[k]) | 0x80000000u;
      key[k] = has_bias ? probability_key(p[k], block_bias[id[k]]) : unbiased;
    }
    u32 least = key[0];
    bool in_order = true;
#pragma unroll
    for (int k = 1; k < H; ++k) {
      least = min(least, key[k]);
      in_order &= key[k - 1] > key[k] || (key[k - 1] == key[k] && id[k - 1] < id[k]);
    }
    // across the halves: half 0's last winner against half 1's first
    const u32 first_key = __shfl_xor_sync(kFullMask, key[0], kRows);
    const int first_id = __shfl_xor_sync(kFullMask, id[0], kRows);
    const bool seam = key[H - 1] > first_key || (key[H - 1] == first_key && id[H - 1] < first_id);
    in_order &= half == 1 || seam;
    least = min(least, __shfl_xor_sync(kFullMask, least, kRows));
    in_order &= __shfl_xor_sync(kFullMask, in_order ? 1 : 0, kRows) != 0;
    proved = proved && in_order && least > orderable(bound);

    // ---- 6. steps 6-8: half h writes slots [H h, H h + H); half 0 the shared slots ----
    float all_p[K];
#pragma unroll
    for (int k = 0; k < H; ++k) {
      const float other = __shfl_xor_sync(kFullMask, p[k], kRows);
      all_p[k] = half == 0 ? p[k] : other;
      all_p[H + k] = half == 0 ? other : p[k];
    }
    if (proved) {
      const i64 row = base + q;
      int* const ids = out_ids + row * out.width;
      float* const weights = out_weights + row * out.width;
      const float routed_sum = butterfly_sum<K>(all_p);
#pragma unroll
      for (int k = 0; k < H; ++k) {
        ids[half * H + k] = id[k];
        weights[half * H + k] = output_scaling(routed_weight(p[k], routed_sum, out), out);
      }
      if (half == 0) shared_slots(ids, weights, row, routed_sum, 0, 1, out);
    }
    route_again_exactly<DT, E, G, KG, K>(__ballot_sync(kFullMask, half == 0 && live && !proved), base, lane, scores,
                                         row_stride, bias, bias_dtype, out_ids, out_weights, out);
    __syncwarp();
  }
}

// ---- a row per thread without groups (route_row_flat_probe) ------------------------------------------------
// The sigmoid rows with a bias and no groups (Moonlight, GLM-4.5-Air, GLM-4.5: E <= 256, E % 8 == 0, K <= E / 8):
// a tile of 32 rows (E / 2 + 4 words a row) and a thread a row, as route_row_thread_probe, with the groups'
// part replaced: step 2 keeps each 8 experts' largest approximate key, and tau, the K-th largest of those E / 8
// maxima, bounds the K-th largest key from below (the K largest maxima are K keys at least tau); steps 4 to 6 are
// the tile kernel's over all E experts. A key that is NaN or +inf (a NaN logit, an infinite bias entry) puts the
// row in doubt: it is routed again exactly. kKeep: step 2's keys stay in registers for step 4 (E of them a thread),
// which then only names and lists them; otherwise step 4 computes them again from the tile (run 17 of docs/perf.md:
// computed twice, every expert's key cost Moonlight's kernel 1.16x the dispatch's time).
template <int E, int K, int kWarps, bool kKeep>
__global__ void __launch_bounds__(kWarps * kWarpSize) route_row_flat_probe(
    const void* __restrict__ scores, i64 num_rows, i64 row_stride, const void* __restrict__ bias,
    int bias_dtype, int num_experts, int num_groups, int topk_group, int topk, int scoring, int renormalize,
    int num_shared, int replica, int apply_scaling, float r, int plan, int* __restrict__ out_ids,
    float* __restrict__ out_weights) {
  constexpr int DT = kScoreBFloat16;
  constexpr int C = E / kWarpSize;  // a lane's bias entries (BoundConstants, route_row_exact)
  constexpr int kChunks = E / 8;
  constexpr int kRowWords = E / 2 + 4;
  constexpr int kListWords = (kRowThreadCandidates + 8) * kWarpSize;
  constexpr int kWarpWords = kWarpSize * kRowWords + kListWords;
  static_assert(E % kWarpSize == 0 && E <= 256 && C >= 1 && 1 < K && K <= kChunks && K <= 16, "the flat shape");
  static_assert(2 * K <= kRowThreadCandidates + 8, "the lists hold the scratch");
  (void)num_experts;
  (void)num_groups;
  (void)topk_group;
  (void)topk;
  (void)scoring;
  (void)plan;
  extern __shared__ __align__(16) u32 row_flat_smem[];
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) & (kWarpSize - 1);
  float* const shift = reinterpret_cast<float*>(row_flat_smem);  // E words, the block's
  float* const block_bias = shift + E;                            // E words, the block's
  u32* const tile = row_flat_smem + 2 * E + warp * kWarpWords;
  u32* const list = tile + kWarpSize * kRowWords;
  const bool has_bias = bias_dtype != kNoBias;
  const OutputArgs out = make_output_args(E, K, num_shared, replica, renormalize, apply_scaling, r);
  wait_for_predecessors_and_release_successor(out.shared_weight);
  const BoundConstants<C> bc = block_bound_constants<C>(bias, bias_dtype, lane, warp, shift + lane * C,
                                                        reinterpret_cast<float*>(list) + lane * C, block_bias);

  const i64 num_tiles = (num_rows + kWarpSize - 1) / kWarpSize;
  const i64 tile_step = static_cast<i64>(gridDim.x) * kWarps;
  // ---- 1. tile t's rows: row j by the warp's copies, 16 bytes a lane (E / 8 lanes a row) ----
  const auto copy_tile = [&](i64 t) {
    const i64 left = num_rows - t * kWarpSize;
    copy_tile_rows<kWarpSize, kChunks, kRowWords>(tile, scores, row_stride, t * kWarpSize,
                                                  left < kWarpSize ? static_cast<int>(left) : kWarpSize, lane);
  };
  const i64 first_tile = static_cast<i64>(blockIdx.x) * kWarps + warp;
  if (first_tile < num_tiles) copy_tile(first_tile);
  for (i64 t = first_tile; t < num_tiles; t += tile_step) {
    const i64 base = t * kWarpSize;
    const i64 left = num_rows - base;
    const int rows_here = left < kWarpSize ? static_cast<int>(left) : kWarpSize;
    copies_wait<0>();
    __syncwarp();  // every lane's copies of the tile are in
    const bool live = lane < rows_here;
    const u32* const mine = tile + lane * kRowWords;

    // ---- 2. each 8 experts' largest approximate key (signed: NaN and +inf above every real key) ----
    int chunk_max[kChunks];
    int kept_keys[kKeep ? E : 1];
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      float x[8];
      widen_eight(*reinterpret_cast<const uint4*>(mine + c * 4), x);
      const float4 s0 = *reinterpret_cast<const float4*>(shift + c * 8);
      const float4 s1 = *reinterpret_cast<const float4*>(shift + c * 8 + 4);
      const float s[8] = {s0.x, s0.y, s0.z, s0.w, s1.x, s1.y, s1.z, s1.w};
      int k[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) k[j] = static_cast<int>(__float_as_uint(approx_sigmoid(x[j]) + s[j]));
      chunk_max[c] = tree_reduce(k, [](int a, int b) { return max(a, b); });
      if constexpr (kKeep) {
#pragma unroll
        for (int j = 0; j < 8; ++j) kept_keys[c * 8 + j] = k[j];
      }
    }
    // ---- 3. tau, the K-th largest maximum, and the candidates' floor (keep_groups' 4 M below tau) ----
    const bool doubt = tree_reduce(chunk_max, [](int a, int b) { return max(a, b); }) >= 0x7f800000;
    sort_keys_descending<kChunks, K>(chunk_max);
    const int tau = chunk_max[K - 1];
    const float floor_f = __fsub_rd(__int_as_float(tau), __fmul_ru(4.0f, bc.margin));
    const int cut = tau >= 0 && floor_f > 0.0f ? __float_as_int(floor_f) & ~0xff : 0;

    // ---- 4. every named key reaching the floor: the candidates ----
    int at = lane;
    const auto list_chunk = [&](int c, const int (&k)[8]) {
      const u32 names0 = static_cast<u32>(255 - c * 8) * 0x01010101u - 0x03020100u;  // bytes 255 - e
      const u32 names[2] = {names0, names0 - 4u * 0x01010101u};
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        list[at] = __byte_perm(static_cast<u32>(k[j]), names[j / 4], 0x3214 + j % 4);
        at += k[j] >= cut ? kWarpSize : 0;
      }
      at = min(at, kRowThreadCandidates * kWarpSize + lane);
    };
    if constexpr (kKeep) {
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        int k[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) k[j] = kept_keys[c * 8 + j];
        list_chunk(c, k);
      }
    } else {
#pragma unroll 2
      for (int c = 0; c < kChunks; ++c) {
        float x[8];
        widen_eight(*reinterpret_cast<const uint4*>(mine + c * 4), x);
        const float4 s0 = *reinterpret_cast<const float4*>(shift + c * 8);
        const float4 s1 = *reinterpret_cast<const float4*>(shift + c * 8 + 4);
        const float s[8] = {s0.x, s0.y, s0.z, s0.w, s1.x, s1.y, s1.z, s1.w};
        int k[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) k[j] = static_cast<int>(__float_as_uint(approx_sigmoid(x[j]) + s[j]));
        list_chunk(c, k);
      }
    }
    const int count = (at - lane) / kWarpSize;

    // ---- 5. the K + 1 largest candidates, the winners' exact keys and the proof ----
    int top[K + 1];
    largest_candidates<K>(list, lane, count, live, top);
    const int next = count > K ? top[K] : cut;
    const float bound = __fadd_ru(__fadd_ru(__int_as_float(next), bc.bmin), bc.margin);
    bool proved = live && !doubt && count < kRowThreadCandidates && static_cast<u32>(next) < 0x7f800000u;
    int id[K];
    float p[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      id[k] = 255 - (top[k] & 0xff);
      const int e = id[k] < E ? id[k] : 0;  // a row in doubt may name no expert
      const u32 word = mine[e / 2];
      p[k] = __uint_as_float((e & 1) ? (word & 0xffff0000u) : (word << 16));
    }
    __syncwarp();  // every lane has read the tile: the next tile's copies overwrite it
    if (t + tile_step < num_tiles) copy_tile(t + tile_step);
    sigmoid_in_place<K, false>(p);
    u32 least = 0xffffffffu;
    u32 last_key = 0xffffffffu;
    int last_id = -1;
    bool in_order = true;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const u32 unbiased = __float_as_uint(p[k]) | 0x80000000u;
      const u32 key = has_bias ? probability_key(p[k], block_bias[id[k] < E ? id[k] : 0]) : unbiased;
      least = min(least, key);
      in_order &= last_key > key || (last_key == key && last_id < id[k]);
      last_key = key;
      last_id = id[k];
    }
    proved = proved && in_order && least > orderable(bound);

    // ---- 6. steps 6-8 for a proved row; the others routed again exactly by the warp ----
    if (proved) {
      const i64 row = base + lane;
      int* const ids = out_ids + row * out.width;
      float* const weights = out_weights + row * out.width;
      const float routed_sum = butterfly_sum<K>(p);
#pragma unroll
      for (int k = 0; k < K; ++k) {
        ids[k] = id[k];
        weights[k] = output_scaling(routed_weight(p[k], routed_sum, out), out);
      }
      shared_slots(ids, weights, row, routed_sum, 0, 1, out);
    }
    route_again_exactly<DT, E, 1, 1, K>(__ballot_sync(kFullMask, live && !proved), base, lane, scores, row_stride,
                                        bias, bias_dtype, out_ids, out_weights, out);
    __syncwarp();
  }
}

}  // namespace moegate
