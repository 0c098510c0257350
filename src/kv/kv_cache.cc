// KvCache: one allocation (2 MiB pages) holding K tiles and V rows for every layer,
// sequence, head and position; bookkeeping of sequence lengths.
#include "codey/kv.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace codey {
namespace {

struct Layout {
  int64_t k_positions;
  size_t k_row, v_row, k_layer, v_layer, total;
};

int64_t whole_tiles(int64_t n) { return (n + kernels::kKvTile - 1) / kernels::kKvTile * kernels::kKvTile; }

Layout layout_for(const KvCacheParams& p) {
  Layout l;
  l.k_positions = whole_tiles(p.n_ctx);
  l.k_row = row_bytes(p.type, p.head_dim_k);
  l.v_row = row_bytes(p.type, p.head_dim_v);
  const size_t heads = static_cast<size_t>(p.n_seq) * static_cast<size_t>(p.n_head_kv);
  l.k_layer = heads * static_cast<size_t>(l.k_positions) * l.k_row;
  l.v_layer = heads * static_cast<size_t>(p.n_ctx) * l.v_row;
  l.total = static_cast<size_t>(p.n_layer) * (l.k_layer + l.v_layer);
  return l;
}

}  // namespace

KvCache::KvCache(KvCache&& other) noexcept { *this = std::move(other); }

KvCache& KvCache::operator=(KvCache&& other) noexcept {
  if (this == &other) return *this;
  params_ = other.params_;
  k_positions_ = other.k_positions_;
  k_row_bytes_ = other.k_row_bytes_;
  v_row_bytes_ = other.v_row_bytes_;
  k_layer_bytes_ = other.k_layer_bytes_;
  v_layer_bytes_ = other.v_layer_bytes_;
  bytes_ = other.bytes_;
  arena_ = std::move(other.arena_);
  data_ = std::exchange(other.data_, nullptr);
  lengths_ = std::move(other.lengths_);
  return *this;
}

size_t KvCache::bytes_for(const KvCacheParams& params) { return layout_for(params).total; }

size_t KvCache::bytes_per_position(const KvCacheParams& p) {
  return static_cast<size_t>(p.n_layer) * static_cast<size_t>(p.n_seq) * static_cast<size_t>(p.n_head_kv) *
         (row_bytes(p.type, p.head_dim_k) + row_bytes(p.type, p.head_dim_v));
}

Result<KvCache> KvCache::create(const KvCacheParams& p) {
  if (p.type != TensorType::kF16 && p.type != TensorType::kQ8_0 && p.type != TensorType::kF32 &&
      p.type != TensorType::kBF16)
    return make_error(ErrorCode::kUnsupported, "KV cache type {} is not supported (use f16, bf16, q8_0 or f32)", type_name(p.type));
  if (p.n_layer <= 0 || p.n_head_kv <= 0 || p.head_dim_k <= 0 || p.head_dim_v <= 0)
    return make_error(ErrorCode::kInvalidArgument, "KV cache needs positive layers, heads and head dims");
  if (p.head_dim_k > kernels::kMaxHeadDim || p.head_dim_v > kernels::kMaxHeadDim)
    return make_error(ErrorCode::kUnsupported, "KV cache head dims {} / {} exceed the largest supported, {}", p.head_dim_k,
                      p.head_dim_v, kernels::kMaxHeadDim);
  if (p.n_ctx <= 0) return make_error(ErrorCode::kInvalidArgument, "context size must be positive, got {}", p.n_ctx);
  if (p.n_seq <= 0) return make_error(ErrorCode::kInvalidArgument, "sequence count must be positive, got {}", p.n_seq);
  const int64_t block = type_traits(p.type).block_size;
  if (p.head_dim_k % block != 0 || p.head_dim_v % block != 0)
    return make_error(ErrorCode::kUnsupported, "KV cache type {} needs head dims that are multiples of {}, got {} and {}",
                      type_name(p.type), block, p.head_dim_k, p.head_dim_v);
  KvCache kv;
  kv.params_ = p;
  const Layout l = layout_for(p);
  kv.k_positions_ = l.k_positions;
  kv.k_row_bytes_ = l.k_row;
  kv.v_row_bytes_ = l.v_row;
  kv.k_layer_bytes_ = l.k_layer;
  kv.v_layer_bytes_ = l.v_layer;
  kv.bytes_ = l.total;
  // 2 MiB pages: at depth, generation streams the whole cache every token,
  // and with 4 KiB pages the TLB misses and the hardware prefetchers' stops at
  // every page cost deepseek-coder-1.3b at 8192 positions 15% of its speed.
  // The price: the first position written into a (layer, sequence, head)
  // region commits its first 2 MiB, so a short cache is committed at once
  // (the memory budget counts bytes() in full anyway).
  uint8_t* mem = kv.arena_.allocate(std::max<size_t>(l.total, 1));
  if (!mem)
    return make_error(ErrorCode::kResourceExhausted, "cannot allocate {} for the KV cache ({} positions x {} sequences)",
                      format_bytes(l.total), p.n_ctx, p.n_seq);
  kv.data_ = mem;
  kv.lengths_.assign(static_cast<size_t>(p.n_seq), 0);
  return kv;
}

