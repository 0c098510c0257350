// The ggml block layouts, byte for byte (ggml-common.h), as plain structs.
// Public part of the quant layer: kernels/ reads and writes these blocks;
// every size is checked against the type table (tests/quant/dequantize_test.cc).
#pragma once

#include <cstdint>
#include <cstring>

namespace codey::quant {

constexpr int kQK = 32;     // elements per block of the 32-element formats
constexpr int kQK_K = 256;  // elements per K-quant super-block

// Halves are raw IEEE binary16 bits (codey::fp16_to_fp32). Members are only
// 1- and 2-byte fields (4 for Q8_K), so sizeof has no padding; code copies a
// block in/out with memcpy so rows need no alignment at all.

// x = d * (q - 8); qs[j] holds element j (low nibble) and j+16 (high nibble).
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
// x = d * q + m; nibbles as Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
// x = d * (q - 16), q = nibble | bit j of qh (little-endian u32) << 4 for
// element j (j < 16: low nibble of qs[j]; j >= 16: high nibble of qs[j-16]).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x = d * q + m; 5-bit q as Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x = d * q.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
// 16 sub-blocks of 16: x = d * (scales[j] & 15) * q - dmin * (scales[j] >> 4),
// q 2 bits. Within each 128-element half h, byte qs[32h + l] holds elements
// 128h + l + 32k at bits 2k..2k+1 (k = 0..3).
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
// 16 sub-blocks of 16: x = d * (s_j - 32) * (q - 4), q = 2 low bits (packed as
// Q2_K) | high bit from hmask. Element e = 128h + 32k + l (l < 32): high bit
// is bit (4h + k) of hmask[l]. s_j 6 bits: low 4 bits in scales[j] (j < 8) or
// the high nibble of scales[j-8]; top 2 bits at bit 2*(j/4) of scales[8 + j%4].
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};
// 8 sub-blocks of 32: x = d * sc_j * q - dmin * m_j, q 4 bits. sc/m 6 bits,
// packed by get_scale_min (below). Bytes qs[32p + l]: element 64p + l (low
// nibble) and 64p + 32 + l (high nibble).
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
// As Q4_K with a 5th bit: element 64p + l has its bit at bit 2p of qh[l],
// element 64p + 32 + l at bit 2p+1.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
// 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q 6 bits. Per 128-half h:
// elements 128h + l + 32k (k = 0..3, l < 32): low nibbles in ql[64h + l] (k=0
// low, k=2 high) and ql[64h + 32 + l] (k=1 low, k=3 high), high 2 bits at
// bit 2k of qh[32h + l].
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
// Activations for K-quant dot products: x = d * qs, bsums[j] = sum of qs over
// elements 16j..16j+15.
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
// x = d * kIq4nlValues[nibble]; nibbles as Q4_0.
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
// 8 sub-blocks of 32: x = d * (ls_j - 32) * kIq4nlValues[nibble]. ls_j 6 bits:
// low 4 in scales_l[j/2] (nibble j%2), high 2 at bit 2j of scales_h. Nibbles
// of each sub-block as Q4_0 (16 bytes per sub-block).
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);

// The 16 non-uniform levels of IQ4_NL / IQ4_XS (ascending).
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// Q4_K / Q5_K: the 6-bit scale and min of sub-block j (0..7) from the 12
// packed bytes. j < 4: low 6 bits of bytes j and j+4. j >= 4: low/high
// nibble of byte j+4, top 2 bits from the top bits of bytes j-4 / j.
inline void get_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Inverse of get_scale_min for all 8 pairs (sc, m < 64).
inline void pack_scale_min(const uint8_t* sc, const uint8_t* m, uint8_t* q) {
  std::memset(q, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      q[j] |= sc[j] & 63;
      q[j + 4] |= m[j] & 63;
    } else {
      q[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
      q[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      q[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
    }
  }
}

// Q3_K: the 16 6-bit scales (0..63, stored with +32 bias) from the 12 bytes.
inline void unpack_q3k_scales(const uint8_t* s, int* out) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = low | (high << 4);
  }
}
inline void pack_q3k_scales(const int* in, uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 16; ++j) {
    const int v = in[j] & 63;
    if (j < 8)
      s[j] |= static_cast<uint8_t>(v & 0xF);
    else
      s[j - 8] |= static_cast<uint8_t>((v & 0xF) << 4);
    s[8 + j % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (j / 4)));
  }
}

template <class Block>
inline Block load_block(const void* src, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + i * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return b;
}
template <class Block>
inline void store_block(void* dst, int64_t i, const Block& b) {
  std::memcpy(static_cast<uint8_t*>(dst) + i * static_cast<int64_t>(sizeof(Block)), &b, sizeof(Block));
}

}  // namespace codey::quant
