// Packing ggml rows into the row-interleaved groups the x86 kernels read
// (layout in packed.h). Load-time work: plain byte moves, no ISA flags.
#include "kernels/x86/packed.h"

#include <cstring>

#include "codey/base.h"
#include "codey/quant_blocks.h"

namespace codey::kernels::x86 {
namespace {

// A run of quant bytes inside a native ggml block.
struct Segment {
  int offset, len;
};

struct TypeInfo {
  PackedFormat fmt;
  Segment segs[2];
  int n_segs;
};

bool type_info(TensorType t, TypeInfo* out) {
  switch (t) {
    case TensorType::kQ4_0: *out = {{32, 16, 2}, {{2, 16}, {0, 0}}, 1}; return true;
    case TensorType::kQ4_1: *out = {{32, 16, 4}, {{4, 16}, {0, 0}}, 1}; return true;
    case TensorType::kQ5_0: *out = {{32, 20, 2}, {{6, 16}, {2, 4}}, 2}; return true;
    case TensorType::kQ5_1: *out = {{32, 20, 4}, {{8, 16}, {4, 4}}, 2}; return true;
    case TensorType::kQ8_0: *out = {{32, 32, 2}, {{2, 32}, {0, 0}}, 1}; return true;
    case TensorType::kIQ4_NL: *out = {{32, 16, 2}, {{2, 16}, {0, 0}}, 1}; return true;
    case TensorType::kQ4_K: *out = {{256, 128, 20}, {{16, 128}, {0, 0}}, 1}; return true;
    case TensorType::kQ5_K: *out = {{256, 160, 20}, {{48, 128}, {16, 32}}, 2}; return true;
    case TensorType::kQ6_K: *out = {{256, 192, 18}, {{0, 128}, {128, 64}}, 2}; return true;
    case TensorType::kQ3_K: *out = {{256, 96, 18}, {{0, 32}, {32, 64}}, 2}; return true;
    case TensorType::kQ2_K: *out = {{256, 64, 20}, {{16, 64}, {0, 0}}, 1}; return true;
    case TensorType::kIQ4_XS: *out = {{256, 128, 10}, {{8, 128}, {0, 0}}, 1}; return true;
    default: return false;
  }
}

inline void put_u16(uint8_t* base, int idx, uint16_t v) { std::memcpy(base + 2 * idx, &v, 2); }
inline uint16_t get_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Writes row j's meta entries of one record (native block at `blk`) into the
// record's meta arrays at `meta` (each array has r entries).
void write_meta(TensorType t, const uint8_t* blk, uint8_t* meta, int j, int r) {
  switch (t) {
    case TensorType::kQ4_0:
    case TensorType::kQ5_0:
    case TensorType::kQ8_0:
    case TensorType::kIQ4_NL:
      put_u16(meta, j, get_u16(blk));
      return;
    case TensorType::kQ4_1:
    case TensorType::kQ5_1:
      put_u16(meta, j, get_u16(blk));
      put_u16(meta + 2 * r, j, get_u16(blk + 2));
      return;
    case TensorType::kQ4_K:
    case TensorType::kQ5_K: {
      put_u16(meta, j, get_u16(blk));
      put_u16(meta + 2 * r, j, get_u16(blk + 2));
      uint8_t* sc = meta + 4 * r;
      uint8_t* mn = sc + 8 * r;
      for (int s = 0; s < 8; ++s) quant::get_scale_min(s, blk + 4, &sc[s * r + j], &mn[s * r + j]);
      return;
    }
    case TensorType::kQ6_K: {
      put_u16(meta, j, get_u16(blk + 208));
      uint8_t* sc = meta + 2 * r;
      for (int s = 0; s < 16; ++s) sc[s * r + j] = blk[192 + s];
      return;
    }
    case TensorType::kQ3_K: {
      put_u16(meta, j, get_u16(blk + 108));
      int scales[16];
      quant::unpack_q3k_scales(blk + 96, scales);
      uint8_t* sc = meta + 2 * r;
      for (int s = 0; s < 16; ++s) sc[s * r + j] = static_cast<uint8_t>(static_cast<int8_t>(scales[s] - 32));
      return;
    }
    case TensorType::kQ2_K: {
      put_u16(meta, j, get_u16(blk + 80));
      put_u16(meta + 2 * r, j, get_u16(blk + 82));
      uint8_t* sc = meta + 4 * r;
      for (int s = 0; s < 16; ++s) sc[s * r + j] = blk[s];
      return;
    }
    case TensorType::kIQ4_XS: {
      put_u16(meta, j, get_u16(blk));
      const uint16_t sh = get_u16(blk + 2);
      uint8_t* sc = meta + 2 * r;
      for (int s = 0; s < 8; ++s) {
        const int ls = ((blk[4 + s / 2] >> (4 * (s % 2))) & 0xF) | (((sh >> (2 * s)) & 3) << 4);
        sc[s * r + j] = static_cast<uint8_t>(static_cast<int8_t>(ls - 32));
      }
      return;
    }
    default:
      CODEY_ASSERT(!"write_meta: type has no packed format");
  }
}

}  // namespace

bool packable(TensorType type) {
  TypeInfo ti;
  return type_info(type, &ti);
}

PackedFormat packed_format(TensorType type) {
  TypeInfo ti;
  CODEY_ASSERT(type_info(type, &ti));
  return ti.fmt;
}

size_t packed_group_bytes(TensorType type, int64_t k, int r) {
  const PackedFormat f = packed_format(type);
  const auto n_rec = static_cast<size_t>(k / f.block);
  // Rounded to 64 bytes so every group starts cache-line aligned.
  const size_t bytes = n_rec * static_cast<size_t>(r) * static_cast<size_t>(f.qs_bytes + f.meta_bytes);
  return (bytes + 63) & ~size_t{63};
}

void pack_group(const Matrix& w, int64_t row0, int r, uint8_t* dst) {
  TypeInfo ti;
  CODEY_ASSERT(type_info(w.type, &ti));
  CODEY_ASSERT(w.cols % ti.fmt.block == 0);
  const int64_t n_rec = w.cols / ti.fmt.block;
  const size_t blk_bytes = type_traits(w.type).block_bytes;
  const size_t rec_qs = static_cast<size_t>(r) * static_cast<size_t>(ti.fmt.qs_bytes);
  const size_t rec_meta = static_cast<size_t>(r) * static_cast<size_t>(ti.fmt.meta_bytes);
  uint8_t* qs_region = dst;
  uint8_t* meta_region = dst + static_cast<size_t>(n_rec) * rec_qs;
  std::memset(dst, 0, packed_group_bytes(w.type, w.cols, r));
  const int valid = static_cast<int>(std::min<int64_t>(r, w.rows - row0));
  uint8_t qbytes[256];
  for (int j = 0; j < valid; ++j) {
    const uint8_t* row = w.row(row0 + j);
    for (int64_t b = 0; b < n_rec; ++b) {
      const uint8_t* blk = row + static_cast<size_t>(b) * blk_bytes;
      int n = 0;
      for (int s = 0; s < ti.n_segs; ++s) {
        std::memcpy(qbytes + n, blk + ti.segs[s].offset, static_cast<size_t>(ti.segs[s].len));
        n += ti.segs[s].len;
      }
      uint8_t* q = qs_region + static_cast<size_t>(b) * rec_qs;
      for (int v = 0; v < n / 4; ++v) std::memcpy(q + (static_cast<size_t>(v) * r + j) * 4, qbytes + 4 * v, 4);
      write_meta(w.type, blk, meta_region + static_cast<size_t>(b) * rec_meta, j, r);
    }
  }
}

std::vector<uint8_t> pack_matrix(const Matrix& w, int r) {
  if (!packable(w.type) || w.cols % packed_format(w.type).block != 0) return {};
  const size_t gb = packed_group_bytes(w.type, w.cols, r);
  const int64_t n_groups = (w.rows + r - 1) / r;
  std::vector<uint8_t> out(sizeof(PackedHeader) + static_cast<size_t>(n_groups) * gb);
  PackedHeader h;
  h.magic = kPackedMagic;
  h.type = static_cast<uint32_t>(w.type);
  h.r = r;
  h.rows = w.rows;
  h.cols = w.cols;
  h.group_bytes = gb;
  std::memcpy(out.data(), &h, sizeof h);
  for (int64_t g = 0; g < n_groups; ++g)
    pack_group(w, g * r, r, out.data() + sizeof(PackedHeader) + static_cast<size_t>(g) * gb);
  return out;
}

const uint8_t* packed_groups(const Matrix& w, int r) {
  if (!w.packed) return nullptr;
  PackedHeader h;
  std::memcpy(&h, w.packed, sizeof h);
  if (h.magic != kPackedMagic || h.r != r || h.type != static_cast<uint32_t>(w.type) || h.rows != w.rows ||
      h.cols != w.cols || h.group_bytes != packed_group_bytes(w.type, w.cols, r))
    return nullptr;
  return static_cast<const uint8_t*>(w.packed) + sizeof(PackedHeader);
}

}  // namespace codey::kernels::x86
