// The table of tensor types: block size and bytes per block, byte for byte
// the ggml layouts (ggml-common.h), and what codey can do with each.
#include <algorithm>
#include <cctype>

#include "codey/tensor.h"

namespace codey {
namespace {

using T = TensorType;
// {type, name, block elements, block bytes, dequantizable, quantizable}
// Sizes: Q4_0 = f16 d + 16 nibbles; Q8_K = f32 d + 256 int8 + 16 int16 bsums;
// K-quants are 256-element super-blocks (see quant/ for the packing).
constexpr TypeTraits kTable[] = {
    {T::kF32, "f32", 1, 4, true, true},
    {T::kF16, "f16", 1, 2, true, true},
    {T::kQ4_0, "q4_0", 32, 18, true, true},
    {T::kQ4_1, "q4_1", 32, 20, true, true},
    {T::kQ5_0, "q5_0", 32, 22, true, true},
    {T::kQ5_1, "q5_1", 32, 24, true, true},
    {T::kQ8_0, "q8_0", 32, 34, true, true},
    {T::kQ8_1, "q8_1", 32, 36, false, false},
    {T::kQ2_K, "q2_K", 256, 84, true, true},
    {T::kQ3_K, "q3_K", 256, 110, true, true},
    {T::kQ4_K, "q4_K", 256, 144, true, true},
    {T::kQ5_K, "q5_K", 256, 176, true, true},
    {T::kQ6_K, "q6_K", 256, 210, true, true},
    {T::kQ8_K, "q8_K", 256, 292, true, true},
    {T::kIQ2_XXS, "iq2_xxs", 256, 66, false, false},
    {T::kIQ2_XS, "iq2_xs", 256, 74, false, false},
    {T::kIQ3_XXS, "iq3_xxs", 256, 98, false, false},
    {T::kIQ1_S, "iq1_s", 256, 50, false, false},
    {T::kIQ4_NL, "iq4_nl", 32, 18, true, true},
    {T::kIQ3_S, "iq3_s", 256, 110, false, false},
    {T::kIQ2_S, "iq2_s", 256, 82, false, false},
    {T::kIQ4_XS, "iq4_xs", 256, 136, true, true},
    {T::kI8, "i8", 1, 1, false, false},
    {T::kI16, "i16", 1, 2, false, false},
    {T::kI32, "i32", 1, 4, false, false},
    {T::kI64, "i64", 1, 8, false, false},
    {T::kF64, "f64", 1, 8, false, false},
    {T::kIQ1_M, "iq1_m", 256, 56, false, false},
    {T::kBF16, "bf16", 1, 2, true, true},
    {T::kTQ1_0, "tq1_0", 256, 54, false, false},
    {T::kTQ2_0, "tq2_0", 256, 66, false, false},
    {T::kMXFP4, "mxfp4", 32, 17, false, false},
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

const TypeTraits* type_traits(uint32_t id) {
  for (const auto& t : kTable)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const TypeTraits& type_traits(TensorType type) {
  const TypeTraits* t = type_traits(static_cast<uint32_t>(type));
  CODEY_ASSERT(t != nullptr);
  return *t;
}

std::optional<TensorType> type_from_name(std::string_view name) {
  for (const auto& t : kTable)
    if (iequals(t.name, name)) return t.type;
  return std::nullopt;
}

std::span<const TypeTraits> all_type_traits() { return kTable; }

std::string TensorView::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < n_dims; ++i) s += fmt::format("{}{}", i ? ", " : "", ne[i]);
  return s + "]";
}

}  // namespace codey
