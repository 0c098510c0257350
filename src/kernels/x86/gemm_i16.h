// Quantized matmul for AVX2 without VNNI (the Ymm table): vpmaddubsw products
// summed in 16 bits, widened by one vpmaddwd per group that also applies the
// integer sub-block scale of the K-quants. Included from matmul_impl.h after
// the weight types; see docs/performance.md ("The AVX2 GEMM") for the design
// and what bounds it.
//
// AVX2 has no instruction that multiplies bytes and accumulates into 32 bits:
// vpmaddubsw (32 u8 x s8 products, summed in pairs into int16) is the
// multiply, and widening every result with vpmaddwd + vpaddd, as the VNNI
// template does with its dpbusd stand-in, spends two more instructions on
// each. Here:
//  - several vpmaddubsw results are added in int16 (vpaddw) before one
//    vpmaddwd widens them; how many is bounded per type so that no partial sum
//    can leave int16 (kGroup);
//  - that vpmaddwd multiplies by the sub-block's integer scale instead of 1,
//    so a K-quant super-block is one int32 sum per row, converted to f32 once;
//  - offsets (Q4_0's -8, Q6_K's -32, ...) start the int16 sums at
//    -beta * (the activations they multiply), precomputed per token, which
//    also keeps the sums small enough for long groups;
//  - for prompts (more than kPrefetchMaxTokens tokens) each thread expands its
//    chunk of row groups once into bytes plus ready scale vectors (U8 records,
//    below), so the unpacking of nibbles, 5th/6th bits and IQ4 tables and the
//    scale shuffles are paid once per chunk instead of once per token tile.
// Every token's result is computed by the same sequence of float operations
// whatever the batch size or path (integer sums are exact), so a token's
// logits do not depend on how many tokens were decoded with it.
#pragma once

