// GGUF v2/v3 reader: a pure function over a byte span. Every count, offset and
// size is checked against the bytes left before it is used, so a truncated or
// hostile file gives an error naming the file, the offset and the problem.
#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <limits>

#include "codey/gguf.h"

namespace codey {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 8;
constexpr uint64_t kMaxStringBytes = uint64_t(1) << 30;
constexpr uint64_t kMaxAlignment = uint64_t(1) << 20;

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kBool: return 1;
    case GgufType::kUint16: case GgufType::kInt16: return 2;
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kFloat32: return 4;
    case GgufType::kUint64: case GgufType::kInt64: case GgufType::kFloat64: return 8;
    default: return 0;
  }
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

// Cursor over the bytes; every read checks bounds and records the offset.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, std::string_view name) : bytes_(bytes), name_(name) {}

  uint64_t offset() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  template <class... Args>
  std::unexpected<Error> fail(uint64_t at, fmt::format_string<Args...> f, Args&&... args) const {
    return make_error(ErrorCode::kCorrupt, "{}: at offset {}: {}", name_, at,
                      fmt::format(f, std::forward<Args>(args)...));
  }

  template <class T>
  Result<T> read(std::string_view what) {
    if (remaining() < sizeof(T))
      return fail(pos_, "file ends while reading {} ({} bytes needed, {} left)", what, sizeof(T), remaining());
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  Result<std::string_view> read_string(std::string_view what) {
    const uint64_t at = pos_;
    auto len = read<uint64_t>(what);
    if (!len) return std::unexpected(len.error());
    if (*len > kMaxStringBytes || *len > remaining())
      return fail(at, "{} has length {} but only {} bytes are left", what, *len, remaining());
    std::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), *len);
    pos_ += *len;
    return s;
  }

  Result<std::span<const uint8_t>> take(uint64_t n, std::string_view what) {
    if (n > remaining()) return fail(pos_, "{} needs {} bytes but only {} are left", what, n, remaining());
    auto s = bytes_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> bytes_;
  std::string_view name_;
  uint64_t pos_ = 0;
};

Result<GgufValue> read_value(Cursor& cur, GgufType type, std::string_view key, int depth);

Result<GgufValue> read_array(Cursor& cur, std::string_view key, int depth) {
  const uint64_t at = cur.offset();
  if (depth >= kMaxArrayDepth) return cur.fail(at, "key '{}': arrays nested deeper than {}", key, kMaxArrayDepth);
  auto et = cur.read<uint32_t>("array element type");
  if (!et) return std::unexpected(et.error());
  if (!valid_type(*et)) return cur.fail(at, "key '{}': unknown array element type {}", key, *et);
  auto count = cur.read<uint64_t>("array length");
  if (!count) return std::unexpected(count.error());
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = static_cast<GgufType>(*et);
  v.count = *count;
  // Minimum bytes per element bounds the count before anything is reserved.
  const size_t min_elem = v.elem_type == GgufType::kString  ? 8
                          : v.elem_type == GgufType::kArray ? 12
                                                            : scalar_size(v.elem_type);
  if (v.count > cur.remaining() / min_elem)
    return cur.fail(at, "key '{}': array of {} {} needs at least {} bytes but only {} are left", key, v.count,
                    gguf_type_name(v.elem_type), static_cast<double>(v.count) * min_elem, cur.remaining());
  if (v.elem_type == GgufType::kString) {
    v.strs.reserve(v.count);
    for (uint64_t i = 0; i < v.count; ++i) {
      auto s = cur.read_string("array string");
      if (!s) return std::unexpected(s.error());
      v.strs.push_back(*s);
    }
  } else if (v.elem_type == GgufType::kArray) {
    v.items.reserve(v.count);
    for (uint64_t i = 0; i < v.count; ++i) {
      auto item = read_array(cur, key, depth + 1);
      if (!item) return std::unexpected(item.error());
      v.items.push_back(std::move(*item));
    }
  } else {
    auto raw = cur.take(v.count * min_elem, "array data");
    if (!raw) return std::unexpected(raw.error());
    v.raw = *raw;
    if (v.elem_type == GgufType::kBool)
      for (uint8_t b : v.raw)
        if (b > 1) return cur.fail(at, "key '{}': bool array element has value {}", key, b);
  }
  return v;
}

