// Known blocks, bytes set by hand, values computed by hand from the ggml
// layouts: one test per dequantizable type (tests src/quant/dequantize.cc).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "codey/quant.h"
#include "codey/quant_blocks.h"
#include "codey/tensor.h"

namespace codey {
namespace {

std::vector<float> decode(TensorType t, const std::vector<uint8_t>& bytes) {
  const auto& tr = type_traits(t);
  EXPECT_EQ(bytes.size() % tr.block_bytes, 0u);
  const int64_t n = static_cast<int64_t>(bytes.size() / tr.block_bytes) * tr.block_size;
  std::vector<float> out(static_cast<size_t>(n), -999.0f);
  dequantize_row(t, bytes.data(), out.data(), n);
  return out;
}

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

TEST(Dequantize, TableMatchesBlockStructs) {
  using namespace quant;
  EXPECT_EQ(type_traits(TensorType::kQ4_0).block_bytes, sizeof(BlockQ4_0));
  EXPECT_EQ(type_traits(TensorType::kQ4_1).block_bytes, sizeof(BlockQ4_1));
  EXPECT_EQ(type_traits(TensorType::kQ5_0).block_bytes, sizeof(BlockQ5_0));
  EXPECT_EQ(type_traits(TensorType::kQ5_1).block_bytes, sizeof(BlockQ5_1));
  EXPECT_EQ(type_traits(TensorType::kQ8_0).block_bytes, sizeof(BlockQ8_0));
  EXPECT_EQ(type_traits(TensorType::kQ2_K).block_bytes, sizeof(BlockQ2_K));
  EXPECT_EQ(type_traits(TensorType::kQ3_K).block_bytes, sizeof(BlockQ3_K));
  EXPECT_EQ(type_traits(TensorType::kQ4_K).block_bytes, sizeof(BlockQ4_K));
  EXPECT_EQ(type_traits(TensorType::kQ5_K).block_bytes, sizeof(BlockQ5_K));
  EXPECT_EQ(type_traits(TensorType::kQ6_K).block_bytes, sizeof(BlockQ6_K));
  EXPECT_EQ(type_traits(TensorType::kQ8_K).block_bytes, sizeof(BlockQ8_K));
  EXPECT_EQ(type_traits(TensorType::kIQ4_NL).block_bytes, sizeof(BlockIQ4_NL));
  EXPECT_EQ(type_traits(TensorType::kIQ4_XS).block_bytes, sizeof(BlockIQ4_XS));
  for (TensorType t : {TensorType::kF32, TensorType::kF16, TensorType::kBF16, TensorType::kQ4_0, TensorType::kQ4_1,
                       TensorType::kQ5_0, TensorType::kQ5_1, TensorType::kQ8_0, TensorType::kQ2_K, TensorType::kQ3_K,
                       TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K, TensorType::kQ8_K,
                       TensorType::kIQ4_NL, TensorType::kIQ4_XS}) {
    EXPECT_TRUE(type_traits(t).dequantizable) << type_name(t);
    EXPECT_TRUE(type_traits(t).quantizable) << type_name(t);
  }
  EXPECT_FALSE(type_traits(TensorType::kIQ2_XXS).dequantizable);
}

TEST(Dequantize, F32F16BF16) {
  std::vector<uint8_t> f32(8);
  const float a = 1.5f, b = -2.0f;
  std::memcpy(f32.data(), &a, 4);
  std::memcpy(f32.data() + 4, &b, 4);
  EXPECT_EQ(decode(TensorType::kF32, f32), (std::vector<float>{1.5f, -2.0f}));

  std::vector<uint8_t> f16(10);
  put16(f16, 0, 0x3C00);  // 1
  put16(f16, 2, 0xC000);  // -2
  put16(f16, 4, 0x7BFF);  // 65504, largest half
  put16(f16, 6, 0x0001);  // 2^-24, smallest subnormal
  put16(f16, 8, 0x3555);  // exponent 13, mantissa 0x155: 2^-2 * (1 + 341/1024)
  const auto h = decode(TensorType::kF16, f16);
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], 65504.0f);
  EXPECT_EQ(h[3], 5.9604644775390625e-8f);
  EXPECT_EQ(h[4], 0.25f * (1.0f + 341.0f / 1024.0f));

