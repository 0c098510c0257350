// The tiled K layout (src/kernels/kv_layout.cc): rows land exactly where
// codey/kernels.h says, read back unchanged, and leave other slots alone.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "codey/kernels.h"

namespace codey::kernels {
namespace {

std::vector<uint8_t> pattern(size_t n, int salt) {
  std::vector<uint8_t> r(n);
  for (size_t i = 0; i < n; ++i) r[i] = static_cast<uint8_t>(i * 31 + static_cast<size_t>(salt) * 7 + 1);
  return r;
}

TEST(KvLayout, ElementTypesAreTransposed) {
  for (TensorType type : {TensorType::kF16, TensorType::kBF16, TensorType::kF32}) {
    SCOPED_TRACE(type_name(type));
    const int64_t n = 48;
    const size_t es = type == TensorType::kF32 ? 4 : 2, row = row_bytes(type, n);
    std::vector<uint8_t> tile(row * kKvTile, 0);
    const auto r = pattern(row, 5);
    write_tile_row(type, r.data(), n, tile.data(), 3);
    for (int64_t d = 0; d < n; ++d)
      for (size_t b = 0; b < es; ++b)
        ASSERT_EQ(tile[(static_cast<size_t>(d) * kKvTile + 3) * es + b], r[static_cast<size_t>(d) * es + b]) << d;
    // Nothing else was touched.
    size_t nonzero = 0;
    for (uint8_t x : tile) nonzero += x != 0;
    size_t want = 0;
    for (uint8_t x : r) want += x != 0;
    EXPECT_EQ(nonzero, want);
  }
}

TEST(KvLayout, Q8_0ScalesThenElementMajorQuants) {
  const int64_t n = 64;  // two blocks
  const size_t row = row_bytes(TensorType::kQ8_0, n);
  ASSERT_EQ(row, 68u);
  std::vector<uint8_t> tile(row * kKvTile, 0);
  const auto r = pattern(row, 9);
  write_tile_row(TensorType::kQ8_0, r.data(), n, tile.data(), kKvTile - 1);
  const size_t s = kKvTile - 1, T = kKvTile;
  for (size_t b = 0; b < 2; ++b) {
    const size_t blk = b * T * 34;
    EXPECT_EQ(tile[blk + 2 * s], r[b * 34]);
    EXPECT_EQ(tile[blk + 2 * s + 1], r[b * 34 + 1]);
    for (size_t d = 0; d < 32; ++d) ASSERT_EQ(tile[blk + 2 * T + d * T + s], r[b * 34 + 2 + d]) << b << " " << d;
  }
}

TEST(KvLayout, EverySlotReadsBack) {
  for (TensorType type : {TensorType::kF16, TensorType::kBF16, TensorType::kF32, TensorType::kQ8_0}) {
    SCOPED_TRACE(type_name(type));
    const int64_t n = 96;
    const size_t row = row_bytes(type, n);
    // Two tiles filled differently beforehand end up equal: every byte of a
    // full tile belongs to some row.
    std::vector<uint8_t> tile(row * kKvTile, 0x00), other(row * kKvTile, 0xFF), got(row);
    for (int64_t s = 0; s < kKvTile; ++s) {
      write_tile_row(type, pattern(row, static_cast<int>(s)).data(), n, tile.data(), s);
      write_tile_row(type, pattern(row, static_cast<int>(s)).data(), n, other.data(), s);
    }
    EXPECT_EQ(tile, other);
    for (int64_t s = 0; s < kKvTile; ++s) {
      read_tile_row(type, tile.data(), s, n, got.data());
      ASSERT_EQ(got, pattern(row, static_cast<int>(s))) << s;
    }
  }
}

TEST(KvLayout, ViewsAddressBothLayouts) {
  const int64_t n = 32, n_ctx = 40, tiles_ctx = 48;
  const size_t row = row_bytes(TensorType::kF16, n);
  std::vector<uint8_t> k(row * tiles_ctx * 2 * 3), v(row * n_ctx * 2 * 3), got(row);
  KvView kv{TensorType::kF16, k.data(), row * tiles_ctx * 2, row * tiles_ctx, row, true};
  KvView vv{TensorType::kF16, v.data(), row * n_ctx * 2, row * n_ctx, row, false};
  const auto r = pattern(row, 77);
  write_tile_row(TensorType::kF16, r.data(), n, const_cast<uint8_t*>(kv.tile(2, 1, 37)), 37 % kKvTile);
  std::memcpy(const_cast<uint8_t*>(vv.row(2, 1, 37)), r.data(), row);
  EXPECT_EQ(kv.tile(2, 1, 37), k.data() + 2 * row * tiles_ctx * 2 + row * tiles_ctx + 32 * row);
  read_kv_row(kv, 2, 1, 37, n, got.data());
  EXPECT_EQ(got, r);
  read_kv_row(vv, 2, 1, 37, n, got.data());
  EXPECT_EQ(got, r);
}

}  // namespace
}  // namespace codey::kernels
