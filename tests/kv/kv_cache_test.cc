// KvCache: sizes, room checks and overflow errors, truncation, resizing that
// keeps rows, refused types and head dims.
#include <gtest/gtest.h>

#include <cstring>

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
  // 3 layers x 2 seqs x 2 heads x 8 positions x (64 + 32) f16
  EXPECT_EQ(kv->bytes(), 3u * 2 * 2 * 8 * (64 + 32) * 2);
  EXPECT_EQ(KvCache::bytes_for(params()), kv->bytes());
  const auto k = kv->k_view(1);
  EXPECT_EQ(k.pos_stride, 128u);
  EXPECT_EQ(k.head_stride, 128u * 8);
  EXPECT_EQ(k.seq_stride, 128u * 8 * 2);
  EXPECT_EQ(kv->k_row(1, 1, 1, 3), k.row(1, 1, 3));
  // Rows of different layers / K and V never overlap.
  EXPECT_NE(kv->k_row(0, 1, 1, 7) + 128, kv->k_row(1, 0, 0, 0) + 1);
  EXPECT_EQ(kv->k_row(2, 1, 1, 7) + 128, kv->v_row(0, 0, 0, 0));
  auto q8 = KvCache::create(params(TensorType::kQ8_0));
  ASSERT_TRUE(q8.has_value());
  EXPECT_EQ(q8->k_view(0).pos_stride, 2u * 34);
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
  for (int64_t l = 0; l < 3; ++l)
    for (int s = 0; s < 2; ++s)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t p = 0; p < 3; ++p) {
          std::memset(kv->k_row(l, s, h, p), static_cast<int>(l * 40 + s * 20 + h * 10 + p), 128);
          std::memset(kv->v_row(l, s, h, p), static_cast<int>(l * 40 + s * 20 + h * 10 + p + 100), 64);
        }
  kv->set_seq_length(0, 3);
  kv->set_seq_length(1, 3);
  ASSERT_TRUE(kv->resize(16).has_value());
  EXPECT_EQ(kv->n_ctx(), 16);
  EXPECT_EQ(kv->seq_length(1), 3);
  for (int64_t l = 0; l < 3; ++l)
    for (int s = 0; s < 2; ++s)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t p = 0; p < 3; ++p) {
          EXPECT_EQ(kv->k_row(l, s, h, p)[127], static_cast<uint8_t>(l * 40 + s * 20 + h * 10 + p));
          EXPECT_EQ(kv->v_row(l, s, h, p)[63], static_cast<uint8_t>(l * 40 + s * 20 + h * 10 + p + 100));
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
}

}  // namespace
}  // namespace codey
