// Row-interleaved weight layout shared by the x86 matmul kernels: groups of R
// rows (8 for AVX2, 16 for AVX-512) whose quant bytes are interleaved 4 bytes
// at a time, so one vector load holds the same 4 bytes of R rows and one
// dot-product instruction produces R outputs. Plain C++ (no ISA flags).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "codey/kernels.h"

namespace codey::kernels::x86 {

// One record = one ggml block (32 elements) or super-block (256) of R rows.
// Record layout inside a group (all records' quants first, then all meta):
//   qs region:   [n_records][qs_bytes/4][R] dwords: vector v lane j = bytes
//                4v..4v+3 of row j's quant bytes (ggml order, listed below)
//   meta region: [n_records] of per-type arrays of R entries (listed below)
// Quant bytes per row and record (ggml block order, concatenated):
//   Q4_0, Q4_1, IQ4_NL: qs[16]      Q5_0, Q5_1: qs[16] qh[4]   Q8_0: qs[32]
//   Q4_K, IQ4_XS: qs[128]           Q5_K: qs[128] qh[32]
//   Q6_K: ql[128] qh[64]            Q3_K: hmask[32] qs[64]     Q2_K: qs[64]
// Meta arrays per record (each [R]):
//   Q4_0, Q5_0, Q8_0, IQ4_NL: d (f16)          Q4_1, Q5_1: d, m (f16)
//   Q4_K, Q5_K: d, dmin (f16), sc[8] (u8), m[8] (u8)  (6-bit values unpacked)
//   Q6_K: d (f16), sc[16] (i8)                 Q3_K: d (f16), sc[16] (i8, s - 32)
//   Q2_K: d, dmin (f16), sc[16] (u8 as stored) IQ4_XS: d (f16), sc[8] (i8, ls - 32)
struct PackedFormat {
  int64_t block = 0;   // elements per record
  int qs_bytes = 0;    // quant bytes per row and record (multiple of 4)
  int meta_bytes = 0;  // meta bytes per row and record
};

// Whether the type has a packed format (and so an integer fast path).
bool packable(TensorType type);
PackedFormat packed_format(TensorType type);
// Bytes of one group of r rows of k elements.
size_t packed_group_bytes(TensorType type, int64_t k, int r);

// Header at the start of a packed matrix (Matrix::packed), checked by the
// kernels so a copy made for another ISA or matrix is never misread.
struct PackedHeader {
  uint32_t magic = 0;
  uint32_t type = 0;
  int32_t r = 0;
  int32_t reserved = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t group_bytes = 0;
  uint8_t pad[24] = {};
};
static_assert(sizeof(PackedHeader) == 64);
constexpr uint32_t kPackedMagic = 0x4b435052;  // "RPCK"

// Packs rows [row0, row0 + r) of w into dst (packed_group_bytes); rows past
// w.rows are zero (zero scales, so they contribute nothing and are not stored).
void pack_group(const Matrix& w, int64_t row0, int r, uint8_t* dst);
// Header + every group; empty if the type is not packable.
std::vector<uint8_t> pack_matrix(const Matrix& w, int r);
// The groups of a packed matrix, or nullptr if `w.packed` is absent or was
// made for another group size / shape / type.
const uint8_t* packed_groups(const Matrix& w, int r);

}  // namespace codey::kernels::x86