Result<GgufValue> read_value(Cursor& cur, GgufType type, std::string_view key, int depth) {
  GgufValue v;
  v.type = type;
  const uint64_t at = cur.offset();
  switch (type) {
    case GgufType::kUint8: { auto r = cur.read<uint8_t>("u8"); if (!r) return std::unexpected(r.error()); v.u = *r; v.i = *r; break; }
    case GgufType::kInt8: { auto r = cur.read<int8_t>("i8"); if (!r) return std::unexpected(r.error()); v.i = *r; break; }
    case GgufType::kUint16: { auto r = cur.read<uint16_t>("u16"); if (!r) return std::unexpected(r.error()); v.u = *r; v.i = *r; break; }
    case GgufType::kInt16: { auto r = cur.read<int16_t>("i16"); if (!r) return std::unexpected(r.error()); v.i = *r; break; }
    case GgufType::kUint32: { auto r = cur.read<uint32_t>("u32"); if (!r) return std::unexpected(r.error()); v.u = *r; v.i = *r; break; }
    case GgufType::kInt32: { auto r = cur.read<int32_t>("i32"); if (!r) return std::unexpected(r.error()); v.i = *r; break; }
    case GgufType::kUint64: { auto r = cur.read<uint64_t>("u64"); if (!r) return std::unexpected(r.error()); v.u = *r; v.i = static_cast<int64_t>(*r); break; }
    case GgufType::kInt64: { auto r = cur.read<int64_t>("i64"); if (!r) return std::unexpected(r.error()); v.i = *r; break; }
    case GgufType::kFloat32: { auto r = cur.read<float>("f32"); if (!r) return std::unexpected(r.error()); v.f = *r; break; }
    case GgufType::kFloat64: { auto r = cur.read<double>("f64"); if (!r) return std::unexpected(r.error()); v.f = *r; break; }
    case GgufType::kBool: {
      auto r = cur.read<uint8_t>("bool");
      if (!r) return std::unexpected(r.error());
      if (*r > 1) return cur.fail(at, "key '{}': bool has value {}", key, *r);
      v.u = *r;
      break;
    }
    case GgufType::kString: {
      auto r = cur.read_string("string value");
      if (!r) return std::unexpected(r.error());
      v.str = *r;
      break;
    }
    case GgufType::kArray: return read_array(cur, key, depth);
  }
  return v;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

namespace {

struct SplitKeys {
  uint32_t no = 0;     // 0-based
  uint32_t count = 1;
};

// split.no / split.count of a part (absent: an unsplit file, part 0 of 1).
Result<SplitKeys> split_keys(const GgufFile& f) {
  SplitKeys k;
  const GgufValue* count = f.find("split.count");
  if (!count) return k;
  const GgufValue* no = f.find("split.no");
  constexpr uint64_t kMaxParts = 99999;
  if (!count->is_integer() || count->i < 1 || static_cast<uint64_t>(count->i) > kMaxParts)
    return make_error(ErrorCode::kCorrupt, "{}: split.count must be an integer in 1..{}, found {}", f.name(), kMaxParts,
                      count->to_string());
  k.count = static_cast<uint32_t>(count->i);
  if (!no) {
    if (k.count == 1) return k;
    return make_error(ErrorCode::kCorrupt, "{}: split.count is {} but split.no is missing", f.name(), k.count);
  }
  if (!no->is_integer() || no->i < 0 || no->i >= count->i)
    return make_error(ErrorCode::kCorrupt, "{}: split.no must be in 0..{}, found {}", f.name(), k.count - 1,
                      no->to_string());
  k.no = static_cast<uint32_t>(no->i);
  return k;
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view kNames[] = {"u8",  "i8",   "u16",   "i16", "u32", "i32",
                                                "f32", "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "invalid";
}

Result<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes, std::string_view name) {
  GgufFile file;
  file.parts_.emplace_back();
  file.parts_[0].name = std::string(name);
  file.parts_[0].bytes = bytes;
  Cursor cur(bytes, file.parts_[0].name);

  auto magic = cur.read<uint32_t>("magic");
  if (!magic) return std::unexpected(magic.error());
  if (*magic != kMagic)
    return cur.fail(0, "not a GGUF file (magic is 0x{:08x}, expected 0x{:08x} \"GGUF\")", *magic, kMagic);
  auto version = cur.read<uint32_t>("version");
  if (!version) return std::unexpected(version.error());
  if (*version == 1)
    return make_error(ErrorCode::kUnsupported, "{}: GGUF version 1 is not supported (only 2 and 3); re-convert the model", name);
  if (*version != 2 && *version != 3)
    return cur.fail(4, "unsupported GGUF version {} (expected 2 or 3)", *version);
  file.version_ = *version;
  auto n_tensors = cur.read<uint64_t>("tensor count");
  if (!n_tensors) return std::unexpected(n_tensors.error());
  auto n_kv = cur.read<uint64_t>("metadata count");
  if (!n_kv) return std::unexpected(n_kv.error());
  // A key-value pair is at least 8 (key length) + 4 (type) + 1 bytes; a tensor
  // info at least 8 + 4 + 4 + 8: bound the counts by what is left.
  if (*n_kv > cur.remaining() / 13)
    return cur.fail(16, "metadata count {} is impossible for {} remaining bytes", *n_kv, cur.remaining());
  if (*n_tensors > cur.remaining() / 24)
    return cur.fail(8, "tensor count {} is impossible for {} remaining bytes", *n_tensors, cur.remaining());

  file.kv_.reserve(*n_kv);
  for (uint64_t k = 0; k < *n_kv; ++k) {
    const uint64_t at = cur.offset();
    auto key = cur.read_string("metadata key");
    if (!key) return std::unexpected(key.error());
    if (key->empty()) return cur.fail(at, "metadata key {} is empty", k);
    auto type = cur.read<uint32_t>("metadata value type");
    if (!type) return std::unexpected(type.error());
    if (!valid_type(*type)) return cur.fail(at, "key '{}' has unknown value type {}", *key, *type);
    auto value = read_value(cur, static_cast<GgufType>(*type), *key, 0);
    if (!value) return std::unexpected(value.error());
    if (file.kv_index_.count(*key)) return cur.fail(at, "duplicate metadata key '{}'", *key);
    file.kv_index_.emplace(*key, file.kv_.size());
    file.kv_.emplace_back(*key, std::move(*value));
  }

  if (const GgufValue* a = file.find("general.alignment")) {
    if (!a->is_integer() || a->u == 0 || a->u > kMaxAlignment || !std::has_single_bit(a->u))
      return make_error(ErrorCode::kCorrupt, "{}: general.alignment must be a power of two up to {}, found {}",
                        name, kMaxAlignment, a->to_string());
    file.alignment_ = a->u;
  }

  file.tensors_.reserve(*n_tensors);
  for (uint64_t t = 0; t < *n_tensors; ++t) {
    const uint64_t at = cur.offset();
    GgufTensorInfo info;
    auto tname = cur.read_string("tensor name");
    if (!tname) return std::unexpected(tname.error());
    info.name = *tname;
    auto n_dims = cur.read<uint32_t>("tensor dimension count");
    if (!n_dims) return std::unexpected(n_dims.error());
    if (*n_dims == 0 || *n_dims > kMaxDims)
      return cur.fail(at, "tensor '{}' has {} dimensions (expected 1..{})", info.name, *n_dims, kMaxDims);
    info.n_dims = static_cast<int>(*n_dims);
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < *n_dims; ++d) {
      auto ne = cur.read<int64_t>("tensor dimension");
      if (!ne) return std::unexpected(ne.error());
      if (*ne <= 0) return cur.fail(at, "tensor '{}' dimension {} is {}", info.name, d, *ne);
      info.ne[d] = *ne;
      if (mul_overflows(n_elements, static_cast<uint64_t>(*ne), &n_elements) ||
          n_elements > uint64_t(std::numeric_limits<int64_t>::max()))
        return cur.fail(at, "tensor '{}' element count overflows", info.name);
    }
    auto type_id = cur.read<uint32_t>("tensor type");
    if (!type_id) return std::unexpected(type_id.error());
    const TypeTraits* traits = type_traits(*type_id);
    if (!traits) return cur.fail(at, "tensor '{}' has unknown type id {}", info.name, *type_id);
    info.type = traits->type;
    if (info.ne[0] % traits->block_size != 0)
      return cur.fail(at, "tensor '{}' of type {} has row length {}, not a multiple of the block size {}",
                      info.name, traits->name, info.ne[0], traits->block_size);
    uint64_t n_bytes = 0;
    if (mul_overflows(n_elements / traits->block_size, traits->block_bytes, &n_bytes))
      return cur.fail(at, "tensor '{}' byte size overflows", info.name);
    info.n_bytes = n_bytes;
    auto offset = cur.read<uint64_t>("tensor data offset");
    if (!offset) return std::unexpected(offset.error());
    if (*offset % file.alignment_ != 0)
      return cur.fail(at, "tensor '{}' data offset {} is not a multiple of the alignment {}", info.name, *offset,
                      file.alignment_);
    info.offset = *offset;
    if (file.tensor_index_.count(info.name)) return cur.fail(at, "duplicate tensor name '{}'", info.name);
    file.tensor_index_.emplace(info.name, file.tensors_.size());
    file.tensors_.push_back(info);
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t header_end = cur.offset();
  uint64_t data_offset = (header_end + file.alignment_ - 1) / file.alignment_ * file.alignment_;
  if (file.tensors_.empty()) data_offset = std::min<uint64_t>(data_offset, bytes.size());
  if (data_offset > bytes.size())
    return make_error(ErrorCode::kCorrupt, "{}: at offset {}: data section would start at {}, past the end of the file ({} bytes)",
                      name, header_end, data_offset, bytes.size());
  file.parts_[0].data_offset = data_offset;
  const uint64_t data_size = bytes.size() - data_offset;
  // Tensors must lie inside the data section and must not overlap.
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(file.tensors_.size());
  for (const auto& info : file.tensors_) {
    if (info.offset > data_size || info.n_bytes > data_size - info.offset)
      return make_error(ErrorCode::kCorrupt,
                        "{}: tensor '{}' ({} bytes at data offset {}, file offset {}) extends past the end of the file "
                        "({} bytes); the file is truncated or corrupt",
                        name, info.name, info.n_bytes, info.offset, data_offset + info.offset, bytes.size());
    by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->offset + by_offset[i - 1]->n_bytes > by_offset[i]->offset)
      return make_error(ErrorCode::kCorrupt, "{}: tensors '{}' and '{}' overlap in the data section", name,
                        by_offset[i - 1]->name, by_offset[i]->name);
  auto split = split_keys(file);
  if (!split) return std::unexpected(std::move(split.error()));
  file.split_count_ = split->count;
  return file;
}

Result<GgufFile> GgufFile::open_one(const std::string& path) {
  auto mapping = MappedFile::open(path);
  if (!mapping) return std::unexpected(std::move(mapping.error()));
  auto owned = std::make_unique<MappedFile>(std::move(*mapping));
  auto file = parse(owned->bytes(), path);
  if (!file) return file;
  file->parts_[0].mapping = std::move(owned);
  return file;
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  auto file = open_one(path);
  if (!file || file->split_count() <= 1) return file;
  auto keys = split_keys(*file);
  if (!keys) return std::unexpected(std::move(keys.error()));
  const uint32_t count = keys->count;
  const auto sn = parse_split_name(path);
  if (!sn || sn->count != count || sn->no != keys->no + 1)
    return make_error(ErrorCode::kCorrupt,
                      "{}: part {} of a model split in {} files, but its name does not end in -{:05d}-of-{:05d}.gguf, "
                      "so the other parts cannot be found (keep gguf-split's file names)",
                      path, keys->no + 1, count, keys->no + 1, count);
  std::vector<GgufFile> parts;
  parts.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    if (i == keys->no) {
      parts.push_back(std::move(*file));
      continue;
    }
    const std::string p = split_name(sn->prefix, i + 1, count);
    std::error_code ec;
    if (!std::filesystem::exists(p, ec))
      return make_error(ErrorCode::kNotFound,
                        "{}: the model is split in {} files and part {} ({}) is missing; all parts must be in the "
                        "same folder (download them all)",
                        path, count, i + 1, p);
    auto part = open_one(p);
    if (!part) return std::unexpected(std::move(part.error()));
    parts.push_back(std::move(*part));
  }
  return join(std::move(parts));
}

Result<GgufFile> GgufFile::join(std::vector<GgufFile> parts) {
  if (parts.empty()) return make_error(ErrorCode::kInvalidArgument, "no GGUF parts to join");
  const uint32_t count = static_cast<uint32_t>(parts.size());
  for (uint32_t i = 0; i < count; ++i) {
    auto keys = split_keys(parts[i]);
    if (!keys) return std::unexpected(std::move(keys.error()));
    if (count == 1 && keys->count <= 1) return std::move(parts[0]);
    if (keys->count != count || keys->no != i)
      return make_error(ErrorCode::kCorrupt,
                        "{}: expected part {} of {} of a split model, but its metadata says part {} of {} "
                        "(split.no / split.count); the parts do not belong together",
                        parts[i].name(), i + 1, count, keys->no + 1, keys->count);
  }
  GgufFile out = std::move(parts[0]);
  for (uint32_t i = 1; i < count; ++i) {
    GgufFile& p = parts[i];
    for (GgufTensorInfo info : p.tensors_) {
      if (out.tensor_index_.count(info.name))
        return make_error(ErrorCode::kCorrupt, "{}: tensor '{}' is also in an earlier part of the split model",
                          p.name(), info.name);
      info.part = static_cast<uint32_t>(out.parts_.size());
      out.tensor_index_.emplace(info.name, out.tensors_.size());
      out.tensors_.push_back(info);
    }
    out.parts_.push_back(std::move(p.parts_[0]));
  }
  // split.tensors.count is written to every part by gguf-split; the first
  // part's is checked against what the parts hold.
  if (const GgufValue* n = out.find("split.tensors.count")) {
    if (!n->is_integer() || n->i < 0 || static_cast<uint64_t>(n->i) != out.tensors_.size())
      return make_error(ErrorCode::kCorrupt, "{}: split.tensors.count is {} but the {} parts hold {} tensors",
                        out.name(), n->to_string(), count, out.tensors_.size());
  }
  return out;
}

uint64_t GgufFile::file_size() const {
  uint64_t n = 0;
  for (const Part& p : parts_) n += p.bytes.size();
  return n;
}

std::optional<GgufSplitName> parse_split_name(std::string_view path) {
  // PREFIX-NNNNN-of-NNNNN.gguf: 5 digits each (more when a count needs them).
  constexpr std::string_view kExt = ".gguf";
  if (!path.ends_with(kExt)) return std::nullopt;
  std::string_view s = path.substr(0, path.size() - kExt.size());
  auto digits_back = [](std::string_view t, size_t& n) {
    n = 0;
    while (n < t.size() && t[t.size() - 1 - n] >= '0' && t[t.size() - 1 - n] <= '9') ++n;
    return n >= 5 && n <= 9;
  };
  size_t n_count = 0, n_no = 0;
  if (!digits_back(s, n_count)) return std::nullopt;
  const std::string_view count_str = s.substr(s.size() - n_count);
  s.remove_suffix(n_count);
  if (!s.ends_with("-of-")) return std::nullopt;
  s.remove_suffix(4);
  if (!digits_back(s, n_no)) return std::nullopt;
  const std::string_view no_str = s.substr(s.size() - n_no);
  s.remove_suffix(n_no);
  if (!s.ends_with("-") || s.size() < 2) return std::nullopt;
  s.remove_suffix(1);
  GgufSplitName out;
  out.prefix = std::string(s);
  for (char c : no_str) out.no = out.no * 10 + static_cast<uint32_t>(c - '0');
  for (char c : count_str) out.count = out.count * 10 + static_cast<uint32_t>(c - '0');
  if (out.no == 0 || out.count == 0 || out.no > out.count) return std::nullopt;
  return out;
}

std::string split_name(std::string_view prefix, uint32_t no, uint32_t count) {
  return fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, no, count);
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

TensorView GgufFile::view(const GgufTensorInfo& info) const {
  TensorView v;
  v.name = info.name;
  v.type = info.type;
  v.n_dims = info.n_dims;
  v.ne = info.ne;
  const Part& p = parts_[info.part];
  v.data = p.bytes.subspan(p.data_offset + info.offset, info.n_bytes);
  return v;
}

std::string GgufFile::arch_key(std::string_view suffix) const {
  auto arch = architecture();
  return fmt::format("{}.{}", arch ? *arch : std::string_view("unknown"), suffix);
}

// ---- typed access ----

namespace {
std::unexpected<Error> missing(const GgufFile& f, std::string_view key, std::string_view expected) {
  return make_error(ErrorCode::kNotFound, "{}: metadata key '{}' ({}) is missing", f.name(), key, expected);
}
std::unexpected<Error> mistyped(const GgufFile& f, std::string_view key, std::string_view expected,
                                const GgufValue& v) {
  std::string found(gguf_type_name(v.type));
  if (v.type == GgufType::kArray) found = fmt::format("array of {}", gguf_type_name(v.elem_type));
  return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' should be {} but is {}", f.name(), key, expected, found);
}
bool is_signed(GgufType t) {
  return t == GgufType::kInt8 || t == GgufType::kInt16 || t == GgufType::kInt32 || t == GgufType::kInt64;
}
}  // namespace

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kUint16: case GgufType::kInt16:
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kUint64: case GgufType::kInt64: return true;
    default: return false;
  }
}

