// GGUF files (v2, v3): a bounds-checked reader that is a pure function over
// the bytes, typed metadata access, and a streaming writer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codey/base.h"
#include "codey/tensor.h"

namespace codey {

// GGUF metadata value types (the on-disk ids).
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// One metadata value. Scalars are held decoded; strings are views into the
// file bytes (or into `owned_` for values built in memory, e.g. for writing).
// Arrays of scalars keep a view of their little-endian bytes; arrays of
// strings a vector of views; nested arrays a vector of values.
class GgufValue {
 public:
  GgufType type = GgufType::kUint8;
  // scalar payloads
  uint64_t u = 0;   // all unsigned ints and bool
  int64_t i = 0;    // all signed ints
  double f = 0;     // float32/float64
  std::string_view str;
  // arrays
  GgufType elem_type = GgufType::kUint8;
  uint64_t count = 0;
  std::span<const uint8_t> raw;          // scalar arrays: count * size(elem) bytes
  std::vector<std::string_view> strs;    // string arrays
  std::vector<GgufValue> items;          // nested arrays

  // Builders for in-memory values (the writer); the value owns its text.
  static GgufValue make_u32(uint32_t v);
  static GgufValue make_i32(int32_t v);
  static GgufValue make_u64(uint64_t v);
  static GgufValue make_f32(float v);
  static GgufValue make_bool(bool v);
  static GgufValue make_string(std::string v);
  static GgufValue make_scalar(GgufType t, uint64_t u, int64_t i, double f);
  static GgufValue make_string_array(std::vector<std::string> v);
  template <class T>
  static GgufValue make_array(GgufType elem, std::span<const T> v);

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
  // Scalar array element i, converted (no bounds check beyond CODEY_ASSERT).
  double array_f64(uint64_t idx) const;
  int64_t array_i64(uint64_t idx) const;
  // Human-readable, arrays abbreviated after `max_items`.
  std::string to_string(size_t max_items = 8) const;

  std::shared_ptr<std::string> owned_;                 // backing for str (built values)
  std::shared_ptr<std::vector<std::string>> owned_strs_;
  std::shared_ptr<std::vector<uint8_t>> owned_raw_;
};

struct GgufTensorInfo {
  std::string_view name;
  TensorType type = TensorType::kF32;
  int n_dims = 0;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};
  uint64_t offset = 0;   // relative to the data section of its part
  uint64_t n_bytes = 0;  // computed from type and shape
  uint32_t part = 0;     // the file holding the data (split models: 0 .. n_parts-1)
};

// Models cut into several files by gguf-split: "PREFIX-00001-of-00003.gguf"
// (numbers 1-based in the name, split.no 0-based in the metadata). The first
// part holds all metadata; every part holds split.no / split.count and its
// own tensors (the first may hold none).
struct GgufSplitName {
  std::string prefix;  // the path up to "-00001-of-00003.gguf"
  uint32_t no = 0;     // 1-based, as in the name
  uint32_t count = 0;
};
std::optional<GgufSplitName> parse_split_name(std::string_view path);
std::string split_name(std::string_view prefix, uint32_t no, uint32_t count);

// A parsed GGUF model: one file, or every part of a split model. Holds views
// into the bytes it was parsed from; when opened from a path it owns the
// mappings, so the views stay valid as long as this object (move-only) lives.
class GgufFile {
 public:
  // Pure parse of one file's bytes; `name` is used in error messages only.
  // Never crashes or allocates beyond a bound proportional to the input.
  static Result<GgufFile> parse(std::span<const uint8_t> bytes, std::string_view name);
  // mmap + parse; the result owns the mappings. A part of a split model
  // (split.count > 1; any part may be named) opens every part from the same
  // folder; a missing or mismatched part is an error naming it.
  static Result<GgufFile> open(const std::string& path);
  // Joins the parsed parts of a split model, in order (pure): checks
  // split.no / split.count of each and split.tensors.count, keeps the first
  // part's metadata and every part's tensors. One unsplit file passes through.
  static Result<GgufFile> join(std::vector<GgufFile> parts);

  GgufFile(GgufFile&&) = default;
  GgufFile& operator=(GgufFile&&) = default;

  // One file of the model.
  struct Part {
    std::string name;
    std::span<const uint8_t> bytes;
    uint64_t data_offset = 0;
    std::unique_ptr<MappedFile> mapping;  // null when parsed from the caller's bytes
  };
  size_t n_parts() const { return parts_.size(); }
  const Part& part(size_t i) const { return parts_[i]; }
  // split.count the first part declares (1 for an unsplit file); more than
  // n_parts() when only some parts were parsed (parse() of one part).
  uint32_t split_count() const { return split_count_; }

  uint32_t version() const { return version_; }
  const std::string& name() const { return parts_[0].name; }
  uint64_t alignment() const { return alignment_; }
  // Bytes of all parts.
  uint64_t file_size() const;