namespace codey::kernels::x86 {
namespace {

inline int64_t load_i64(const void* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// An opaque copy of v: stops the compiler from reassociating a chain of
// integer adds (it otherwise computes every product of a group first, and
// spills them, to add them as a tree).
CODEY_ALWAYS_INLINE __m256i keep(__m256i v) {
  asm("" : "+x"(v));
  return v;
}

// 8 bytes b[j] (one per row) -> lane j = (b[j], b[j]) as int16.
inline __m256i dup_u8(const uint8_t* p) {
  const __m256i idx = _mm256_setr_epi8(0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1, 4, -1, 4, -1, 5, -1, 5,
                                       -1, 6, -1, 6, -1, 7, -1, 7, -1);
  return _mm256_shuffle_epi8(_mm256_set1_epi64x(load_i64(p)), idx);
}
// Signed bytes, sign-extended.
inline __m256i dup_i8(const uint8_t* p) {
  const __m256i idx = _mm256_setr_epi8(-1, 0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1, 4, -1, 4, -1, 5, -1,
                                       5, -1, 6, -1, 6, -1, 7, -1, 7);
  return _mm256_srai_epi16(_mm256_shuffle_epi8(_mm256_set1_epi64x(load_i64(p)), idx), 8);
}
// 16 bytes a[0..7] b[0..7] -> lane j = (a[j], b[j]) as int16.
inline __m256i pair_u8(const uint8_t* p) {
  const __m256i idx = _mm256_setr_epi8(0, -1, 8, -1, 1, -1, 9, -1, 2, -1, 10, -1, 3, -1, 11, -1, 4, -1, 12, -1, 5, -1, 13,
                                       -1, 6, -1, 14, -1, 7, -1, 15, -1);
  return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), idx);
}

// ---------------------------------------------------------------------------
// Per-type description (meta layouts in packed.h, R = 8):
//   kGroup     vpmaddubsw results summed in int16 per vpmaddwd. Bound: a lane
//              of the sum holds 2 * kGroup products (q - beta) * x with
//              |x| <= 127, and every partial sum is such a sum over some of
//              them plus -beta * x over the rest, so
//              2 * kGroup * max(|q - beta|, beta) * 127 <= 32767.
//   kSubs      integer scale sub-blocks per unit (K-quants), 0 = an f32 scale
//              per unit (32-element types).
//   kBeta      the offset subtracted from each quant.
//   kSigned    signed quants (Q8_0, IQ4): |w| times x with w's sign, one
//              vpmaddubsw per vpmaddwd (2 * 128 * 127 fits int16 once).
//   kMinPairs  K-quant mins: (m_2i, m_2i+1) int16 pairs per row against the
//              activation sums of 32 elements (of 16 when kMinBs16).
//   kMinF      an f32 min per row and unit (Q4_1, Q5_1).
// sc(m, s) / mn(m, i) / d(m) / dm(m): the scale of sub-block s, min pair i,
// f32 scales and mins (dmin) as vectors, lane j = row j.
struct I16Base {
  static constexpr int kSubs = 0, kBeta = 0, kMinPairs = 0;
  static constexpr bool kSigned = false, kMinF = false, kMinBs16 = false;
  static __m256 d(const uint8_t* m) { return Ymm::load_h(m); }
  static __m256 dm(const uint8_t* m) { return Ymm::load_h(m + 16); }
  static __m256i sc(const uint8_t*, int) { return _mm256_setzero_si256(); }
  static __m256i mn(const uint8_t*, int) { return _mm256_setzero_si256(); }
};

template <class P>
struct I16;
template <>
struct I16<PQ4_0> : I16Base {  // 16 * 8 * 127
  static constexpr int kGroup = 8, kBeta = 8;
};
template <>
struct I16<PQ4_1> : I16Base {  // 16 * 15 * 127
  static constexpr int kGroup = 8;
  static constexpr bool kMinF = true;
};
template <>
struct I16<PQ5_0> : I16Base {  // 16 * 16 * 127
  static constexpr int kGroup = 8, kBeta = 16;
};
template <>
struct I16<PQ5_1> : I16Base {  // 8 * 31 * 127
  static constexpr int kGroup = 4;
  static constexpr bool kMinF = true;
};
template <>
struct I16<PQ8_0> : I16Base {
  static constexpr int kGroup = 1;
  static constexpr bool kSigned = true;
};
template <>
struct I16<PIQ4_NL> : I16Base {
  static constexpr int kGroup = 1;
  static constexpr bool kSigned = true;
};
template <>
struct I16<PQ4_K> : I16Base {  // 16 * 15 * 127; sc[8] at +32, m[8] at +96
  static constexpr int kGroup = 8, kSubs = 1, kMinPairs = 4;
  static __m256i sc(const uint8_t* m, int s) { return dup_u8(m + 32 + 8 * s); }
  static __m256i mn(const uint8_t* m, int i) { return pair_u8(m + 96 + 16 * i); }
};
template <>
struct I16<PQ5_K> : I16<PQ4_K> {  // 8 * 31 * 127
  static constexpr int kGroup = 4;
};
template <>
struct I16<PQ6_K> : I16Base {  // 8 * 32 * 127; sc[16] (int8) at +16
  static constexpr int kGroup = 4, kSubs = 2, kBeta = 32;
  static __m256i sc(const uint8_t* m, int s) { return dup_i8(m + 16 + 8 * s); }
};
template <>
struct I16<PQ3_K> : I16<PQ6_K> {  // 8 * 4 * 127
  static constexpr int kBeta = 4;
};
template <>
struct I16<PQ2_K> : I16Base {  // 8 * 3 * 127; sc[16] at +32: scale low nibble, min high
  static constexpr int kGroup = 4, kSubs = 2, kMinPairs = 8;
  static constexpr bool kMinBs16 = true;
  static __m256i sc(const uint8_t* m, int s) { return _mm256_and_si256(dup_u8(m + 32 + 8 * s), _mm256_set1_epi16(0xF)); }
  static __m256i mn(const uint8_t* m, int i) { return _mm256_srli_epi16(pair_u8(m + 32 + 16 * i), 4); }
};
template <>
struct I16<PIQ4_XS> : I16Base {  // sc[8] (int8, ls - 32) at +16
  static constexpr int kGroup = 1, kSubs = 1;
  static constexpr bool kSigned = true;
  static __m256i sc(const uint8_t* m, int s) { return dup_i8(m + 16 + 8 * s); }
};

template <class P>
constexpr bool i16_has_dm() {
  return I16<P>::kMinPairs > 0 || I16<P>::kMinF;
}

// ---------------------------------------------------------------------------
// U8 record: one packed record of a group of 8 rows expanded for the GEMM:
//   w  [units][8][32]  the quants as bytes (vector g of unit u as w1() gives it)
//   aw [units][8][32]  |w| (signed types only)
//   sc [units*kSubs][32], mn [kMinPairs][32], d [8] f32, dm [8] f32 (if used)
template <class P>
struct U8Layout {
  using Tr = I16<P>;
  static constexpr int kW = P::kUnits * 8 * 32;
  static constexpr int kAw = kW;
  static constexpr int kSc = kAw + (Tr::kSigned ? kW : 0);
  static constexpr int kMn = kSc + P::kUnits * Tr::kSubs * 32;
  static constexpr int kD = kMn + Tr::kMinPairs * 32;
  static constexpr int kDm = kD + 32;
  static constexpr int kBytes = kDm + (i16_has_dm<P>() ? 32 : 0);
};

// Reads the records of a packed group in place (generation: a few tokens).
template <class P>
struct SrcPacked {
  using Tr = I16<P>;
  const uint8_t* q;  // this record's quants
  const uint8_t* m;  // this record's meta
  SrcPacked(const uint8_t* grp, int64_t n_rec) : q(grp), m(grp + static_cast<size_t>(n_rec) * 8 * P::kQsBytes) {}
  CODEY_ALWAYS_INLINE __m256i w(int u, int g) const { return P::template w1<Ymm>(q, u, g); }
  CODEY_ALWAYS_INLINE __m256i aw(__m256i wv, int, int) const { return _mm256_abs_epi8(wv); }
  CODEY_ALWAYS_INLINE __m256i sc(int s) const { return Tr::sc(m, s); }
  CODEY_ALWAYS_INLINE __m256i mn(int i) const { return Tr::mn(m, i); }
  CODEY_ALWAYS_INLINE __m256 d() const { return Tr::d(m); }
  CODEY_ALWAYS_INLINE __m256 dm() const { return Tr::dm(m); }
  CODEY_ALWAYS_INLINE void prefetch(int u) const {
    // Generation streams the weights from DRAM once: ask for the bytes
    // kPrefetchBytes ahead (a unit's share of a record at a time).
    constexpr int kLine = 64, kPerUnit = (8 * P::kQsBytes + P::kUnits - 1) / P::kUnits;
    const uint8_t* pf = q + kPrefetchBytes + u * kPerUnit;
    for (int off = 0; off < kPerUnit; off += kLine) _mm_prefetch(reinterpret_cast<const char*>(pf + off), _MM_HINT_T0);
  }
  CODEY_ALWAYS_INLINE void next() {
    q += 8 * P::kQsBytes;
    m += 8 * P::kMetaBytes;
  }
};

// Reads U8 records (prompts).
template <class P>
struct SrcU8 {
  using Lay = U8Layout<P>;
  const uint8_t* p;
  explicit SrcU8(const uint8_t* records) : p(records) {}
  CODEY_ALWAYS_INLINE __m256i ld(int off) const { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p + off)); }
  CODEY_ALWAYS_INLINE __m256i w(int u, int g) const { return ld((8 * u + g) * 32); }
  CODEY_ALWAYS_INLINE __m256i aw(__m256i, int u, int g) const { return ld(Lay::kAw + (8 * u + g) * 32); }
  CODEY_ALWAYS_INLINE __m256i sc(int s) const { return ld(Lay::kSc + 32 * s); }
  CODEY_ALWAYS_INLINE __m256i mn(int i) const { return ld(Lay::kMn + 32 * i); }
  CODEY_ALWAYS_INLINE __m256 d() const { return _mm256_load_ps(reinterpret_cast<const float*>(p + Lay::kD)); }
  CODEY_ALWAYS_INLINE __m256 dm() const { return _mm256_load_ps(reinterpret_cast<const float*>(p + Lay::kDm)); }
  CODEY_ALWAYS_INLINE void prefetch(int) const {}
  CODEY_ALWAYS_INLINE void next() { p += Lay::kBytes; }
};