Result<uint64_t> GgufFile::get_u64(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(*this, key, "an unsigned integer");
  if (!v->is_integer()) return mistyped(*this, key, "an unsigned integer", *v);
  if (is_signed(v->type)) {
    if (v->i < 0)
      return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' is {}, expected a non-negative integer", name(), key, v->i);
    return static_cast<uint64_t>(v->i);
  }
  return v->u;
}

Result<uint32_t> GgufFile::get_u32(std::string_view key) const {
  auto v = get_u64(key);
  if (!v) return std::unexpected(v.error());
  if (*v > std::numeric_limits<uint32_t>::max())
    return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' is {}, too large for 32 bits", name(), key, *v);
  return static_cast<uint32_t>(*v);
}

Result<int64_t> GgufFile::get_i64(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(*this, key, "an integer");
  if (!v->is_integer()) return mistyped(*this, key, "an integer", *v);
  if (is_signed(v->type)) return v->i;
  if (v->u > uint64_t(std::numeric_limits<int64_t>::max()))
    return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' is {}, too large", name(), key, v->u);
  return static_cast<int64_t>(v->u);
}

Result<float> GgufFile::get_f32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(*this, key, "a float");
  if (v->is_float()) return static_cast<float>(v->f);
  if (v->is_integer()) return static_cast<float>(is_signed(v->type) ? double(v->i) : double(v->u));
  return mistyped(*this, key, "a float", *v);
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(*this, key, "a bool");
  if (v->type != GgufType::kBool) return mistyped(*this, key, "a bool", *v);
  return v->u != 0;
}

Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(*this, key, "a string");
  if (v->type != GgufType::kString) return mistyped(*this, key, "a string", *v);
  return v->str;
}

