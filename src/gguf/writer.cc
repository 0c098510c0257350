// Streaming GGUF v3 writer: header, metadata and tensor infos first, then each
// tensor's data in declaration order, aligned; multi-GB files never sit in memory.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "codey/gguf.h"

namespace codey {
namespace {

constexpr uint32_t kMagic = 0x46554747;

class Out {
 public:
  explicit Out(std::FILE* f) : f_(f) {}
  bool ok() const { return ok_; }
  void bytes(const void* p, size_t n) {
    if (ok_ && n && std::fwrite(p, 1, n, f_) != n) ok_ = false;
  }
  template <class T>
  void pod(T v) { bytes(&v, sizeof(v)); }
  void str(std::string_view s) {
    pod<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }

 private:
  std::FILE* f_;
  bool ok_ = true;
};

void write_value(Out& out, const GgufValue& v, bool with_type) {
  if (with_type) out.pod<uint32_t>(static_cast<uint32_t>(v.type));
  switch (v.type) {
    case GgufType::kUint8: out.pod<uint8_t>(static_cast<uint8_t>(v.u)); break;
    case GgufType::kInt8: out.pod<int8_t>(static_cast<int8_t>(v.i)); break;
    case GgufType::kUint16: out.pod<uint16_t>(static_cast<uint16_t>(v.u)); break;
    case GgufType::kInt16: out.pod<int16_t>(static_cast<int16_t>(v.i)); break;
    case GgufType::kUint32: out.pod<uint32_t>(static_cast<uint32_t>(v.u)); break;
    case GgufType::kInt32: out.pod<int32_t>(static_cast<int32_t>(v.i)); break;
    case GgufType::kUint64: out.pod<uint64_t>(v.u); break;
    case GgufType::kInt64: out.pod<int64_t>(v.i); break;
    case GgufType::kFloat32: out.pod<float>(static_cast<float>(v.f)); break;
    case GgufType::kFloat64: out.pod<double>(v.f); break;
    case GgufType::kBool: out.pod<uint8_t>(v.u ? 1 : 0); break;
    case GgufType::kString: out.str(v.str); break;
    case GgufType::kArray:
      out.pod<uint32_t>(static_cast<uint32_t>(v.elem_type));
      out.pod<uint64_t>(v.count);
      if (v.elem_type == GgufType::kString) {
        for (auto s : v.strs) out.str(s);
      } else if (v.elem_type == GgufType::kArray) {
        for (const auto& item : v.items) write_value(out, item, false);
      } else {
        out.bytes(v.raw.data(), v.raw.size());
      }
      break;
  }
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

GgufWriter::~GgufWriter() {
  if (out_) std::fclose(out_);
}

void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& [k, v] : kv_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  kv_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::remove(std::string_view key) {
  std::erase_if(kv_, [&](const auto& kv) { return kv.first == key; });
}

void GgufWriter::set_alignment(uint64_t alignment) {
  CODEY_ASSERT(alignment > 0 && alignment <= 4096 && (alignment & (alignment - 1)) == 0);
  alignment_ = alignment;
  set("general.alignment", GgufValue::make_u32(static_cast<uint32_t>(alignment)));
}

void GgufWriter::add_tensor(std::string name, TensorType type, std::span<const int64_t> ne) {
  CODEY_ASSERT(out_ == nullptr);  // tensors are declared before begin()
  CODEY_ASSERT(!ne.empty() && ne.size() <= size_t(kMaxDims));
  GgufTensorInfo info;
  info.type = type;
  info.n_dims = static_cast<int>(ne.size());
  int64_t n = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    info.ne[d] = ne[d];
    n *= ne[d];
  }
  const auto& tr = type_traits(type);
  CODEY_ASSERT(ne[0] % tr.block_size == 0);
  info.n_bytes = static_cast<uint64_t>(n / tr.block_size) * tr.block_bytes;
  info.offset = tensors_.empty() ? 0 : align_up(tensors_.back().offset + tensors_.back().n_bytes, alignment_);
  tensor_names_.push_back(std::move(name));
  tensors_.push_back(info);
}

Status GgufWriter::begin(const std::string& path) {
  CODEY_ASSERT(out_ == nullptr);
  for (const auto& [k, v] : kv_)  // metadata copied from another file may carry it
    if (k == "general.alignment" && v.is_integer() && v.u > 0 && v.u <= 4096 && (v.u & (v.u - 1)) == 0)
      alignment_ = v.u;
  // Offsets depend on the alignment; recompute in case it changed after add_tensor.
  for (size_t i = 0; i < tensors_.size(); ++i)
    tensors_[i].offset = i == 0 ? 0 : align_up(tensors_[i - 1].offset + tensors_[i - 1].n_bytes, alignment_);
  for (size_t i = 0; i < tensors_.size(); ++i) tensors_[i].name = tensor_names_[i];
  path_ = path;
  out_ = std::fopen(path.c_str(), "wb");
  if (!out_) return make_error(ErrorCode::kIo, "cannot create {}: {}", path, std::strerror(errno));
  Out out(out_);
  out.pod<uint32_t>(kMagic);
  out.pod<uint32_t>(3);
  out.pod<uint64_t>(tensors_.size());
  out.pod<uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) {
    out.str(k);
    write_value(out, v, true);
  }
  for (const auto& info : tensors_) {
    out.str(info.name);
    out.pod<uint32_t>(static_cast<uint32_t>(info.n_dims));
    for (int d = 0; d < info.n_dims; ++d) out.pod<int64_t>(info.ne[d]);
    out.pod<uint32_t>(static_cast<uint32_t>(info.type));
    out.pod<uint64_t>(info.offset);
  }
  long pos = std::ftell(out_);
  if (pos < 0 || !out.ok()) return make_error(ErrorCode::kIo, "writing {} failed: {}", path, std::strerror(errno));
  const uint64_t pad = align_up(static_cast<uint64_t>(pos), alignment_) - static_cast<uint64_t>(pos);
  static const uint8_t zeros[4096] = {};
  out.bytes(zeros, pad);
  if (!out.ok()) return make_error(ErrorCode::kIo, "writing {} failed: {}", path, std::strerror(errno));
  next_tensor_ = 0;
  written_ = 0;
  return {};
}

Status GgufWriter::write_tensor_data(std::span<const uint8_t> data) {
  if (next_tensor_ < tensors_.size() && (current_written_ != 0 || data.size() != tensors_[next_tensor_].n_bytes))
    return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}' needs {} bytes, got {}", path_,
                      tensors_[next_tensor_].name, tensors_[next_tensor_].n_bytes, data.size());
  return write_tensor_chunk(data);
}

