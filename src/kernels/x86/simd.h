// Thin vector wrappers so one kernel source serves AVX2 (Ymm: 8 int32/f32
// lanes) and AVX-512 (Zmm: 16 lanes). Include only from src/kernels/x86/
// avx2*.cc / avx512*.cc: everything here has internal linkage, so each
// translation unit gets its own copy compiled for its instruction set.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

// For small helpers whose arrays of vectors must stay in registers: not
// inlined, they live on the stack.
#define CODEY_ALWAYS_INLINE inline __attribute__((always_inline))

namespace codey::kernels::x86 {
namespace {

inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// 256-bit lanes: the AVX2 table. It has no byte multiply-accumulate into
// int32 (kVnni false): its matmul sums vpmaddubsw results in 16 bits
// (gemm_i16.h).
struct Ymm {
  static constexpr int R = 8;
  static constexpr int kTile = 4;  // tokens per matmul micro-kernel: 16 registers
  static constexpr bool kVnni = false;
  using I = __m256i;
  using F = __m256;

  static I load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static I c8(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }
  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static I zero() { return _mm256_setzero_si256(); }
  static I bcast(const void* p) { return _mm256_set1_epi32(load_i32(p)); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I or_(I a, I b) { return _mm256_or_si256(a, b); }
  static I xor_(I a, I b) { return _mm256_xor_si256(a, b); }
  template <int N>
  static I shr(I a) { return _mm256_srli_epi16(a, N); }
  template <int N>
  static I shl(I a) { return _mm256_slli_epi16(a, N); }
  static I shr_var(I a, int n) { return _mm256_srl_epi16(a, _mm_cvtsi32_si128(n)); }
  // a | (b & mask)
  static I or_masked(I a, I b, I mask) { return _mm256_or_si256(a, _mm256_and_si256(b, mask)); }
  // a | (bytes of x having any bit of pattern ? val : 0)
  static I or_if(I a, I x, I pattern, I val) {
    const I hit = _mm256_cmpeq_epi8(_mm256_and_si256(x, pattern), pattern);
    return _mm256_or_si256(a, _mm256_and_si256(hit, val));
  }
  static I shuffle8(I table, I idx) { return _mm256_shuffle_epi8(table, idx); }
  static I bcast128(__m128i v) { return _mm256_broadcastsi128_si256(v); }
  static F fzero() { return _mm256_setzero_ps(); }
  static F fset1(float v) { return _mm256_set1_ps(v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F fmax(F a, F b) { return _mm256_max_ps(a, b); }
  static F fmin(F a, F b) { return _mm256_min_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fnma(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static F round_near(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I cvtt(F a) { return _mm256_cvttps_epi32(a); }
  static F pow2i(I n) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23)); }
  // p * 2^n for integral n in [-126, 128]: the power split in two so that
  // 2^n never overflows the exponent field.
  static F ldexp(F p, F n) {
    const I ni = cvtt(n), half = shr32_1(ni);
    return mul(mul(p, pow2i(half)), pow2i(sub32(ni, half)));
  }
  static void storef(float* p, F v) { _mm256_storeu_ps(p, v); }
  static float hmax(F v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  // Lanes [0, n) loaded, the rest `fill`.
  static F load_partial(const float* p, int n, float fill) {
    alignas(32) float t[R];
    for (int i = 0; i < R; ++i) t[i] = i < n ? p[i] : fill;
    return _mm256_load_ps(t);
  }
  static void store_partial(float* p, F v, int n) { store(p, v, n); }
  static void store_h(void* p, F v) {
    _mm_storeu_si128(static_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  static F cvt(I a) { return _mm256_cvtepi32_ps(a); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F neg(F a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
  static F loadf(const float* p) { return _mm256_loadu_ps(p); }
  static F load_bf16(const void* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p))), 16));
  }
  static F load_h(const void* p) { return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
  // One f16 at p, widened into every lane.
  static F bcast_h(const void* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(h)));
  }
  static I load_u8x(const void* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(p))); }
  static I load_i8x(const void* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(p))); }
  static I and32(I a, int32_t m) { return _mm256_and_si256(a, _mm256_set1_epi32(m)); }
  static I shr32_4(I a) { return _mm256_srli_epi32(a, 4); }
  static I shr32_1(I a) { return _mm256_srai_epi32(a, 1); }
  static I sub32(I a, I b) { return _mm256_sub_epi32(a, b); }
  static F swap_pairs(F a) { return _mm256_permute_ps(a, 0xB1); }
  // r where x >= lim, else 0.
  static F zero_below(F r, F x, float lim) { return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(lim), _CMP_LT_OQ), r); }
  // r where x is finite (not +-inf or NaN), else v.
  static F select_finite(F r, F x, float v) {
    const F finite = _mm256_cmp_ps(_mm256_sub_ps(x, x), _mm256_setzero_ps(), _CMP_EQ_OQ);
    return _mm256_blendv_ps(_mm256_set1_ps(v), r, finite);
  }
  static void store(float* y, F v, int n) {
    if (n == R) {
      _mm256_storeu_ps(y, v);
    } else {
      alignas(32) float t[R];
      _mm256_store_ps(t, v);
      for (int i = 0; i < n; ++i) y[i] = t[i];
    }
  }
  static float hsum(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#ifndef CODEY_ZMM_TILE
#define CODEY_ZMM_TILE 8
#endif
struct Zmm {
  static constexpr int R = 16;
  static constexpr int kTile = CODEY_ZMM_TILE;  // tokens per matmul micro-kernel: 32 registers
  static constexpr bool kVnni = true;
  using I = __m512i;
  using F = __m512;

  static I load(const void* p) { return _mm512_loadu_si512(p); }
  static I c8(int v) { return _mm512_set1_epi8(static_cast<char>(v)); }
  static I set1(int32_t v) { return _mm512_set1_epi32(v); }
  static I zero() { return _mm512_setzero_si512(); }
  static I bcast(const void* p) { return _mm512_set1_epi32(load_i32(p)); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I or_(I a, I b) { return _mm512_or_si512(a, b); }
  static I xor_(I a, I b) { return _mm512_xor_si512(a, b); }
  template <int N>
  static I shr(I a) { return _mm512_srli_epi16(a, N); }
  template <int N>
  static I shl(I a) { return _mm512_slli_epi16(a, N); }
  static I shr_var(I a, int n) { return _mm512_srl_epi16(a, _mm_cvtsi32_si128(n)); }
  static I or_masked(I a, I b, I mask) { return _mm512_ternarylogic_epi32(a, b, mask, 0xF8); }
  static I or_if(I a, I x, I pattern, I val) {
    return _mm512_or_si512(a, _mm512_maskz_mov_epi8(_mm512_test_epi8_mask(x, pattern), val));
  }
  static I shuffle8(I table, I idx) { return _mm512_shuffle_epi8(table, idx); }
  static I bcast128(__m128i v) { return _mm512_broadcast_i32x4(v); }
  static I dpbusd(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }

  static F fzero() { return _mm512_setzero_ps(); }
  static F fset1(float v) { return _mm512_set1_ps(v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F fmax(F a, F b) { return _mm512_max_ps(a, b); }
  static F fmin(F a, F b) { return _mm512_min_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fnma(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  static F round_near(F a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I cvtt(F a) { return _mm512_cvttps_epi32(a); }
  static F pow2i(I n) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23)); }
  static F ldexp(F p, F n) { return _mm512_scalef_ps(p, n); }
  static void storef(float* p, F v) { _mm512_storeu_ps(p, v); }
  static float hmax(F v) { return _mm512_reduce_max_ps(v); }
  static F load_partial(const float* p, int n, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), static_cast<__mmask16>((1u << n) - 1), p);
  }
  static void store_partial(float* p, F v, int n) { store(p, v, n); }
  static void store_h(void* p, F v) {
    _mm256_storeu_si256(static_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  static F cvt(I a) { return _mm512_cvtepi32_ps(a); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F neg(F a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN))); }
  static F loadf(const float* p) { return _mm512_loadu_ps(p); }
  static F load_bf16(const void* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(static_cast<const __m256i*>(p))), 16));
  }
  static F load_h(const void* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p))); }
  static F bcast_h(const void* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(h)));
  }
  static I load_u8x(const void* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
  static I load_i8x(const void* p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
  static I and32(I a, int32_t m) { return _mm512_and_si512(a, _mm512_set1_epi32(m)); }
  static I shr32_4(I a) { return _mm512_srli_epi32(a, 4); }
  static I shr32_1(I a) { return _mm512_srai_epi32(a, 1); }
  static I sub32(I a, I b) { return _mm512_sub_epi32(a, b); }
  static F swap_pairs(F a) { return _mm512_permute_ps(a, 0xB1); }
  static F zero_below(F r, F x, float lim) {
    return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, _mm512_set1_ps(lim), _CMP_LT_OQ), _mm512_setzero_ps());
  }
  static F select_finite(F r, F x, float v) {
    return _mm512_mask_mov_ps(_mm512_set1_ps(v), _mm512_cmp_ps_mask(_mm512_sub_ps(x, x), _mm512_setzero_ps(), _CMP_EQ_OQ), r);
  }
  static void store(float* y, F v, int n) {
    if (n == R)
      _mm512_storeu_ps(y, v);
    else
      _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << n) - 1), v);
  }
  static float hsum(F v) { return _mm512_reduce_add_ps(v); }
};
#endif

}  // namespace
}  // namespace codey::kernels::x86