Result<std::span<const std::string_view>> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(*this, key, "an array of strings");
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString)
    return mistyped(*this, key, "an array of strings", *v);
  return std::span<const std::string_view>(v->strs);
}

Result<std::vector<float>> GgufFile::get_f32_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(*this, key, "an array of numbers");
  if (v->type != GgufType::kArray || v->elem_type == GgufType::kString || v->elem_type == GgufType::kArray)
    return mistyped(*this, key, "an array of numbers", *v);
  std::vector<float> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i) out[i] = static_cast<float>(v->array_f64(i));
  return out;
}

Result<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(*this, key, "an array of integers");
  if (v->type != GgufType::kArray || v->elem_type == GgufType::kString || v->elem_type == GgufType::kArray ||
      v->elem_type == GgufType::kFloat32 || v->elem_type == GgufType::kFloat64)
    return mistyped(*this, key, "an array of integers", *v);
  std::vector<int64_t> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i) out[i] = v->array_i64(i);
  return out;
}

Result<uint64_t> GgufFile::get_u64_or(std::string_view key, uint64_t dflt) const {
  return has(key) ? get_u64(key) : Result<uint64_t>(dflt);
}
Result<float> GgufFile::get_f32_or(std::string_view key, float dflt) const {
  return has(key) ? get_f32(key) : Result<float>(dflt);
}
Result<bool> GgufFile::get_bool_or(std::string_view key, bool dflt) const {
  return has(key) ? get_bool(key) : Result<bool>(dflt);
}
Result<std::string_view> GgufFile::get_string_or(std::string_view key, std::string_view dflt) const {
  return has(key) ? get_string(key) : Result<std::string_view>(dflt);
}

}  // namespace codey