  // Metadata in file order.
  const std::vector<std::pair<std::string_view, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed access; errors name the key, the expected and the found type.
  // Integer getters accept any integer type whose value fits.
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<int64_t> get_i64(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;  // accepts float32/float64
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  Result<std::span<const std::string_view>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_f32_array(std::string_view key) const;
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;
  // With a default when the key is absent (mistyped is still an error).
  Result<uint64_t> get_u64_or(std::string_view key, uint64_t dflt) const;
  Result<float> get_f32_or(std::string_view key, float dflt) const;
  Result<bool> get_bool_or(std::string_view key, bool dflt) const;
  Result<std::string_view> get_string_or(std::string_view key, std::string_view dflt) const;

  // "general.architecture", and "<arch>.<suffix>" helpers.
  Result<std::string_view> architecture() const { return get_string("general.architecture"); }
  std::string arch_key(std::string_view suffix) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // A view of a tensor's bytes (in the data section, bounds already checked).
  TensorView view(const GgufTensorInfo& info) const;

 private:
  GgufFile() = default;
  static Result<GgufFile> open_one(const std::string& path);  // one file, mapped; no split handling
  std::vector<Part> parts_;  // at least one
  uint32_t version_ = 0;
  uint32_t split_count_ = 1;
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string_view, GgufValue>> kv_;
  std::map<std::string_view, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string_view, size_t, std::less<>> tensor_index_;
};

// Streaming GGUF v3 writer: declare metadata and tensors, then write tensor
// data in declaration order. Never holds more than one tensor's data.
class GgufWriter {
 public:
  GgufWriter() = default;
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Replaces an existing key of the same name, keeping its position.
  void set(std::string key, GgufValue value);
  void remove(std::string_view key);
  void set_alignment(uint64_t alignment);  // also written as general.alignment
  void add_tensor(std::string name, TensorType type, std::span<const int64_t> ne);

  // Writes header, metadata and tensor infos to `path` (created/truncated).
  Status begin(const std::string& path);
  // Data of the next declared tensor, exactly its n_bytes.
  Status write_tensor_data(std::span<const uint8_t> data);
  // Part of the current tensor's data; tensors may be written in any number
  // of chunks, which move to the next tensor once n_bytes were written.
  Status write_tensor_chunk(std::span<const uint8_t> data);
  // Pads, flushes, closes; fails if a declared tensor was not written.
  Status finish();

  size_t n_tensors() const { return tensors_.size(); }
  const GgufTensorInfo& tensor(size_t i) const { return tensors_[i]; }

 private:
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<std::string> tensor_names_;
  std::vector<GgufTensorInfo> tensors_;
  uint64_t alignment_ = 32;
  std::FILE* out_ = nullptr;
  std::string path_;
  size_t next_tensor_ = 0;
  uint64_t written_ = 0;  // bytes of the data section written so far
  uint64_t current_written_ = 0;  // bytes of tensors_[next_tensor_] written so far
};

}  // namespace codey

namespace codey {

// What a user wants to know about a model file before loading it (`codey
// inspect`, the runtime's memory estimate). Hyper-parameters are read from
// "<arch>.*" keys; absent ones are 0.
struct GgufSummary {
  std::string path;
  std::string architecture;
  std::string name;
  uint32_t version = 0;
  uint64_t n_layer = 0, n_embd = 0, n_head = 0, n_head_kv = 0, head_dim = 0, head_dim_v = 0, n_ff = 0;
  uint64_t n_vocab = 0, n_ctx_train = 0;
  float rope_freq_base = 0;
  uint64_t sliding_window = 0;
  uint64_t n_expert = 0, n_expert_used = 0, n_ff_exp = 0;  // mixtures of experts
  std::string tokenizer_model, tokenizer_pre;
  bool has_chat_template = false;
  uint64_t file_type = 0;  // general.file_type when present
  uint64_t file_size = 0;  // all parts
  uint32_t n_files = 1;    // parts of a split model
  uint64_t n_params = 0;          // elements of all tensors
  uint64_t tensor_bytes = 0;      // bytes of all tensor data (what gets mapped)
  // Tied embeddings (no output.weight) in a quantized type: the bytes of the
  // output matrix's own repacked copy at load (token_embd stays mapped for
  // the row lookups). 0 otherwise.
  uint64_t tied_output_copy_bytes = 0;
  std::vector<std::pair<TensorType, uint64_t>> tensors_by_type;  // type -> count
  double bits_per_weight() const { return n_params ? 8.0 * double(tensor_bytes) / double(n_params) : 0; }
};
Result<GgufSummary> summarize(const GgufFile& file);
// general.file_type (llama_ftype) as its name: 15 -> "Q4_K_M"; "unknown".
std::string_view file_type_name(uint64_t file_type);

// Memory a model needs at a context: mapped weights + KV cache + scratch.
struct MemoryEstimate {
  uint64_t n_ctx = 0;
  uint64_t n_seq = 1;
  TensorType kv_type = TensorType::kF16;
  uint64_t weights = 0;  // mapped tensor data
  uint64_t kv_cache = 0; // n_layer x n_ctx x n_head_kv x (head_dim_k + head_dim_v) x bytes/elem
  uint64_t scratch = 0;  // activations and logits for one batch (stated estimate)
  uint64_t total() const { return weights + kv_cache + scratch; }
};
// kv_type is F16, BF16, F32 or Q8_0. n_batch: tokens per forward pass.
MemoryEstimate estimate_memory(const GgufSummary& s, uint64_t n_ctx, TensorType kv_type = TensorType::kF16,
                               uint64_t n_seq = 1, uint64_t n_batch = 512);

}  // namespace codey