// Expands the n_rec records of a packed group into U8 records at dst
// (32-byte aligned).
template <class P>
void unpack_group_u8(const uint8_t* grp, int64_t n_rec, uint8_t* dst) {
  using Tr = I16<P>;
  using Lay = U8Layout<P>;
  SrcPacked<P> src(grp, n_rec);
  auto st = [&](int off, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(dst + off), v); };
  for (int64_t b = 0; b < n_rec; ++b, src.next(), dst += Lay::kBytes) {
    for (int u = 0; u < P::kUnits; ++u)
      for (int g = 0; g < 8; ++g) {
        const __m256i wv = src.w(u, g);
        st((8 * u + g) * 32, wv);
        if constexpr (Tr::kSigned) st(Lay::kAw + (8 * u + g) * 32, _mm256_abs_epi8(wv));
      }
    for (int s = 0; s < P::kUnits * Tr::kSubs; ++s) st(Lay::kSc + 32 * s, src.sc(s));
    for (int i = 0; i < Tr::kMinPairs; ++i) st(Lay::kMn + 32 * i, src.mn(i));
    _mm256_store_ps(reinterpret_cast<float*>(dst + Lay::kD), src.d());
    if constexpr (i16_has_dm<P>()) _mm256_store_ps(reinterpret_cast<float*>(dst + Lay::kDm), src.dm());
  }
}

