// libFuzzer target: the GGUF reader must reject or accept any bytes without
// crashing, and every tensor view it returns must lie inside the input.
#include <cstddef>
#include <cstdint>

#include "codey/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = codey::GgufFile::parse({data, size}, "fuzz");
  if (!file) return 0;
  for (const auto& [key, value] : file->metadata()) (void)value.to_string(4);
  for (const auto& t : file->tensors()) {
    codey::TensorView v = file->view(t);
    if (v.data.data() < data || v.data.data() + v.data.size() > data + size) __builtin_trap();
  }
  (void)codey::summarize(*file);
  (void)file->get_string_array("tokenizer.ggml.tokens");
  (void)file->get_f32_array("tokenizer.ggml.scores");
  return 0;
}
