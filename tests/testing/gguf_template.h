// A copy of a GGUF model with another chat template, for tests of what a
// model file's template may do (tool formats, hostile templates).
#pragma once

#include <gtest/gtest.h>

#include <span>
#include <string>

#include "codey/gguf.h"

namespace codey::testing {

// A copy of a GGUF file with another chat template.
inline void copy_with_template(const std::string& src, const std::string& dst, const std::string& templ) {
  auto f = GgufFile::open(src);
  ASSERT_TRUE(f.has_value()) << f.error().message;
  GgufWriter w;
  for (const auto& [k, v] : f->metadata()) w.set(std::string(k), v);
  w.set("tokenizer.chat_template", GgufValue::make_string(templ));
  w.set_alignment(f->alignment());
  for (const auto& t : f->tensors()) w.add_tensor(std::string(t.name), t.type, std::span(t.ne.data(), size_t(t.n_dims)));
  ASSERT_TRUE(w.begin(dst).has_value());
  for (const auto& t : f->tensors()) ASSERT_TRUE(w.write_tensor_data(f->view(t).data).has_value());
  ASSERT_TRUE(w.finish().has_value());
}

}  // namespace codey::testing
