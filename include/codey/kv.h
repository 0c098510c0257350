// The KV cache: keys and values of every layer for a fixed number of sequences
// (slots), each with room for n_ctx positions, stored as f16 (default) or q8_0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "codey/base.h"
#include "codey/kernels.h"
#include "codey/tensor.h"

namespace codey {

struct KvCacheParams {
  int64_t n_layer = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
  int64_t n_ctx = 0;  // positions per sequence (what the user chose, not the training context)
  int n_seq = 1;      // sequences (slots) decoded together
  TensorType type = TensorType::kF16;  // kF16, kQ8_0, kBF16 or kF32
};

// Layout: per layer, K and V each [n_seq][n_head_kv][positions] of `type`;
// position p of a sequence lives in cell p (positions are cell indices), so a
// head's history is contiguous for the attention kernel. V is plain rows; K is
// tiled: kernels::kKvTile positions per tile, stored transposed (the layout is
// in codey/kernels.h, KvView), its positions rounded up to whole tiles.
//
// Policy when a sequence is full: no silent context shift. Appending past
// n_ctx is refused with kResourceExhausted and the numbers; the caller decides
// (stop generating, truncate() and re-evaluate a shorter prompt, or resize()).
//
// Not thread-safe: one Context (one scheduler thread) owns a cache.
class KvCache {
 public:
  static Result<KvCache> create(const KvCacheParams& params);

  KvCache() = default;
  KvCache(KvCache&& other) noexcept;
  KvCache& operator=(KvCache&& other) noexcept;

  const KvCacheParams& params() const { return params_; }
  int64_t n_ctx() const { return params_.n_ctx; }
  int n_seq() const { return params_.n_seq; }
  TensorType type() const { return params_.type; }
  // Bytes allocated for keys and values (2 MiB pages, committed as the
  // positions of each layer, sequence and head reach them).
  size_t bytes() const { return bytes_; }
  static size_t bytes_for(const KvCacheParams& params);
  // What one more position costs (n_ctx ignored): for estimates that scale
  // with the context. bytes_for also counts K's rounding to whole tiles.
  static size_t bytes_per_position(const KvCacheParams& params);

  // Positions of `seq` held now (the next token goes to position seq_length).
  int64_t seq_length(int seq) const { return lengths_.at(static_cast<size_t>(seq)); }
  // Error unless `seq` is a valid slot that can take `n_new` more positions.
  Status check_room(int seq, int64_t n_new) const;
  // Marks positions [0, n) of seq as valid; n <= n_ctx. Called by the model
  // after it wrote the rows.
  void set_seq_length(int seq, int64_t n);
  void clear(int seq) { set_seq_length(seq, 0); }
  void clear_all();
  // Keeps the first n positions of seq (e.g. a shared prompt prefix).
  Status truncate(int seq, int64_t n);
  // Changes n_ctx keeping every sequence's rows (error if a sequence is
  // longer than the new size). For contexts that grow with their sequences.
  Status resize(int64_t n_ctx);

  // Writes position pos of (layer, seq, head) from rows already encoded in
  // the cache's type (as KernelTable::store_row writes them).
  void write(int64_t layer, int seq, int64_t head, int64_t pos, const uint8_t* k_row, const uint8_t* v_row);
  // Encodes k [head_dim_k] and v [head_dim_v] with kt.store_row and writes them.
  void store(const kernels::KernelTable& kt, int64_t layer, int seq, int64_t head, int64_t pos, const float* k,
             const float* v);
  kernels::KvView k_view(int64_t layer) const;
  kernels::KvView v_view(int64_t layer) const;

 private:
  void write_k(int64_t layer, int seq, int64_t head, int64_t pos, const uint8_t* row);

  KvCacheParams params_;
  int64_t k_positions_ = 0;  // n_ctx rounded up to whole tiles
  size_t k_row_bytes_ = 0, v_row_bytes_ = 0;
  size_t k_layer_bytes_ = 0, v_layer_bytes_ = 0;
  size_t bytes_ = 0;
  HugePageArena arena_;
  uint8_t* data_ = nullptr;  // in arena_: all K layers, then all V layers
  std::vector<int64_t> lengths_;
};

}  // namespace codey
