// Test-only (header-only; link codey_gguf): cuts a GGUF file into parts as
// llama.cpp's gguf-split does, so split models can be made from synthesized
// ones: PREFIX-00001-of-0000N.gguf, all metadata in the first part, every part
// with split.no (u16, 0-based), split.count (u16) and split.tensors.count
// (i32), tensors in file order, at most `max_tensors` per part.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codey/gguf.h"

namespace codey::testing {

struct SplitOptions {
  size_t max_tensors = 8;
  bool first_without_tensors = false;  // gguf-split --no-tensor-first-split
};

// Returns the part paths in order (empty after a gtest failure).
inline std::vector<std::string> split_gguf(const std::string& in, const std::string& prefix,
                                           const SplitOptions& o = {}) {
  auto file = GgufFile::open(in);
  EXPECT_TRUE(file.has_value()) << (file ? "" : file.error().message);
  if (!file) return {};
  const auto& tensors = file->tensors();
  std::vector<std::vector<size_t>> groups;
  if (o.first_without_tensors) groups.emplace_back();
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (groups.empty() || groups.back().size() >= o.max_tensors || (o.first_without_tensors && groups.size() == 1))
      groups.emplace_back();
    groups.back().push_back(i);
  }
  const auto count = static_cast<uint32_t>(groups.size());
  std::vector<std::string> paths;
  for (uint32_t p = 0; p < count; ++p) {
    GgufWriter w;
    if (p == 0)
      for (const auto& [k, v] : file->metadata()) w.set(std::string(k), v);
    w.set("split.no", GgufValue::make_scalar(GgufType::kUint16, p, p, 0));
    w.set("split.count", GgufValue::make_scalar(GgufType::kUint16, count, count, 0));
    w.set("split.tensors.count", GgufValue::make_i32(static_cast<int32_t>(tensors.size())));
    if (file->alignment() != 32) w.set_alignment(file->alignment());
    for (size_t i : groups[p]) {
      const auto& t = tensors[i];
      w.add_tensor(std::string(t.name), t.type, std::span<const int64_t>(t.ne.data(), static_cast<size_t>(t.n_dims)));
    }
    const std::string path = split_name(prefix, p + 1, count);
    auto st = w.begin(path);
    EXPECT_TRUE(st.has_value()) << (st ? "" : st.error().message);
    for (size_t i : groups[p]) {
      auto wr = w.write_tensor_data(file->view(tensors[i]).data);
      EXPECT_TRUE(wr.has_value()) << (wr ? "" : wr.error().message);
    }
    auto fin = w.finish();
    EXPECT_TRUE(fin.has_value()) << (fin ? "" : fin.error().message);
    paths.push_back(path);
  }
  return paths;
}

}  // namespace codey::testing