// ---------------------------------------------------------------------------
// The micro-kernel: 8 rows x T tokens over all of K. Per unit and group of
// kGroup weight vectors: T int16 sums (each vector serves every token), one
// vpmaddwd per token by the scale (or 1); K-quants convert once per record.
template <class P, int T, class Src>
__attribute__((noinline)) void tile_i16(Src src, int64_t n_rec, const ActLayout& L, const uint8_t* const* act, float* const* out, int n_out,
              int n_rows, bool prefetch) {
  using Tr = I16<P>;
  constexpr int G = 8 / Tr::kGroup;  // groups per unit
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_rec; ++b, src.next()) {
    __m256i isum[T];
    for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
    for (int u = 0; u < P::kUnits; ++u) {
      if (prefetch) src.prefetch(u);
      const int64_t ab = b * P::kUnits + u;  // activation block of 32
      for (int grp = 0; grp < G; ++grp) {
        __m256i s16[T];
        for (int t = 0; t < T; ++t)
          s16[t] = Tr::kBeta ? _mm256_set1_epi32(reinterpret_cast<const int32_t*>(act[t] + L.off_beta)[ab * G + grp])
                             : _mm256_setzero_si256();
        for (int gi = 0; gi < Tr::kGroup; ++gi) {
          const int g = grp * Tr::kGroup + gi;
          const __m256i wv = src.w(u, g);
          const __m256i uv = Tr::kSigned ? src.aw(wv, u, g) : wv;
          for (int t = 0; t < T; ++t) {
            __m256i xv = _mm256_set1_epi32(load_i32(act[t] + 32 * ab + 4 * g));
            if constexpr (Tr::kSigned) xv = _mm256_sign_epi8(xv, wv);
            s16[t] = keep(_mm256_add_epi16(s16[t], _mm256_maddubs_epi16(uv, xv)));
          }
        }
        const __m256i mul = Tr::kSubs ? src.sc(u * Tr::kSubs + grp * Tr::kSubs / G) : ones;
        for (int t = 0; t < T; ++t) isum[t] = keep(_mm256_add_epi32(isum[t], _mm256_madd_epi16(s16[t], mul)));
      }
      if constexpr (Tr::kSubs == 0) {  // an f32 scale per block of 32 (weights and activations)
        const __m256 dw = src.d();
        for (int t = 0; t < T; ++t) {
          const float da = reinterpret_cast<const float*>(act[t] + L.off_d)[ab];
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, _mm256_set1_ps(da)), acc[t]);
          isum[t] = _mm256_setzero_si256();
        }
        if constexpr (Tr::kMinF) {
          const __m256 dm = src.dm();
          for (int t = 0; t < T; ++t)
            acc[t] = _mm256_fmadd_ps(dm, _mm256_set1_ps(reinterpret_cast<const float*>(act[t] + L.off_sa32)[ab]), acc[t]);
        }
      }
    }
    if constexpr (Tr::kSubs > 0) {  // K-quants: one f32 scale per super-block (weights and activations)
      const __m256 dw = src.d();
      __m256 dm;
      if constexpr (Tr::kMinPairs > 0) dm = src.dm();
      for (int t = 0; t < T; ++t) {
        const float da = reinterpret_cast<const float*>(act[t] + L.off_d)[b * 8];
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, _mm256_set1_ps(da)), acc[t]);
        if constexpr (Tr::kMinPairs > 0) {
          // sum over sub-blocks of m * (activation sum), from int16 pairs.
          const auto* bs = reinterpret_cast<const int32_t*>(act[t] + (Tr::kMinBs16 ? L.off_bs16h : L.off_bs32h)) +
                           b * Tr::kMinPairs;
          __m256i mi = _mm256_madd_epi16(src.mn(0), _mm256_set1_epi32(bs[0]));
          for (int i = 1; i < Tr::kMinPairs; ++i)
            mi = _mm256_add_epi32(mi, _mm256_madd_epi16(src.mn(i), _mm256_set1_epi32(bs[i])));
          acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mi), _mm256_mul_ps(dm, _mm256_set1_ps(da)), acc[t]);
        }
      }
    }
  }
  for (int t = 0; t < n_out; ++t) Ymm::store(out[t], acc[t], n_rows);
}

