// GgufValue: element access for scalar arrays, builders for in-memory values
// (used by the writer), and a readable rendering for `codey inspect`.
#include <cstring>

#include "codey/gguf.h"

namespace codey {
namespace {
template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
}  // namespace

double GgufValue::array_f64(uint64_t idx) const {
  CODEY_ASSERT(type == GgufType::kArray && idx < count);
  const uint8_t* p = raw.data();
  switch (elem_type) {
    case GgufType::kUint8: case GgufType::kBool: return p[idx];
    case GgufType::kInt8: return load<int8_t>(p + idx);
    case GgufType::kUint16: return load<uint16_t>(p + 2 * idx);
    case GgufType::kInt16: return load<int16_t>(p + 2 * idx);
    case GgufType::kUint32: return load<uint32_t>(p + 4 * idx);
    case GgufType::kInt32: return load<int32_t>(p + 4 * idx);
    case GgufType::kFloat32: return load<float>(p + 4 * idx);
    case GgufType::kUint64: return static_cast<double>(load<uint64_t>(p + 8 * idx));
    case GgufType::kInt64: return static_cast<double>(load<int64_t>(p + 8 * idx));
    case GgufType::kFloat64: return load<double>(p + 8 * idx);
    default: CODEY_ASSERT(false && "not a scalar array");
  }
  return 0;
}

int64_t GgufValue::array_i64(uint64_t idx) const {
  CODEY_ASSERT(type == GgufType::kArray && idx < count);
  const uint8_t* p = raw.data();
  switch (elem_type) {
    case GgufType::kUint8: case GgufType::kBool: return p[idx];
    case GgufType::kInt8: return load<int8_t>(p + idx);
    case GgufType::kUint16: return load<uint16_t>(p + 2 * idx);
    case GgufType::kInt16: return load<int16_t>(p + 2 * idx);
    case GgufType::kUint32: return load<uint32_t>(p + 4 * idx);
    case GgufType::kInt32: return load<int32_t>(p + 4 * idx);
    case GgufType::kUint64: return static_cast<int64_t>(load<uint64_t>(p + 8 * idx));
    case GgufType::kInt64: return load<int64_t>(p + 8 * idx);
    case GgufType::kFloat32: return static_cast<int64_t>(load<float>(p + 4 * idx));
    case GgufType::kFloat64: return static_cast<int64_t>(load<double>(p + 8 * idx));
    default: CODEY_ASSERT(false && "not a scalar array");
  }
  return 0;
}

GgufValue GgufValue::make_scalar(GgufType t, uint64_t u, int64_t i, double f) {
  GgufValue v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}
GgufValue GgufValue::make_u32(uint32_t x) { return make_scalar(GgufType::kUint32, x, x, 0); }
GgufValue GgufValue::make_i32(int32_t x) { return make_scalar(GgufType::kInt32, 0, x, 0); }
GgufValue GgufValue::make_u64(uint64_t x) { return make_scalar(GgufType::kUint64, x, static_cast<int64_t>(x), 0); }
GgufValue GgufValue::make_f32(float x) { return make_scalar(GgufType::kFloat32, 0, 0, x); }
GgufValue GgufValue::make_bool(bool x) { return make_scalar(GgufType::kBool, x ? 1 : 0, 0, 0); }

GgufValue GgufValue::make_string(std::string s) {
  GgufValue v;
  v.type = GgufType::kString;
  v.owned_ = std::make_shared<std::string>(std::move(s));
  v.str = *v.owned_;
  return v;
}

GgufValue GgufValue::make_string_array(std::vector<std::string> s) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = GgufType::kString;
  v.owned_strs_ = std::make_shared<std::vector<std::string>>(std::move(s));
  v.count = v.owned_strs_->size();
  v.strs.reserve(v.count);
  for (const auto& x : *v.owned_strs_) v.strs.push_back(x);
  return v;
}

template <class T>
GgufValue GgufValue::make_array(GgufType elem, std::span<const T> data) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = elem;
  v.count = data.size();
  v.owned_raw_ = std::make_shared<std::vector<uint8_t>>(data.size_bytes());
  if (!data.empty()) std::memcpy(v.owned_raw_->data(), data.data(), data.size_bytes());
  v.raw = *v.owned_raw_;
  return v;
}
template GgufValue GgufValue::make_array<float>(GgufType, std::span<const float>);
template GgufValue GgufValue::make_array<int32_t>(GgufType, std::span<const int32_t>);
template GgufValue GgufValue::make_array<uint32_t>(GgufType, std::span<const uint32_t>);
template GgufValue GgufValue::make_array<int8_t>(GgufType, std::span<const int8_t>);
template GgufValue GgufValue::make_array<uint8_t>(GgufType, std::span<const uint8_t>);
template GgufValue GgufValue::make_array<int16_t>(GgufType, std::span<const int16_t>);
template GgufValue GgufValue::make_array<uint16_t>(GgufType, std::span<const uint16_t>);
template GgufValue GgufValue::make_array<int64_t>(GgufType, std::span<const int64_t>);
template GgufValue GgufValue::make_array<uint64_t>(GgufType, std::span<const uint64_t>);
template GgufValue GgufValue::make_array<double>(GgufType, std::span<const double>);

std::string GgufValue::to_string(size_t max_items) const {
  auto quote = [](std::string_view s) {
    std::string out = "\"";
    for (char c : s.substr(0, 200)) {
      if (c == '\n') out += "\\n";
      else if (c == '"') out += "\\\"";
      else out += c;
    }
    if (s.size() > 200) out += "...";
    return out + "\"";
  };
  switch (type) {
    case GgufType::kUint8: case GgufType::kUint16: case GgufType::kUint32: case GgufType::kUint64:
      return fmt::format("{}", u);
    case GgufType::kInt8: case GgufType::kInt16: case GgufType::kInt32: case GgufType::kInt64:
      return fmt::format("{}", i);
    case GgufType::kFloat32: case GgufType::kFloat64: return fmt::format("{}", f);
    case GgufType::kBool: return u ? "true" : "false";
    case GgufType::kString: return quote(str);
    case GgufType::kArray: {
      std::string out = "[";
      const uint64_t n = std::min<uint64_t>(count, max_items);
      for (uint64_t k = 0; k < n; ++k) {
        if (k) out += ", ";
        if (elem_type == GgufType::kString) out += quote(strs[k]);
        else if (elem_type == GgufType::kArray) out += items[k].to_string(max_items);
        else if (elem_type == GgufType::kFloat32 || elem_type == GgufType::kFloat64) out += fmt::format("{}", array_f64(k));
        else out += fmt::format("{}", array_i64(k));
      }
      if (count > n) out += fmt::format(", ... ({} items)", count);
      return out + "]";
    }
  }
  return "?";
}

}  // namespace codey
