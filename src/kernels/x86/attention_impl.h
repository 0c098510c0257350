// Flash-style attention for x86 over the KV cache as stored (tiled K, plain
// V, f16 / bf16 / f32 / q8_0), written once over the vector wrappers in
// simd.h (Ymm / Zmm). Include only from src/kernels/x86/avx2*.cc /
// avx512*.cc (internal linkage).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "codey/base.h"
#include "codey/kernels.h"
#include "kernels/ref/ref.h"
#include "kernels/x86/ops_impl.h"  // vexp
#include "kernels/x86/simd.h"

namespace codey::kernels::x86 {
namespace {

// Flash-style attention over the tiled K / plain V cache (KvView). Work
// items are (tile of up to kTileTokens consecutive tokens of one sequence, KV
// head, span of positions). An item's queries - its tokens x the query heads
// sharing that KV head, so grouped-query heads share every K and V load - walk
// the cache in blocks of kBlock positions with an online softmax per query
// (running max m, sum l, output rescaled when the max grows): no n_ctx x n_ctx
// matrix.
//
// Per block, scores are a small GEMM with positions along the vector lanes:
// K tiles hold one element of 16 positions contiguously, so each query
// element is broadcast and multiplied into R positions at once (no horizontal
// sums). P x V is another with the head dimension along the lanes (broadcast
// probability). A chunk of queries keeps its accumulators in registers for
// the whole block, and the cache is read in place (q8_0 decoded in
// registers). The next block's K and V lines are prefetched a few per step of
// the first chunk's loops: at depth, generation streams the cache from DRAM,
// and the hardware prefetchers stop at every 4 KiB page.
//
// Generation has one-token tiles and, with grouped-query attention, as few
// items as KV heads (2 for Qwen2.5-Coder): too few for the threads, so such a
// tile's positions are split into spans (multiples of kSplitPositions), each
// an item with its own partial softmax, merged in a second pass. The split
// depends on the shape only, never on the thread count: results do not change
// with threads.
//
// Batch invariance: a query's result does not depend on the other tokens of
// its batch either. Every query's softmax runs span by span (the spans of
// kSplitPositions positions above) and the spans are folded in position order
// by one function (fold_span), whether they were items of a split tile or
// stretches of one item; within a span, the per-query arithmetic does not
// depend on the chunk it was computed in. So a token verified among drafted
// tokens (speculative decoding) gets the bits it gets when decoded alone.
constexpr int64_t kTileTokens = 16;
constexpr int64_t kBlockTiles = 4;
constexpr int64_t kBlock = kBlockTiles * kKvTile;
constexpr int64_t kSplitPositions = 1024;
static_assert(kSplitPositions % kBlock == 0, "spans are whole blocks");

// Queries per chunk (accumulators in registers): up to 8 on AVX-512 (32
// registers), 4 on AVX2 (16).
template <class S>
constexpr int kMaxChunk = S::R == 16 ? 8 : 4;

// Loads of the cache as stored, to f32 (the values the reference decodes):
// k(tile, d, h) = element d of the R positions [h, h + R) of a K tile;
// v(row, col) = elements [col, col + R) of a V row. q8_0 is scale x quant in
// f32 (col and h are multiples of R, so a vector never straddles a block).
template <class S>
struct LoadF16 {
  static typename S::F k(const uint8_t* tile, int64_t d, int64_t h) { return S::load_h(tile + 2 * (d * kKvTile + h)); }
  static typename S::F v(const uint8_t* row, int64_t col) { return S::load_h(row + 2 * col); }
};
template <class S>
struct LoadBF16 {
  static typename S::F k(const uint8_t* tile, int64_t d, int64_t h) { return S::load_bf16(tile + 2 * (d * kKvTile + h)); }
  static typename S::F v(const uint8_t* row, int64_t col) { return S::load_bf16(row + 2 * col); }
};
template <class S>
struct LoadF32 {
  static typename S::F k(const uint8_t* tile, int64_t d, int64_t h) {
    return S::loadf(reinterpret_cast<const float*>(tile) + d * kKvTile + h);
  }
  static typename S::F v(const uint8_t* row, int64_t col) { return S::loadf(reinterpret_cast<const float*>(row) + col); }
};
template <class S>
struct LoadQ8_0 {
  static typename S::F k(const uint8_t* tile, int64_t d, int64_t h) {
    const auto ud = static_cast<uint64_t>(d);
    const uint8_t* blk = tile + (ud >> 5) * (kKvTile * 34);
    return S::mul(S::load_h(blk + 2 * h), S::cvt(S::load_i8x(blk + 2 * kKvTile + (ud & 31) * kKvTile + h)));
  }
  static typename S::F v(const uint8_t* row, int64_t col) {
    const auto uc = static_cast<uint64_t>(col);
    const uint8_t* blk = row + (uc >> 5) * 34;
    return S::mul(S::bcast_h(blk), S::cvt(S::load_i8x(blk + 2 + (uc & 31))));
  }
};

// A few cache lines of a contiguous range per step of a loop.
struct Prefetcher {
  const uint8_t* p = nullptr;
  const uint8_t* end = nullptr;
  int64_t per_step = 0;