  std::vector<uint8_t> bf(4);
  put16(bf, 0, 0x3F80);  // 1
  put16(bf, 2, 0xC040);  // -3
  EXPECT_EQ(decode(TensorType::kBF16, bf), (std::vector<float>{1.0f, -3.0f}));
}

TEST(Dequantize, Q4_0) {
  std::vector<uint8_t> b(18, 0);
  put16(b, 0, 0x3800);  // d = 0.5
  b[2 + 0] = 0x1F;      // el 0: 15-8 = 7, el 16: 1-8 = -7
  b[2 + 5] = 0x80;      // el 5: 0-8, el 21: 8-8
  const auto y = decode(TensorType::kQ4_0, b);
  EXPECT_EQ(y[0], 3.5f);
  EXPECT_EQ(y[16], -3.5f);
  EXPECT_EQ(y[5], -4.0f);
  EXPECT_EQ(y[21], 0.0f);
  EXPECT_EQ(y[1], -4.0f);  // zero byte: both nibbles -8
}

TEST(Dequantize, Q4_1) {
  std::vector<uint8_t> b(20, 0);
  put16(b, 0, 0x3C00);  // d = 1
  put16(b, 2, 0xBC00);  // m = -1
  b[4 + 2] = 0xA3;      // el 2: 3, el 18: 10
  const auto y = decode(TensorType::kQ4_1, b);
  EXPECT_EQ(y[2], 2.0f);
  EXPECT_EQ(y[18], 9.0f);
  EXPECT_EQ(y[0], -1.0f);
}

TEST(Dequantize, Q5_0) {
  std::vector<uint8_t> b(22, 0);
  put16(b, 0, 0x4000);  // d = 2
  b[2] = 0x01;          // qh bit 0 (el 0)
  b[4] = 0x02;          // qh bit 17 (el 17)
  b[6 + 0] = 0x21;      // el 0: 1|16 = 17, el 16: 2
  b[6 + 1] = 0x43;      // el 1: 3, el 17: 4|16 = 20
  const auto y = decode(TensorType::kQ5_0, b);
  EXPECT_EQ(y[0], 2.0f);     // (17-16)*2
  EXPECT_EQ(y[16], -28.0f);  // (2-16)*2
  EXPECT_EQ(y[1], -26.0f);   // (3-16)*2
  EXPECT_EQ(y[17], 8.0f);    // (20-16)*2
}

TEST(Dequantize, Q5_1) {
  std::vector<uint8_t> b(24, 0);
  put16(b, 0, 0x3800);  // d = 0.5
  put16(b, 2, 0x4200);  // m = 3
  b[7] = 0x80;          // qh bit 31 (el 31)
  b[8 + 15] = 0xF0;     // el 15: 0, el 31: 15|16
  const auto y = decode(TensorType::kQ5_1, b);
  EXPECT_EQ(y[15], 3.0f);
  EXPECT_EQ(y[31], 18.5f);  // 31*0.5 + 3
}

TEST(Dequantize, Q8_0) {
  std::vector<uint8_t> b(34, 0);
  put16(b, 0, 0x3400);  // d = 0.25
  b[2] = 0x80;          // -128
  b[2 + 31] = 0x7F;     // 127
  const auto y = decode(TensorType::kQ8_0, b);
  EXPECT_EQ(y[0], -32.0f);
  EXPECT_EQ(y[31], 31.75f);
  EXPECT_EQ(y[1], 0.0f);
}

TEST(Dequantize, Q2_K) {
  // scales[16] qs[64] d dmin
  std::vector<uint8_t> b(84, 0);
  put16(b, 80, 0x3C00);  // d = 1
  put16(b, 82, 0x3800);  // dmin = 0.5
  b[0] = 0x21;           // sub 0: scale 1, min 2
  b[2] = 0x13;           // sub 2: scale 3, min 1
  b[4] = 0x05;           // sub 4: scale 5, min 0
  b[6] = 0xF1;           // sub 6: scale 1, min 15
  b[10] = 0x42;          // sub 10: scale 2, min 4
  b[16 + 0] = 0xE4;      // el 0: q0, el 32: q1, el 64: q2, el 96: q3
  b[16 + 37] = 0x08;     // el 128 + 32 + 5 = 165: q = 2 (bits 2-3)
  const auto y = decode(TensorType::kQ2_K, b);
  EXPECT_EQ(y[0], -1.0f);    // 1*0 - 0.5*2
  EXPECT_EQ(y[32], 2.5f);    // 3*1 - 0.5*1
  EXPECT_EQ(y[64], 10.0f);   // 5*2 - 0
  EXPECT_EQ(y[96], -4.5f);   // 1*3 - 0.5*15
  EXPECT_EQ(y[165], 2.0f);   // 2*2 - 0.5*4
  EXPECT_EQ(y[5], -1.0f);    // sub 0, q 0
}