// ---------------------------------------------------------------------------
// Activation extras of the 16-bit path, from the int8 row:
//   bs16h [K/16] / bs32h [K/32]  int16 sums of 16 / 32 quants (K-quant mins)
//   beta  [K/32 * G]             per unit and group of kGroup vectors, the
//                                int16 pair (-beta * sum of the activations in
//                                lane 0, in lane 1) that starts the sums
template <class P>
inline void act_extras_row(const ActLayout& L, uint8_t* row) {
  using Tr = I16<P>;
  constexpr int G = 8 / Tr::kGroup;
  const auto* qs = reinterpret_cast<const int8_t*>(row);
  auto* bs16 = reinterpret_cast<int16_t*>(row + L.off_bs16h);
  auto* bs32 = reinterpret_cast<int16_t*>(row + L.off_bs32h);
  auto* beta = reinterpret_cast<int32_t*>(row + L.off_beta);
  const __m256i ones8 = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < L.nb; ++b) {
    // pairs[2g + e] = qs[4g + 2e] + qs[4g + 2e + 1]
    alignas(32) int16_t pairs[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(pairs),
                       _mm256_maddubs_epi16(ones8, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * b))));
    int lo = 0, hi = 0;
    for (int i = 0; i < 8; ++i) {
      lo += pairs[i];
      hi += pairs[8 + i];
    }
    bs16[2 * b] = static_cast<int16_t>(lo);
    bs16[2 * b + 1] = static_cast<int16_t>(hi);
    bs32[b] = static_cast<int16_t>(lo + hi);
    if constexpr (Tr::kBeta != 0)
      for (int grp = 0; grp < G; ++grp) {
        int l0 = 0, l1 = 0;
        for (int g = grp * Tr::kGroup; g < (grp + 1) * Tr::kGroup; ++g) {
          l0 += pairs[2 * g];
          l1 += pairs[2 * g + 1];
        }
        const auto v0 = static_cast<uint16_t>(-Tr::kBeta * l0), v1 = static_cast<uint16_t>(-Tr::kBeta * l1);
        beta[b * G + grp] = static_cast<int32_t>(v0 | static_cast<uint32_t>(v1) << 16);
      }
  }
}

// ---------------------------------------------------------------------------
// Driver. Generation (up to kPrefetchMaxTokens tokens) reads the packed
// groups in place with prefetch; prompts expand each chunk of groups into U8
// records once and run every token tile over them.

template <class P>
size_t u8_group_bytes(int64_t k) {
  return static_cast<size_t>(k / (32 * P::kUnits)) * U8Layout<P>::kBytes;
}

// Bytes of one thread's U8 chunk for a matrix of k columns (at least a group).
template <class P>
size_t u8_chunk_bytes(int64_t k) {
  const size_t gb = u8_group_bytes<P>(k);
  return std::max<size_t>(1, kU8ChunkBytes / gb) * gb;
}

template <class P>
size_t i16_workspace(TensorType type, int64_t m, int64_t k, int n_threads) {
  const size_t act = act_bytes(m, k);
  const size_t packed = static_cast<size_t>(kMaxChunkGroups) * packed_group_bytes(type, k, Ymm::R);
  return act + static_cast<size_t>(n_threads) * (packed + u8_chunk_bytes<P>(k) + 64) + 128;
}

