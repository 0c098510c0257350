// Tensor element types (the ggml type ids, byte-compatible block layouts) and
// typed views of tensor memory. The one table of block sizes lives here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "codey/base.h"

namespace codey {

// Values are the ggml/GGUF type ids; gaps are ids ggml retired.
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

struct TypeTraits {
  TensorType type;
  std::string_view name;     // as ggml prints it: "q4_K", "f16"
  int64_t block_size;        // elements per block
  size_t block_bytes;        // bytes per block
  bool dequantizable;        // codey can turn a row of it into f32
  bool quantizable;          // codey can produce it from f32
};

// Traits of a known type id, or nullopt for an id ggml never defined.
const TypeTraits* type_traits(uint32_t id);
const TypeTraits& type_traits(TensorType type);
inline std::string_view type_name(TensorType t) { return type_traits(t).name; }
// Case-insensitive lookup by name ("Q4_K", "q4_k", "F16", "bf16").
std::optional<TensorType> type_from_name(std::string_view name);
// All known types in id order.
std::span<const TypeTraits> all_type_traits();

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t row_bytes(TensorType t, int64_t n) {
  const auto& tr = type_traits(t);
  return static_cast<size_t>(n / tr.block_size) * tr.block_bytes;
}
inline double bits_per_weight(TensorType t) {
  const auto& tr = type_traits(t);
  return 8.0 * static_cast<double>(tr.block_bytes) / static_cast<double>(tr.block_size);
}

constexpr int kMaxDims = 4;

// A read-only view of a tensor's bytes with its ggml shape (ne[0] is the row
// length, the fastest-varying dimension). Does not own memory.
struct TensorView {
  std::string_view name;
  TensorType type = TensorType::kF32;
  int n_dims = 0;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};
  std::span<const uint8_t> data;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_size() const { return row_bytes(type, ne[0]); }
  const uint8_t* row(int64_t i) const { return data.data() + static_cast<size_t>(i) * row_size(); }
  std::string shape_string() const;
};

}  // namespace codey