TEST(Dequantize, Q3_K) {
  // hmask[32] qs[64] scales[12] d
  std::vector<uint8_t> b(110, 0);
  put16(b, 108, 0x3C00);  // d = 1
  uint8_t* sc = b.data() + 96;
  sc[0] = 0x01;   // sub 0 low 4 bits 1; high bits in sc[8] -> raw 33 -> +1
  sc[8] = 0x02;
  sc[1] = 0x50;   // sub 9 low 4 bits 5 (high nibble of byte 1); high bits 0 -> raw 5 -> -27
  sc[7] = 0xF0;   // sub 15 low 4 bits 15
  sc[11] = 0xC0;  // sub 15 high bits 3 (bits 6-7 of byte 11) -> raw 63 -> +31
  uint8_t* hm = b.data();
  uint8_t* qs = b.data() + 32;
  qs[0] = 0x03;   // el 0: low bits 3
  hm[0] = 0x01;   // el 0: high bit set -> q = 7 - 4 = 3
  qs[54] = 0x01;  // el 150 (half 1, group 0, l 22): low bits 1, no high bit -> 1 - 4 = -3
  qs[63] = 0x80;  // el 255 (half 1, group 3, l 31): low bits 2
  hm[31] = 0x80;  // high bit (bit 4*1 + 3) -> 6 - 4 = 2
  const auto y = decode(TensorType::kQ3_K, b);
  EXPECT_EQ(y[0], 3.0f);     // 1 * 3
  EXPECT_EQ(y[150], 81.0f);  // -27 * -3
  EXPECT_EQ(y[255], 62.0f);  // 31 * 2
  EXPECT_EQ(y[16], 128.0f);  // sub 1 raw 0 -> -32, q -4
}

TEST(Dequantize, Q4_K) {
  // d dmin scales[12] qs[128]
  std::vector<uint8_t> b(144, 0);
  put16(b, 0, 0x3C00);  // d = 1
  put16(b, 2, 0x3800);  // dmin = 0.5
  uint8_t* sc = b.data() + 4;
  sc[0] = 10;    // sub 0 scale
  sc[4] = 4;     // sub 0 min
  sc[9] = 0x25;  // sub 5: scale low 4 bits 5, min low 4 bits 2
  sc[1] = 0x80;  // sub 5 scale high 2 bits = 2 -> 37
  sc[5] = 0xC0;  // sub 5 min high 2 bits = 3 -> 50
  uint8_t* qs = b.data() + 16;
  qs[0] = 0x07;   // el 0: 7
  qs[67] = 0xC0;  // el 64*2 + 32 + 3 = 163 (sub 5): 12
  const auto y = decode(TensorType::kQ4_K, b);
  EXPECT_EQ(y[0], 68.0f);     // 10*7 - 0.5*4
  EXPECT_EQ(y[163], 419.0f);  // 37*12 - 0.5*50
  EXPECT_EQ(y[32], 0.0f);     // sub 1: scale 0 (byte 1 low bits), min 0
}

TEST(Dequantize, Q5_K) {
  // d dmin scales[12] qh[32] qs[128]
  std::vector<uint8_t> b(176, 0);
  put16(b, 0, 0x3C00);
  put16(b, 2, 0x3800);
  uint8_t* sc = b.data() + 4;
  sc[0] = 10;
  sc[4] = 4;
  sc[9] = 0x25;
  sc[1] = 0x80;
  sc[5] = 0xC0;
  uint8_t* qh = b.data() + 16;
  uint8_t* qs = b.data() + 48;
  qs[0] = 0x07;
  qh[0] = 0x01;   // el 0: 7 | 16 = 23
  qs[67] = 0xC0;  // el 163: 12
  qh[3] = 0x20;   // bit 2*2+1 of qh[3] -> 12 | 16 = 28
  const auto y = decode(TensorType::kQ5_K, b);
  EXPECT_EQ(y[0], 228.0f);     // 10*23 - 2
  EXPECT_EQ(y[163], 1011.0f);  // 37*28 - 25
}