Status KvCache::check_room(int seq, int64_t n_new) const {
  if (seq < 0 || seq >= params_.n_seq)
    return make_error(ErrorCode::kInvalidArgument, "sequence id {} is out of range (the context has {} sequences)", seq,
                      params_.n_seq);
  const int64_t need = lengths_[static_cast<size_t>(seq)] + n_new;
  if (need > params_.n_ctx)
    return make_error(ErrorCode::kResourceExhausted,
                      "context full: sequence {} would hold {} tokens, but the context has room for {} (raise --ctx)",
                      seq, need, params_.n_ctx);
  return {};
}

void KvCache::set_seq_length(int seq, int64_t n) {
  CODEY_ASSERT(seq >= 0 && seq < params_.n_seq);
  CODEY_ASSERT(n >= 0 && n <= params_.n_ctx);
  lengths_[static_cast<size_t>(seq)] = n;
}

void KvCache::clear_all() {
  for (auto& l : lengths_) l = 0;
}

Status KvCache::truncate(int seq, int64_t n) {
  if (seq < 0 || seq >= params_.n_seq)
    return make_error(ErrorCode::kInvalidArgument, "sequence id {} is out of range (the context has {} sequences)", seq,
                      params_.n_seq);
  if (n < 0 || n > lengths_[static_cast<size_t>(seq)])
    return make_error(ErrorCode::kInvalidArgument, "cannot truncate sequence {} of {} tokens to {}", seq,
                      lengths_[static_cast<size_t>(seq)], n);
  lengths_[static_cast<size_t>(seq)] = n;
  return {};
}

Status KvCache::resize(int64_t n_ctx) {
  for (int s = 0; s < params_.n_seq; ++s)
    if (lengths_[static_cast<size_t>(s)] > n_ctx)
      return make_error(ErrorCode::kInvalidArgument, "cannot shrink the context to {}: sequence {} holds {} tokens",
                        n_ctx, s, lengths_[static_cast<size_t>(s)]);
  KvCacheParams p = params_;
  p.n_ctx = n_ctx;
  auto next = create(p);
  if (!next) return std::unexpected(std::move(next.error()));
  for (int64_t l = 0; l < p.n_layer; ++l)
    for (int s = 0; s < p.n_seq; ++s)
      for (int64_t h = 0; h < p.n_head_kv; ++h) {
        const int64_t n = lengths_[static_cast<size_t>(s)];
        if (n == 0) continue;
        // Whole tiles of K (the last one partly written), rows of V.
        std::memcpy(const_cast<uint8_t*>(next->k_view(l).base(s, h)), k_view(l).base(s, h),
                    static_cast<size_t>(whole_tiles(n)) * k_row_bytes_);
        std::memcpy(const_cast<uint8_t*>(next->v_view(l).base(s, h)), v_view(l).base(s, h),
                    static_cast<size_t>(n) * v_row_bytes_);
      }
  next->lengths_ = lengths_;
  *this = std::move(*next);
  return {};
}

kernels::KvView KvCache::k_view(int64_t layer) const {
  kernels::KvView v;
  v.type = params_.type;
  v.data = data_ + static_cast<size_t>(layer) * k_layer_bytes_;
  v.pos_stride = k_row_bytes_;
  v.head_stride = k_row_bytes_ * static_cast<size_t>(k_positions_);
  v.seq_stride = v.head_stride * static_cast<size_t>(params_.n_head_kv);
  v.tiled = true;
  return v;
}

kernels::KvView KvCache::v_view(int64_t layer) const {
  kernels::KvView v;
  v.type = params_.type;
  v.data = data_ + static_cast<size_t>(params_.n_layer) * k_layer_bytes_ + static_cast<size_t>(layer) * v_layer_bytes_;
  v.pos_stride = v_row_bytes_;
  v.head_stride = v_row_bytes_ * static_cast<size_t>(params_.n_ctx);
  v.seq_stride = v.head_stride * static_cast<size_t>(params_.n_head_kv);
  return v;
}

void KvCache::write_k(int64_t layer, int seq, int64_t head, int64_t pos, const uint8_t* row) {
  CODEY_DASSERT(pos >= 0 && pos < params_.n_ctx);
  kernels::write_tile_row(params_.type, row, params_.head_dim_k, const_cast<uint8_t*>(k_view(layer).tile(seq, head, pos)),
                          pos % kernels::kKvTile);
}

void KvCache::write(int64_t layer, int seq, int64_t head, int64_t pos, const uint8_t* k_row, const uint8_t* v_row) {
  write_k(layer, seq, head, pos, k_row);
  std::memcpy(const_cast<uint8_t*>(v_view(layer).row(seq, head, pos)), v_row, v_row_bytes_);
}

void KvCache::store(const kernels::KernelTable& kt, int64_t layer, int seq, int64_t head, int64_t pos, const float* k,
                    const float* v) {
  alignas(64) uint8_t k_row[kernels::kMaxHeadDim * sizeof(float)];  // head dims checked by create()
  kt.store_row(params_.type, k, k_row, params_.head_dim_k);
  write_k(layer, seq, head, pos, k_row);
  kt.store_row(params_.type, v, const_cast<uint8_t*>(v_view(layer).row(seq, head, pos)), params_.head_dim_v);
}

}  // namespace codey