template <class P>
void matmul_i16(const Matrix& w, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                std::span<uint8_t> workspace, ThreadPool& pool) {
  constexpr int R = Ymm::R, kT = Ymm::kTile;
  const int64_t k = w.cols;
  const int64_t n_rec = k / (32 * P::kUnits);
  const ActLayout L(k);
  const int nth = pool.n_threads();
  CODEY_ASSERT(workspace.size() >= i16_workspace<P>(w.type, m, k, nth));
  uint8_t* act = align64(workspace.data());
  uint8_t* scratch = act + act_bytes(m, k);
  const ActMode mode = P::kUnits == 8 ? ActMode::kQ8_K : ActMode::kQ8_0;
  auto quantize = [&](int64_t i) {
    uint8_t* row = act + static_cast<size_t>(i) * L.stride;
    quantize_act_row(x + i * ldx, L, row, mode);
    act_extras_row<P>(L, row);
  };
  if (m < 4) {
    for (int64_t i = 0; i < m; ++i) quantize(i);
  } else {
    pool.parallel_for(m, std::max<int64_t>(1, m / (4 * nth)), [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) quantize(i);
    });
  }

  const size_t gb = packed_group_bytes(w.type, k, R);
  const size_t ub = u8_group_bytes<P>(k);
  const size_t per_thread = static_cast<size_t>(kMaxChunkGroups) * gb + u8_chunk_bytes<P>(k) + 64;
  const uint8_t* packed = packed_groups(w, R);
  const int64_t n_groups = (w.rows + R - 1) / R;
  const bool gemm = m > kPrefetchMaxTokens;
  int64_t per_chunk;
  if (m <= 2) {  // bandwidth bound: only balance matters
    per_chunk = std::max<int64_t>(1, n_groups / (8 * nth));
  } else {
    per_chunk = std::max<int64_t>(1, static_cast<int64_t>((gemm ? kU8ChunkBytes / ub : kChunkBytes / gb)));
    per_chunk = std::min(per_chunk, std::max<int64_t>(1, n_groups / (4 * nth)));
  }
  if (!packed) per_chunk = std::min(per_chunk, kMaxChunkGroups);
  const bool prefetch = packed && !gemm;  // on-the-fly groups sit in L1/L2 scratch
  const int64_t n_chunks = (n_groups + per_chunk - 1) / per_chunk;

  pool.parallel_for(n_chunks, 1, [&](int64_t c0, int64_t c1, int ith) {
    uint8_t* my_packed = scratch + static_cast<size_t>(ith) * per_thread;
    uint8_t* my_u8 = align64(my_packed + static_cast<size_t>(kMaxChunkGroups) * gb);
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t g0 = c * per_chunk, g1 = std::min(n_groups, g0 + per_chunk);
      auto group = [&](int64_t g) {  // the packed bytes of group g
        return packed ? packed + static_cast<size_t>(g) * gb : my_packed + static_cast<size_t>(g - g0) * gb;
      };
      if (!packed)
        for (int64_t g = g0; g < g1; ++g) pack_group(w, g * R, R, my_packed + static_cast<size_t>(g - g0) * gb);
      if (gemm)
        for (int64_t g = g0; g < g1; ++g) unpack_group_u8<P>(group(g), n_rec, my_u8 + static_cast<size_t>(g - g0) * ub);
      for (int64_t t0 = 0; t0 < m; t0 += kT) {
        const int nt = static_cast<int>(std::min<int64_t>(kT, m - t0));
        const uint8_t* a[kT];
        for (int t = 0; t < kT; ++t)  // past the end: repeat the last token, results dropped
          a[t] = act + static_cast<size_t>(t0 + std::min(t, nt - 1)) * L.stride;
        for (int64_t g = g0; g < g1; ++g) {
          const int n_rows = static_cast<int>(std::min<int64_t>(R, w.rows - g * R));
          float* out[kT];
          for (int t = 0; t < nt; ++t) out[t] = y + (t0 + t) * ldy + g * R;
          if (gemm) {
            tile_i16<P, kT>(SrcU8<P>(my_u8 + static_cast<size_t>(g - g0) * ub), n_rec, L, a, out, nt, n_rows, false);
          } else {
            const SrcPacked<P> src(group(g), n_rec);
            if (nt == 1)
              tile_i16<P, 1>(src, n_rec, L, a, out, nt, n_rows, prefetch);
            else if (nt == 2)
              tile_i16<P, 2>(src, n_rec, L, a, out, nt, n_rows, prefetch);
            else
              tile_i16<P, kT>(src, n_rec, L, a, out, nt, n_rows, prefetch);
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace codey::kernels::x86
