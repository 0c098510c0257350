// KvCache: sizes, room checks and overflow errors, truncation, resizing that
// keeps rows, writes that read back from the tiled K and plain V layouts,
// refused types and head dims.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "codey/kv.h"

namespace codey {
namespace {

KvCacheParams params(TensorType type = TensorType::kF16, int64_t n_ctx = 8, int n_seq = 2) {
  KvCacheParams p;
  p.n_layer = 3;
  p.n_head_kv = 2;
  p.head_dim_k = 64;
  p.head_dim_v = 32;
  p.n_ctx = n_ctx;
  p.n_seq = n_seq;
  p.type = type;
  return p;
}

TEST(KvCacheTest, SizeAndViews) {
  auto kv = KvCache::create(params());
  ASSERT_TRUE(kv.has_value()) << kv.error().message;
  // 3 layers x 2 seqs x 2 heads x (K: 8 positions rounded up to a tile of 16
  // x 64, V: 8 x 32) f16
  EXPECT_EQ(kv->bytes(), 3u * 2 * 2 * (16 * 64 + 8 * 32) * 2);
  EXPECT_EQ(KvCache::bytes_for(params()), kv->bytes());
  EXPECT_EQ(KvCache::bytes_per_position(params()), 3u * 2 * 2 * (64 + 32) * 2);
  const auto k = kv->k_view(1), v = kv->v_view(1);
  EXPECT_TRUE(k.tiled);
  EXPECT_FALSE(v.tiled);
  EXPECT_EQ(k.pos_stride, 128u);
  EXPECT_EQ(k.head_stride, 128u * 16);
  EXPECT_EQ(k.seq_stride, 128u * 16 * 2);
  EXPECT_EQ(v.pos_stride, 64u);
  EXPECT_EQ(v.head_stride, 64u * 8);
  EXPECT_EQ(k.tile(1, 1, 15), k.tile(1, 1, 0));
  // Layers, K and V never overlap: the last K layer ends where V starts.
  EXPECT_EQ(kv->k_view(2).base(1, 1) + 128 * 16, kv->v_view(0).base(0, 0));
  EXPECT_EQ(kv->k_view(1).base(0, 0), kv->k_view(0).base(1, 1) + 128 * 16);
  auto q8 = KvCache::create(params(TensorType::kQ8_0));
  ASSERT_TRUE(q8.has_value());
  EXPECT_EQ(q8->k_view(0).pos_stride, 2u * 34);
}

// Every position written through the cache reads back the same bytes, for
// every type, whatever its slot in a tile.
TEST(KvCacheTest, WriteReadsBack) {
  for (TensorType type : {TensorType::kF16, TensorType::kQ8_0, TensorType::kBF16, TensorType::kF32}) {
    SCOPED_TRACE(type_name(type));
    auto kv = KvCache::create(params(type, 20));
    ASSERT_TRUE(kv.has_value()) << kv.error().message;
    const size_t kb = row_bytes(type, 64), vb = row_bytes(type, 32);
    auto pattern = [](size_t n, int salt) {
      std::vector<uint8_t> r(n);
      for (size_t i = 0; i < n; ++i) r[i] = static_cast<uint8_t>(i * 7 + salt * 13);
      return r;
    };
    for (int64_t l = 0; l < 3; ++l)
      for (int s = 0; s < 2; ++s)
        for (int64_t h = 0; h < 2; ++h)
          for (int64_t p = 0; p < 20; ++p) {
            const int salt = static_cast<int>(l * 1000 + s * 100 + h * 30 + p);
            kv->write(l, s, h, p, pattern(kb, salt).data(), pattern(vb, salt + 1).data());
          }
    std::vector<uint8_t> got(kb);
    for (int64_t l = 0; l < 3; ++l)
      for (int s = 0; s < 2; ++s)
        for (int64_t h = 0; h < 2; ++h)
          for (int64_t p = 0; p < 20; ++p) {
            const int salt = static_cast<int>(l * 1000 + s * 100 + h * 30 + p);
            kernels::read_kv_row(kv->k_view(l), s, h, p, 64, got.data());
            ASSERT_EQ(got, pattern(kb, salt)) << l << " " << s << " " << h << " " << p;
            ASSERT_EQ(0, std::memcmp(kv->v_view(l).row(s, h, p), pattern(vb, salt + 1).data(), vb));
          }
  }
}

// store() encodes with the kernel table: what it writes decodes to the input
// (f32 exactly).
TEST(KvCacheTest, StoreEncodes) {
  auto kv = KvCache::create(params(TensorType::kF32, 20));
  ASSERT_TRUE(kv.has_value());
  std::vector<float> k(64), v(32), back(64);
  for (size_t i = 0; i < k.size(); ++i) k[i] = 0.25f * static_cast<float>(i) - 3.0f;
  for (size_t i = 0; i < v.size(); ++i) v[i] = -0.5f * static_cast<float>(i);
  kv->store(kernels::kernels(), 2, 1, 1, 17, k.data(), v.data());
  kernels::read_kv_row(kv->k_view(2), 1, 1, 17, 64, reinterpret_cast<uint8_t*>(back.data()));
  EXPECT_EQ(back, k);
  EXPECT_EQ(0, std::memcmp(kv->v_view(2).row(1, 1, 17), v.data(), 32 * sizeof(float)));
}

TEST(KvCacheTest, RoomAndOverflow) {
  auto kv = KvCache::create(params());
  ASSERT_TRUE(kv.has_value());
  EXPECT_TRUE(kv->check_room(0, 8).has_value());
  auto r = kv->check_room(0, 9);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(r.error().message.find("would hold 9 tokens"), std::string::npos) << r.error().message;
  kv->set_seq_length(1, 6);
  EXPECT_TRUE(kv->check_room(1, 2).has_value());
  EXPECT_FALSE(kv->check_room(1, 3).has_value());
  EXPECT_FALSE(kv->check_room(2, 1).has_value());   // no slot 2
  EXPECT_FALSE(kv->check_room(-1, 1).has_value());
  EXPECT_TRUE(kv->truncate(1, 4).has_value());
  EXPECT_EQ(kv->seq_length(1), 4);
  EXPECT_FALSE(kv->truncate(1, 5).has_value());  // cannot grow by truncating
  kv->clear_all();
  EXPECT_EQ(kv->seq_length(1), 0);
}

TEST(KvCacheTest, ResizeKeepsRows) {
  auto kv = KvCache::create(params(TensorType::kF16, 4));
  ASSERT_TRUE(kv.has_value());
  auto row = [](size_t n, int64_t l, int s, int64_t h, int64_t p, int extra) {
    return std::vector<uint8_t>(n, static_cast<uint8_t>(l * 40 + s * 20 + h * 10 + p + extra));
  };
  for (int64_t l = 0; l < 3; ++l)
    for (int s = 0; s < 2; ++s)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t p = 0; p < 3; ++p) kv->write(l, s, h, p, row(128, l, s, h, p, 0).data(), row(64, l, s, h, p, 100).data());
  kv->set_seq_length(0, 3);
  kv->set_seq_length(1, 3);
  ASSERT_TRUE(kv->resize(40).has_value());
  EXPECT_EQ(kv->n_ctx(), 40);
  EXPECT_EQ(kv->seq_length(1), 3);
  std::vector<uint8_t> got(128);
  for (int64_t l = 0; l < 3; ++l)
    for (int s = 0; s < 2; ++s)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t p = 0; p < 3; ++p) {
          kernels::read_kv_row(kv->k_view(l), s, h, p, 64, got.data());
          EXPECT_EQ(got, row(128, l, s, h, p, 0));
          EXPECT_EQ(kv->v_view(l).row(s, h, p)[63], static_cast<uint8_t>(l * 40 + s * 20 + h * 10 + p + 100));
        }
  EXPECT_FALSE(kv->resize(2).has_value());  // sequences hold 3
}

TEST(KvCacheTest, RefusesBadParams) {
  auto bad_type = KvCache::create(params(TensorType::kQ4_K));
  ASSERT_FALSE(bad_type.has_value());
  EXPECT_EQ(bad_type.error().code, ErrorCode::kUnsupported);
  KvCacheParams p = params(TensorType::kQ8_0);
  p.head_dim_v = 48;  // not a multiple of the q8_0 block
  auto bad_dim = KvCache::create(p);
  ASSERT_FALSE(bad_dim.has_value());
  EXPECT_NE(bad_dim.error().message.find("multiples of 32"), std::string::npos) << bad_dim.error().message;
  p = params();
  p.head_dim_v = 48;  // fine for f16
  EXPECT_TRUE(KvCache::create(p).has_value());
  EXPECT_FALSE(KvCache::create(params(TensorType::kF16, 0)).has_value());
  EXPECT_FALSE(KvCache::create(params(TensorType::kF16, 8, 0)).has_value());
  p = params();
  p.head_dim_k = kernels::kMaxHeadDim + 64;
  auto too_big = KvCache::create(p);
  ASSERT_FALSE(too_big.has_value());
  EXPECT_EQ(too_big.error().code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace codey