Status GgufWriter::write_tensor_chunk(std::span<const uint8_t> data) {
  CODEY_ASSERT(out_ != nullptr);
  if (next_tensor_ >= tensors_.size())
    return make_error(ErrorCode::kInvalidArgument, "{}: more tensor data than declared tensors", path_);
  const auto& info = tensors_[next_tensor_];
  if (current_written_ + data.size() > info.n_bytes)
    return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}' needs {} bytes, got {}", path_, info.name,
                      info.n_bytes, current_written_ + data.size());
  Out out(out_);
  if (current_written_ == 0) {
    static const uint8_t zeros[4096] = {};
    CODEY_ASSERT(info.offset >= written_ && info.offset - written_ <= sizeof(zeros));
    out.bytes(zeros, info.offset - written_);
    written_ = info.offset;
  }
  out.bytes(data.data(), data.size());
  if (!out.ok()) return make_error(ErrorCode::kIo, "writing {} failed: {}", path_, std::strerror(errno));
  written_ += data.size();
  current_written_ += data.size();
  if (current_written_ == info.n_bytes) {
    ++next_tensor_;
    current_written_ = 0;
  }
  return {};
}

Status GgufWriter::finish() {
  CODEY_ASSERT(out_ != nullptr);
  if (next_tensor_ != tensors_.size())
    return make_error(ErrorCode::kInvalidArgument, "{}: {} of {} declared tensors were written", path_, next_tensor_,
                      tensors_.size());
  // Pad the data section to the alignment, as the reference writer does.
  Out out(out_);
  static const uint8_t zeros[4096] = {};
  out.bytes(zeros, align_up(written_, alignment_) - written_);
  const bool flushed = out.ok() && std::fflush(out_) == 0;
  const bool closed = std::fclose(out_) == 0;
  out_ = nullptr;
  if (!flushed || !closed) return make_error(ErrorCode::kIo, "writing {} failed: {}", path_, std::strerror(errno));
  return {};
}

}  // namespace codey
