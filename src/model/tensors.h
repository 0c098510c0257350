// Loading an architecture's tensors: the checked lookups (shape, type) an
// arch's load_layer hook uses, the shared default that loads every entry of
// its table, and short constructors for writing such tables.
#pragma once

#include <string>
#include <vector>

#include "codey/model.h"

namespace codey {

// Finds tensors by name in a parsed file and binds them to weight slots,
// checking shape and type. Errors name the tensor and what was expected.
// Views point into the file; 1-D tensors stored in a type other than f32
// are decoded once into storage owned by the model.
class TensorLoader {
 public:
  TensorLoader(const GgufFile& file, const HParams& hp, std::vector<std::vector<float>>& owned_f32)
      : file_(file), hp_(hp), owned_f32_(owned_f32) {}

  const HParams& hp() const { return hp_; }
  const GgufFile& file() const { return file_; }

  // A matrix [rows][cols] (ggml [cols, rows]) in a type the kernels multiply.
  // Absent and not required: `out` is left empty (data null).
  Status matrix(const std::string& name, int64_t rows, int64_t cols, bool required, kernels::Matrix& out);
  // A 1-D vector of n values as f32. Absent and not required: nullptr.
  Status vector(const std::string& name, int64_t n, bool required, const float*& out);
  // A 3-D tensor [n][rows][cols] (ggml [cols, rows, n]): one matrix per
  // slice (a mixture's experts). Absent and not required: `out` is empty.
  Status experts(const std::string& name, int64_t n, int64_t rows, int64_t cols, bool required,
                 std::vector<kernels::Matrix>& out);

  // The shared default of ArchSpec::load_layer: every entry of the table,
  // named "blk.<il>.<entry name>", into its slot of L.
  Status load_table(std::span<const LayerTensor> table, int64_t il, LayerWeights& L);

 private:
  const GgufFile& file_;
  const HParams& hp_;
  std::vector<std::vector<float>>& owned_f32_;
};

// Every matrix slot of LayerWeights (a new slot is added here once).
constexpr kernels::Matrix LayerWeights::*kMatrixSlots[] = {
    &LayerWeights::wq,       &LayerWeights::wk,     &LayerWeights::wv,       &LayerWeights::wo,
    &LayerWeights::ffn_gate, &LayerWeights::ffn_up, &LayerWeights::ffn_down, &LayerWeights::ffn_gate_inp,
};
constexpr std::vector<kernels::Matrix> LayerWeights::*kExpertSlots[] = {
    &LayerWeights::ffn_gate_exps, &LayerWeights::ffn_up_exps, &LayerWeights::ffn_down_exps};

// fn(matrix, layer, expert) for every matrix the file has, layer by layer,
// then the output matrix (layer -1): the order of ModelWeights::matrices().
// W is ModelWeights or const ModelWeights.
template <class W, class Fn>
void for_each_matrix(W& w, Fn&& fn) {
  for (size_t il = 0; il < w.layers.size(); ++il) {
    auto& L = w.layers[il];
    for (auto slot : kMatrixSlots)
      if ((L.*slot).data) fn(L.*slot, static_cast<int64_t>(il), false);
    for (auto slot : kExpertSlots)
      for (auto& m : L.*slot) fn(m, static_cast<int64_t>(il), true);
  }
  fn(w.output, int64_t{-1}, false);
}

// Table entries (ArchSpec::layer_tensors), e.g.
//   tensors::matrix("attn_q.weight", Dim::kEmbd, Dim::kQ, &LayerWeights::wq)
// Shapes are in ggml order: the row length (input features) first.
namespace tensors {

constexpr bool kOptional = false;

constexpr LayerTensor matrix(std::string_view name, Dim ne0, Dim ne1, kernels::Matrix LayerWeights::*slot,
                             bool required = true) {
  LayerTensor t;
  t.name = name;
  t.ne = {ne0, ne1, Dim::kOne};
  t.required = required;
  t.matrix = slot;
  t.init = TensorInit::kWeight;
  return t;
}

// A 3-D tensor [n_expert][ne1][ne0]: one matrix per expert.
constexpr LayerTensor experts(std::string_view name, Dim ne0, Dim ne1,
                              std::vector<kernels::Matrix> LayerWeights::*slot) {
  LayerTensor t;
  t.name = name;
  t.ne = {ne0, ne1, Dim::kExpert};
  t.experts = slot;
  t.init = TensorInit::kWeight;
  return t;
}

constexpr LayerTensor norm(std::string_view name, Dim n, const float* LayerWeights::*slot, bool required = true) {
  LayerTensor t;
  t.name = name;
  t.ne = {n, Dim::kOne, Dim::kOne};
  t.required = required;
  t.vector = slot;
  t.init = TensorInit::kNorm;
  return t;
}

constexpr LayerTensor bias(std::string_view name, Dim n, const float* LayerWeights::*slot, bool required = true) {
  LayerTensor t = norm(name, n, slot, required);
  t.init = TensorInit::kBias;
  return t;
}

}  // namespace tensors

}  // namespace codey