  CODEY_ALWAYS_INLINE void step() {
    for (int64_t i = 0; i < per_step && p < end; ++i, p += 64) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
  }
  // Spreads [from, from + bytes) over `steps` calls.
  void arm(const uint8_t* from, size_t bytes, int64_t steps) {
    p = from;
    end = from + bytes;
    const auto lines = static_cast<int64_t>((bytes + 63) / 64);
    per_step = steps > 0 ? (lines + steps - 1) / steps : 0;
  }
};

// s[qi][t*16 ..) = sum_d q[qi][d] * K_t[d][..) for QC queries (row stride dk)
// over NT tiles (tile t at tiles[t]; s row stride kBlock).
template <class S, class L, int QC, int NT>
CODEY_ALWAYS_INLINE void scores_kernel(const float* q, int64_t dk, const uint8_t* const* tiles, float* s,
                                       Prefetcher& pf) {
  using F = typename S::F;
  constexpr int R = S::R, VT = static_cast<int>(kKvTile) / R, NV = NT * VT;
  F acc[QC][NV];
  for (int i = 0; i < QC; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = S::fzero();
  const uint8_t* tp[NT];
  for (int t = 0; t < NT; ++t) tp[t] = tiles[t];
  Prefetcher lpf = pf;  // a local copy stays in registers
  for (int64_t d = 0; d < dk; ++d) {
    lpf.step();
    F k[NV];
    for (int t = 0; t < NT; ++t)
      for (int h = 0; h < VT; ++h) k[t * VT + h] = L::k(tp[t], d, h * R);
    for (int i = 0; i < QC; ++i) {
      const F b = S::fset1(q[i * dk + d]);
      for (int v = 0; v < NV; ++v) acc[i][v] = S::fma(b, k[v], acc[i][v]);
    }
  }
  pf = lpf;
  for (int i = 0; i < QC; ++i)
    for (int v = 0; v < NV; ++v) S::storef(s + i * kBlock + v * R, acc[i][v]);
}

// o[qi][0, NV*R) = c[qi] * o[qi][..) + sum_{j in [jb, je)} p[qi][j] * V[j][..)
// for QC queries (p row stride kBlock, o row stride dv; V row j at
// v + j * v_row_bytes, this pass's columns from element col).
template <class S, class L, int QC, int NV>
CODEY_ALWAYS_INLINE void pv_kernel(const float* p, const uint8_t* v, size_t v_row_bytes, int64_t col, int64_t jb,
                                   int64_t je, const float* c, float* o, int64_t dv, Prefetcher& pf) {
  using F = typename S::F;
  constexpr int R = S::R;
  F acc[QC][NV];
  for (int i = 0; i < QC; ++i) {
    const F ci = S::fset1(c[i]);
    for (int u = 0; u < NV; ++u) acc[i][u] = S::mul(ci, S::loadf(o + i * dv + col + u * R));
  }
  Prefetcher lpf = pf;  // a local copy stays in registers
  for (int64_t j = jb; j < je; ++j) {
    lpf.step();
    const uint8_t* row = v + static_cast<size_t>(j) * v_row_bytes;
    F x[NV];
    for (int u = 0; u < NV; ++u) x[u] = L::v(row, col + u * R);
    for (int i = 0; i < QC; ++i) {
      const F b = S::fset1(p[i * kBlock + j]);
      for (int u = 0; u < NV; ++u) acc[i][u] = S::fma(b, x[u], acc[i][u]);
    }
  }
  pf = lpf;
  for (int i = 0; i < QC; ++i)
    for (int u = 0; u < NV; ++u) S::storef(o + i * dv + col + u * R, acc[i][u]);
}

// Tiles per scores call and vectors per P x V pass for a chunk of QC queries:
// as many as the registers hold next to the accumulators, so that a chunk of
// one query still has 4-8 independent FMA chains (8 on AVX-512).
template <class S, int QC>
constexpr int kScoreTiles = S::R == 16 ? (QC <= 2 ? 4 : 2) : (QC <= 2 ? 2 : 1);
template <class S, int QC>
constexpr int kPvVectors = S::R == 16 ? (QC == 1 ? 8 : QC <= 3 ? 4 : 2) : (QC <= 2 ? 4 : 2);

// One chunk of QC queries over a block: scores, softmax (by the caller's
// callback between the two), P x V.
template <class S, class L, int QC>
struct ChunkOps {
  static void scores(const float* q, int64_t dk, const uint8_t* const* tiles, float* s, Prefetcher& pf) {
    constexpr int NT = kScoreTiles<S, QC>;
    for (int t = 0; t < kBlockTiles; t += NT) scores_kernel<S, L, QC, NT>(q, dk, tiles + t, s + t * kKvTile, pf);
  }
  static void pv(const float* p, const uint8_t* v, size_t v_row_bytes, int64_t jb, int64_t je, const float* c, float* o,
                 int64_t dv, Prefetcher& pf) {
    constexpr int NV = kPvVectors<S, QC>;
    int64_t col = 0;
    for (; col + NV * S::R <= dv; col += NV * S::R) pv_kernel<S, L, QC, NV>(p, v, v_row_bytes, col, jb, je, c, o, dv, pf);
    for (; col < dv; col += S::R) pv_kernel<S, L, QC, 1>(p, v, v_row_bytes, col, jb, je, c, o, dv, pf);
  }
};

// Runtime chunk size -> instantiation (1 .. kMaxChunk<S>).
template <class S, class L, class Fn>
CODEY_ALWAYS_INLINE void with_chunk(int qc, Fn&& fn) {
  switch (qc) {
    case 1: return fn(ChunkOps<S, L, 1>{});
    case 2: return fn(ChunkOps<S, L, 2>{});
    case 3: return fn(ChunkOps<S, L, 3>{});
    case 4: return fn(ChunkOps<S, L, 4>{});
    default:
      if constexpr (kMaxChunk<S> == 8) {
        switch (qc) {
          case 5: return fn(ChunkOps<S, L, 5>{});
          case 6: return fn(ChunkOps<S, L, 6>{});
          case 7: return fn(ChunkOps<S, L, 7>{});
          case 8: return fn(ChunkOps<S, L, 8>{});
        }
      }
      CODEY_ASSERT(false && "query chunk out of range");
  }
}

struct AttnScratch {
  std::vector<float> q, o, s;       // [nq][dk], [nq][dv], [nq][kBlock]
  std::vector<float> m, c;          // [nq]: running maxima, rescale factors of the block
  std::vector<float> l;             // [nq][R]: running sums, by lane
  std::vector<int64_t> j0, j1;      // [nq]: valid positions of the block, relative to its start
  std::vector<float> fm, fl, fo;    // [nq], [nq], [nq][dv]: the spans folded so far (fold_span)
};

// Folds one span's partial softmax (max m, sum l, unnormalized output o[dv])
// into the result of the spans before it (max M, sum L, output O), spans in
// position order; the result is O / L. A span the query saw nothing of (m =
// -inf) changes nothing. Explicit fma: both callers compute the same bits.
inline void fold_span(float m, float l, const float* o, float& M, float& L, float* O, int64_t dv) {
  if (m == -INFINITY) return;
  const float mx = std::max(M, m);
  const float a = M == -INFINITY ? 0.0f : std::exp(M - mx), b = std::exp(m - mx);
  for (int64_t d = 0; d < dv; ++d) O[d] = std::fma(b, o[d], a * O[d]);
  L = std::fma(b, l, a * L);
  M = mx;
}

// Read in place of a K tile that no query of the block reads (it may lie past
// the cache's end): zeros, whose scores are masked.
inline const uint8_t* zero_tile() {
  alignas(64) static const uint8_t zeros[kKvTile * kMaxHeadDim * sizeof(float)] = {};
  return zeros;
}

struct AttnItem {
  int64_t tile, hkv;
  int64_t p_lo, p_hi;  // cache positions [p_lo, p_hi] this item reads
  int64_t part;        // first partial-result slot (one per query), -1: writes a.out itself
};

// Queries' attention window [lo, hi] of token t.
inline int64_t window_lo(const AttentionArgs& a, int64_t t) {
  return a.window > 0 ? std::max<int64_t>(0, a.pos[t] - a.window + 1) : int64_t{0};
}

// The online-softmax step of a chunk of qc queries over a block: scores
// s[i][vb, ve) (whole vectors; only [j0[i], j1[i]) are valid), running maxima
// m[i] and sums (lsum[i]: R lanes, added up at the end). Sets c[i] to the
// factor query i's output must be rescaled by and leaves p = exp(s - m) in s
// (0 outside the valid range). The maxima of the chunk are rescaled together:
// one vector exp for every query's factor.
template <class S>
inline void softmax_chunk(float* s, int qc, int64_t vb, int64_t ve, const int64_t* j0, const int64_t* j1,
                          float softcap, float* m, float* lsum, float* c) {
  constexpr int64_t R = S::R;
  static_assert(kMaxChunk<S> <= R, "one vector holds the chunk's maxima");
  alignas(64) float bmax[R];
  for (int i = 0; i < qc; ++i) {
    float* si = s + i * kBlock;
    if (j0[i] >= j1[i]) {  // nothing of this block for this query
      bmax[i] = -INFINITY;
      continue;
    }
    if (softcap > 0.0f)
      for (int64_t j = j0[i]; j < j1[i]; ++j) si[j] = softcap * std::tanh(si[j] / softcap);
    for (int64_t j = vb; j < j0[i]; ++j) si[j] = -INFINITY;
    for (int64_t j = j1[i]; j < ve; ++j) si[j] = -INFINITY;
    auto vmax = S::loadf(si + vb);
    for (int64_t j = vb + R; j < ve; j += R) vmax = S::fmax(vmax, S::loadf(si + j));
    bmax[i] = S::hmax(vmax);
  }
  // m' = max(m, block max), c = exp(m - m'); a query that has seen nothing
  // yet (m' = -inf) keeps c = 1 (its output and sum are still 0).
  const auto m_old = S::load_partial(m, qc, -INFINITY);
  const auto m_new = S::fmax(m_old, S::load_partial(bmax, qc, -INFINITY));
  const auto cf = S::select_finite(vexp<S>(S::sub(m_old, m_new)), m_new, 1.0f);
  S::store_partial(m, m_new, qc);
  S::store_partial(c, cf, qc);
  for (int i = 0; i < qc; ++i) {
    float* si = s + i * kBlock;
    if (j0[i] >= j1[i]) {
      std::fill(si + vb, si + ve, 0.0f);
      continue;
    }
    const auto vm = S::fset1(m[i]);
    auto vsum = S::fzero();
    for (int64_t j = vb; j < ve; j += R) {  // masked lanes give exp(-inf) = 0
      const auto e = vexp<S>(S::sub(S::loadf(si + j), vm));
      S::storef(si + j, e);
      vsum = S::add(vsum, e);
    }
    S::storef(lsum + i * R, S::fma(S::fset1(c[i]), S::loadf(lsum + i * R), vsum));
  }
}

// Runs one work item with element loads L: out rows (normalized) or partial
// slots of [m, l, o[dv]] per query.
template <class S, class L>
void attend_item(const AttentionArgs& a, const AttnItem& it, int64_t t0, int64_t t1, AttnScratch& sc, float* parts) {
  constexpr int64_t R = S::R;
  const int64_t group = a.n_head / a.n_head_kv, dk = a.head_dim_k, dv = a.head_dim_v;
  const int32_t seq = a.seq[t0];
  const int64_t nq = (t1 - t0) * group, hkv = it.hkv;
  const size_t k_tile_bytes = static_cast<size_t>(kKvTile) * a.k.pos_stride, v_row_bytes = a.v.pos_stride;
  // Chunks of queries of (nearly) equal size.
  const int64_t n_chunks = (nq + kMaxChunk<S> - 1) / kMaxChunk<S>;
  const int64_t chunk = (nq + n_chunks - 1) / n_chunks;
  float* qs = sc.q.data();
  float* os = sc.o.data();
  float* ss = sc.s.data();
  // The item's queries, pre-multiplied by the scale.
  for (int64_t qi = 0; qi < nq; ++qi) {
    const int64_t t = t0 + qi / group, h = hkv * group + qi % group;
    const float* q = a.q + t * a.q_stride + h * dk;
    for (int64_t d = 0; d < dk; ++d) qs[qi * dk + d] = q[d] * a.scale;
  }
  float* fo = sc.fo.data();
  std::fill_n(fo, nq * dv, 0.0f);
  std::fill_n(sc.fm.data(), nq, -INFINITY);
  std::fill_n(sc.fl.data(), nq, 0.0f);
  const auto begin_span = [&] {
    std::fill_n(os, nq * dv, 0.0f);
    std::fill_n(sc.m.data(), nq, -INFINITY);
    std::fill_n(sc.l.data(), nq * R, 0.0f);
  };
  const auto end_span = [&] {
    for (int64_t qi = 0; qi < nq; ++qi) {
      const auto i = static_cast<size_t>(qi);
      fold_span(sc.m[i], S::hsum(S::loadf(sc.l.data() + qi * R)), os + qi * dv, sc.fm[i], sc.fl[i], fo + qi * dv, dv);
    }
  };
  begin_span();
  int64_t span = it.p_lo / kSplitPositions;
  for (int64_t p0 = it.p_lo / kBlock * kBlock; p0 <= it.p_hi; p0 += kBlock) {
    if (p0 / kSplitPositions != span) {  // only items of tiles that were not split cross spans
      end_span();
      begin_span();
      span = p0 / kSplitPositions;
    }
    // Each query's valid positions in this block, and their union [jmin, jmax).
    int64_t jmin = kBlock, jmax = 0;
    for (int64_t qi = 0; qi < nq; ++qi) {
      const int64_t t = t0 + qi / group;
      const int64_t lo = std::max(it.p_lo, window_lo(a, t)), hi = std::min<int64_t>(it.p_hi, a.pos[t]);
      const int64_t j0 = std::clamp<int64_t>(lo - p0, 0, kBlock), j1 = std::clamp<int64_t>(hi + 1 - p0, 0, kBlock);
      sc.j0[static_cast<size_t>(qi)] = j0;
      sc.j1[static_cast<size_t>(qi)] = j1;
      if (j0 < j1) {
        jmin = std::min(jmin, j0);
        jmax = std::max(jmax, j1);
      }
    }
    if (jmin >= jmax) continue;
    // The block's K tiles (a zero tile for those no query reads: they may lie
    // past the cache's end) and V rows.
    const uint8_t* tiles[kBlockTiles];
    for (int64_t t = 0; t < kBlockTiles; ++t)
      tiles[t] = (t + 1) * kKvTile > jmin && t * kKvTile < jmax ? a.k.tile(seq, hkv, p0 + t * kKvTile) : zero_tile();
    const uint8_t* vrows = a.v.row(seq, hkv, p0);  // row j at vrows + j * v_row_bytes
    // The next block's lines, spread over the first chunk's loops.
    Prefetcher pf_k, pf_v, none;
    if (const int64_t next = p0 + kBlock; next <= it.p_hi) {
      const int64_t n_next = std::min(kBlock, it.p_hi + 1 - next);
      pf_k.arm(a.k.tile(seq, hkv, next), static_cast<size_t>((n_next + kKvTile - 1) / kKvTile) * k_tile_bytes, dk);
      pf_v.arm(a.v.row(seq, hkv, next), static_cast<size_t>(n_next) * a.v.pos_stride, jmax - jmin);
    }
    const int64_t vb = jmin / R * R, ve = (jmax + R - 1) / R * R;
    for (int64_t q0 = 0; q0 < nq; q0 += chunk) {
      const int qc = static_cast<int>(std::min(chunk, nq - q0));
      with_chunk<S, L>(qc, [&](auto ops) {
        ops.scores(qs + q0 * dk, dk, tiles, ss + q0 * kBlock, q0 == 0 ? pf_k : none);
        softmax_chunk<S>(ss + q0 * kBlock, qc, vb, ve, sc.j0.data() + q0, sc.j1.data() + q0, a.softcap, sc.m.data() + q0,
                         sc.l.data() + q0 * R, sc.c.data() + q0);
        ops.pv(ss + q0 * kBlock, vrows, v_row_bytes, jmin, jmax, sc.c.data() + q0, os + q0 * dv, dv,
               q0 == 0 ? pf_v : none);
      });
    }
  }
  if (parts) {  // one span of a split tile: its partial result, folded by the merge pass
    for (int64_t qi = 0; qi < nq; ++qi) {
      float* slot = parts + (it.part + qi) * (dv + 2);
      slot[0] = sc.m[static_cast<size_t>(qi)];
      slot[1] = S::hsum(S::loadf(sc.l.data() + qi * R));
      std::memcpy(slot + 2, os + qi * dv, static_cast<size_t>(dv) * sizeof(float));
    }
    return;
  }
  end_span();
  for (int64_t qi = 0; qi < nq; ++qi) {
    const int64_t t = t0 + qi / group, h = hkv * group + qi % group;
    const float* oi = fo + qi * dv;
    const float inv = 1.0f / sc.fl[static_cast<size_t>(qi)];
    float* out = a.out + t * a.out_stride + h * dv;
    for (int64_t d = 0; d < dv; ++d) out[d] = oi[d] * inv;
  }
}

template <class S>
void attention_impl(const AttentionArgs& a, ThreadPool& pool) {
  CODEY_ASSERT(a.head_dim_k <= kMaxHeadDim && a.head_dim_v <= kMaxHeadDim);
  CODEY_ASSERT(a.n_head_kv > 0 && a.n_head % a.n_head_kv == 0);
  CODEY_ASSERT(a.k.tiled && !a.v.tiled && a.k.type == a.v.type);
  CODEY_ASSERT(a.k.type == TensorType::kF16 || a.k.type == TensorType::kBF16 || a.k.type == TensorType::kF32 ||
               a.k.type == TensorType::kQ8_0);
  const int64_t group = a.n_head / a.n_head_kv, dk = a.head_dim_k, dv = a.head_dim_v;
  if (dv % S::R != 0) return ref_attention(a, pool);  // no model codey runs has such heads
  // Tiles: runs of consecutive tokens of one sequence (a decode batch of many
  // sequences gives one-token tiles), then the work items. Built without
  // allocating per call.
  thread_local std::vector<int64_t> tile_start;
  thread_local std::vector<AttnItem> items;
  thread_local std::vector<float> parts;
  tile_start.clear();
  items.clear();
  for (int64_t t = 0; t < a.n_tokens; ++t)
    if (t == 0 || a.seq[t] != a.seq[t - 1] || t - tile_start.back() >= kTileTokens) tile_start.push_back(t);
  const auto n_tiles = static_cast<int64_t>(tile_start.size());
  tile_start.push_back(a.n_tokens);
  int64_t n_slots = 0;
  bool any_split = false;
  for (int64_t tile = 0; tile < n_tiles; ++tile) {
    const int64_t t0 = tile_start[static_cast<size_t>(tile)], t1 = tile_start[static_cast<size_t>(tile) + 1];
    int64_t lo = INT64_MAX, hi = -1;
    for (int64_t t = t0; t < t1; ++t) {
      lo = std::min(lo, window_lo(a, t));
      hi = std::max<int64_t>(hi, a.pos[t]);
    }
    const bool split = t1 - t0 == 1 && hi + 1 - lo > kSplitPositions;
    any_split = any_split || split;
    for (int64_t hkv = 0; hkv < a.n_head_kv; ++hkv) {
      if (!split) {
        items.push_back({tile, hkv, lo, hi, -1});
        continue;
      }
      // Spans end at multiples of kSplitPositions (whole blocks).
      for (int64_t p = lo; p <= hi; p = (p / kSplitPositions + 1) * kSplitPositions) {
        items.push_back({tile, hkv, p, std::min(hi, (p / kSplitPositions + 1) * kSplitPositions - 1), n_slots});
        n_slots += group;
      }
    }
  }
  if (parts.size() < static_cast<size_t>(n_slots * (dv + 2))) parts.resize(static_cast<size_t>(n_slots * (dv + 2)));
  // Plain pointers for the workers: inside the lambdas the thread_local
  // names would be each worker's own.
  const int64_t* starts = tile_start.data();
  const AttnItem* item_list = items.data();
  const auto n_items = static_cast<int64_t>(items.size());
  float* part_data = parts.data();

  pool.parallel_for(n_items, 1, [&](int64_t i0, int64_t i1, int) {
    thread_local AttnScratch sc;
    const auto max_q = static_cast<size_t>(kTileTokens * group);
    const auto grow = [](auto& v, size_t n) {
      if (v.size() < n) v.resize(n);
    };
    grow(sc.q, max_q * static_cast<size_t>(dk));
    grow(sc.o, max_q * static_cast<size_t>(dv));
    grow(sc.s, max_q * static_cast<size_t>(kBlock));
    for (auto* v : {&sc.m, &sc.c, &sc.fm, &sc.fl}) grow(*v, max_q);
    grow(sc.fo, max_q * static_cast<size_t>(dv));
    grow(sc.l, max_q * S::R);
    for (auto* v : {&sc.j0, &sc.j1}) grow(*v, max_q);
    for (int64_t i = i0; i < i1; ++i) {
      const AttnItem& it = item_list[i];
      const int64_t t0 = starts[it.tile], t1 = starts[it.tile + 1];
      float* slots = it.part >= 0 ? part_data : nullptr;
      switch (a.k.type) {
        case TensorType::kF16: attend_item<S, LoadF16<S>>(a, it, t0, t1, sc, slots); break;
        case TensorType::kBF16: attend_item<S, LoadBF16<S>>(a, it, t0, t1, sc, slots); break;
        case TensorType::kQ8_0: attend_item<S, LoadQ8_0<S>>(a, it, t0, t1, sc, slots); break;
        default: attend_item<S, LoadF32<S>>(a, it, t0, t1, sc, slots); break;
      }
    }
  });
  if (!any_split) return;

  // Merge the spans of each split (tile, KV head), in span order.
  pool.parallel_for(n_items, 1, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      const AttnItem& first = item_list[i];
      // One merge per run of spans: the run's first item does it.
      if (first.part < 0 || (i > 0 && item_list[i - 1].part >= 0 && item_list[i - 1].tile == first.tile &&
                             item_list[i - 1].hkv == first.hkv))
        continue;
      int64_t n_spans = 1;
      while (i + n_spans < n_items && item_list[i + n_spans].tile == first.tile &&
             item_list[i + n_spans].hkv == first.hkv)
        ++n_spans;
      const int64_t t = starts[first.tile];
      for (int64_t g = 0; g < group; ++g) {
        const auto slot = [&](int64_t span) { return part_data + (first.part + span * group + g) * (dv + 2); };
        float* out = a.out + t * a.out_stride + (first.hkv * group + g) * dv;
        std::fill_n(out, dv, 0.0f);
        float m = -INFINITY, l = 0.0f;
        for (int64_t s = 0; s < n_spans; ++s) fold_span(slot(s)[0], slot(s)[1], slot(s) + 2, m, l, out, dv);
        const float inv = 1.0f / l;
        for (int64_t d = 0; d < dv; ++d) out[d] *= inv;
      }
    }
  });
}

}  // namespace
}  // namespace codey::kernels::x86
