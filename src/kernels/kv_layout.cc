// The tiled (transposed) layout of K rows in the KV cache (codey/kernels.h,
// KvView): byte moves between an encoded row and its slot of a tile.
#include <cstring>

#include "codey/base.h"
#include "codey/kernels.h"

namespace codey::kernels {
namespace {

// Calls f(row_offset, tile_offset, bytes) for every piece of the row.
template <class F>
void for_each_piece(TensorType type, int64_t n, int64_t slot, F&& f) {
  CODEY_ASSERT(slot >= 0 && slot < kKvTile);
  const auto s = static_cast<size_t>(slot);
  constexpr auto tile = static_cast<size_t>(kKvTile);
  const TypeTraits& tr = type_traits(type);
  if (type == TensorType::kQ8_0) {  // per block: an f16 scale, then block_size int8
    const auto bs = static_cast<size_t>(tr.block_size);
    CODEY_ASSERT(n % tr.block_size == 0);
    for (size_t b = 0; b < static_cast<size_t>(n) / bs; ++b) {
      const size_t row_block = b * tr.block_bytes, tile_block = b * tile * tr.block_bytes;
      f(row_block, tile_block + 2 * s, size_t{2});
      for (size_t d = 0; d < bs; ++d) f(row_block + 2 + d, tile_block + 2 * tile + d * tile + s, size_t{1});
    }
    return;
  }
  CODEY_ASSERT(type == TensorType::kF16 || type == TensorType::kBF16 || type == TensorType::kF32);
  const size_t es = tr.block_bytes;  // one element per block
  for (size_t d = 0; d < static_cast<size_t>(n); ++d) f(d * es, (d * tile + s) * es, es);
}

}  // namespace

void write_tile_row(TensorType type, const uint8_t* row, int64_t n, uint8_t* tile, int64_t slot) {
  for_each_piece(type, n, slot, [&](size_t r, size_t t, size_t len) { std::memcpy(tile + t, row + r, len); });
}

void read_tile_row(TensorType type, const uint8_t* tile, int64_t slot, int64_t n, uint8_t* row) {
  for_each_piece(type, n, slot, [&](size_t r, size_t t, size_t len) { std::memcpy(row + r, tile + t, len); });
}

void read_kv_row(const KvView& view, int32_t seq, int64_t head, int64_t pos, int64_t n, uint8_t* row) {
  if (view.tiled) {
    read_tile_row(view.type, view.tile(seq, head, pos), pos % kKvTile, n, row);
    return;
  }
  std::memcpy(row, view.row(seq, head, pos), row_bytes(view.type, n));
}

}  // namespace codey::kernels