TEST(Dequantize, Q6_K) {
  // ql[128] qh[64] scales[16] d
  std::vector<uint8_t> b(210, 0);
  put16(b, 208, 0x3800);  // d = 0.5
  b[192 + 0] = 2;                            // sub 0 scale 2
  b[192 + 13] = static_cast<uint8_t>(-3);    // sub 13 scale -3
  b[0] = 0x05;      // el 0: low 5
  b[128] = 0x02;    // qh[0] bits 0-1 = 2 -> 5 | 32 = 37 -> 5
  b[64 + 17] = 0x30;  // el 128 + 64 + 17 = 209: ql[64+17] high nibble 3, qh 0 -> 3 - 32 = -29
  const auto y = decode(TensorType::kQ6_K, b);
  EXPECT_EQ(y[0], 5.0f);     // 0.5*2*5
  EXPECT_EQ(y[209], 43.5f);  // 0.5*-3*-29
}

TEST(Dequantize, Q8_K) {
  std::vector<uint8_t> b(292, 0);
  const float d = 0.125f;
  std::memcpy(b.data(), &d, 4);
  b[4 + 7] = static_cast<uint8_t>(-100);
  const auto y = decode(TensorType::kQ8_K, b);
  EXPECT_EQ(y[7], -12.5f);
  EXPECT_EQ(y[8], 0.0f);
}

TEST(Dequantize, IQ4_NL) {
  std::vector<uint8_t> b(18, 0);
  put16(b, 0, 0x4000);  // d = 2
  b[2 + 0] = 0xF0;      // el 0: level 0 (-127), el 16: level 15 (113)
  b[2 + 3] = 0x78;      // el 3: level 8 (1), el 19: level 7 (-10)
  const auto y = decode(TensorType::kIQ4_NL, b);
  EXPECT_EQ(y[0], -254.0f);
  EXPECT_EQ(y[16], 226.0f);
  EXPECT_EQ(y[3], 2.0f);
  EXPECT_EQ(y[19], -20.0f);
}

TEST(Dequantize, IQ4_XS) {
  // d scales_h scales_l[4] qs[128]
  std::vector<uint8_t> b(136, 0);
  put16(b, 0, 0x3800);  // d = 0.5
  put16(b, 2, 0xC002);  // sub 0 high bits 2, sub 5 high bits 0, sub 7 high bits 3
  b[4 + 0] = 0x01;      // sub 0 low 4 bits 1 -> 33 -> +1
  b[4 + 3] = 0xF0;      // sub 7 low 4 bits 15 -> 63 -> +31; sub 5 stays 0 -> -32
  uint8_t* qs = b.data() + 8;
  qs[0] = 0x0F;    // el 0: level 15 (113)
  qs[84] = 0x00;   // el 5*32 + 16 + 4 = 180: level 0 (-127)
  qs[113] = 0x08;  // el 7*32 + 1 = 225: level 8 (1)
  const auto y = decode(TensorType::kIQ4_XS, b);
  EXPECT_EQ(y[0], 56.5f);     // 0.5*1*113
  EXPECT_EQ(y[180], 2032.0f);  // 0.5*-32*-127
  EXPECT_EQ(y[225], 15.5f);   // 0.5*31*1
}

TEST(Dequantize, MultipleBlocksAdvance) {
  // Two Q8_0 blocks with different scales: the second block reads its own d.
  std::vector<uint8_t> b(68, 0);
  put16(b, 0, 0x3C00);   // 1
  put16(b, 34, 0x4000);  // 2
  b[2] = 3;
  b[36] = 3;
  const auto y = decode(TensorType::kQ8_0, b);
  ASSERT_EQ(y.size(), 64u);
  EXPECT_EQ(y[0], 3.0f);
  EXPECT_EQ(y[32], 6.0f);
}

}  // namespace
}  // namespace codey
