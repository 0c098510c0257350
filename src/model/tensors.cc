// The tensors of a model: dimension names resolved against the
// hyper-parameters, the checked loads behind every architecture's table, the
// whole-model list that `codey synth` and the test models write, and the
// one list of weight matrices (ModelWeights::matrices).
#include "model/tensors.h"

namespace codey {

int64_t dim_size(Dim d, const HParams& hp) {
  switch (d) {
    case Dim::kOne: return 1;
    case Dim::kEmbd: return hp.n_embd;
    case Dim::kVocab: return hp.n_vocab;
    case Dim::kFf: return hp.n_ff;
    case Dim::kHeadK: return hp.head_dim_k;
    case Dim::kQ: return hp.n_head * hp.head_dim_k;
    case Dim::kK: return hp.n_head_kv * hp.head_dim_k;
    case Dim::kV: return hp.n_head_kv * hp.head_dim_v;
    case Dim::kAttnOut: return hp.n_head * hp.head_dim_v;
    case Dim::kRopeFreqs: return hp.n_rot / 2;
    case Dim::kExpert: return hp.n_expert;
    case Dim::kFfExp: return hp.n_ff_exp;
  }
  return 0;
}

Status TensorLoader::matrix(const std::string& name, int64_t rows, int64_t cols, bool required,
                            kernels::Matrix& out) {
  const GgufTensorInfo* info = file_.find_tensor(name);
  if (!info) {
    if (required) return make_error(ErrorCode::kCorrupt, "tensor {} is missing", name);
    return {};
  }
  if (info->n_dims != 2 || info->ne[0] != cols || info->ne[1] != rows)
    return make_error(ErrorCode::kCorrupt, "tensor {} has shape [{}, {}], expected [{}, {}]", name, info->ne[0],
                      info->ne[1], cols, rows);
  if (!kernels::matmul_supports(info->type))
    return make_error(ErrorCode::kUnsupported, "tensor {} has type {}, which codey does not support yet", name,
                      type_name(info->type));
  out = kernels::Matrix::from_view(file_.view(*info));
  return {};
}

Status TensorLoader::vector(const std::string& name, int64_t n, bool required, const float*& out) {
  out = nullptr;
  const GgufTensorInfo* info = file_.find_tensor(name);
  if (!info) {
    if (required) return make_error(ErrorCode::kCorrupt, "tensor {} is missing", name);
    return {};
  }
  if (info->ne[0] != n || info->ne[1] * info->ne[2] * info->ne[3] != 1)
    return make_error(ErrorCode::kCorrupt, "tensor {} has {} x {} elements, expected a vector of {}", name,
                      info->ne[0], info->ne[1] * info->ne[2] * info->ne[3], n);
  TensorView view = file_.view(*info);
  if (info->type == TensorType::kF32 && reinterpret_cast<uintptr_t>(view.data.data()) % alignof(float) == 0) {
    out = reinterpret_cast<const float*>(view.data.data());
    return {};
  }
  if (!kernels::matmul_supports(info->type))
    return make_error(ErrorCode::kUnsupported, "tensor {} has type {}, which codey does not support yet", name,
                      type_name(info->type));
  auto& buf = owned_f32_.emplace_back(static_cast<size_t>(n));
  kernels::ref_kernel_table().get_row(info->type, view.data.data(), buf.data(), n);
  out = buf.data();
  return {};
}

Status TensorLoader::experts(const std::string& name, int64_t n, int64_t rows, int64_t cols, bool required,
                             std::vector<kernels::Matrix>& out) {
  out.clear();
  const GgufTensorInfo* info = file_.find_tensor(name);
  if (!info) {
    if (required) return make_error(ErrorCode::kCorrupt, "tensor {} is missing", name);
    return {};
  }
  if (info->n_dims != 3 || info->ne[0] != cols || info->ne[1] != rows || info->ne[2] != n)
    return make_error(ErrorCode::kCorrupt, "tensor {} has shape [{}, {}, {}], expected [{}, {}, {}]", name,
                      info->ne[0], info->ne[1], info->ne[2], cols, rows, n);
  if (!kernels::matmul_supports(info->type))
    return make_error(ErrorCode::kUnsupported, "tensor {} has type {}, which codey does not support yet", name,
                      type_name(info->type));
  const TensorView view = file_.view(*info);
  const size_t slice = view.row_size() * static_cast<size_t>(rows);
  out.reserve(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    TensorView v = view;
    v.n_dims = 2;
    v.ne = {cols, rows, 1, 1};
    v.data = view.data.subspan(static_cast<size_t>(e) * slice, slice);
    out.push_back(kernels::Matrix::from_view(v));
  }
  return {};
}

Status TensorLoader::load_table(std::span<const LayerTensor> table, int64_t il, LayerWeights& L) {
  for (const LayerTensor& t : table) {
    const std::string name = fmt::format("blk.{}.{}", il, t.name);
    const int64_t n0 = dim_size(t.ne[0], hp_), n1 = dim_size(t.ne[1], hp_), n2 = dim_size(t.ne[2], hp_);
    if (t.matrix) CODEY_TRY(matrix(name, n1, n0, t.required, L.*t.matrix));
    else if (t.vector) CODEY_TRY(vector(name, n0, t.required, L.*t.vector));
    else if (t.experts) CODEY_TRY(experts(name, n2, n1, n0, t.required, L.*t.experts));
  }
  return {};
}

std::vector<TensorDesc> model_tensors(const ArchSpec& arch, const HParams& hp, bool tied_output,
                                      bool include_optional) {
  auto desc = [&](std::string name, std::array<Dim, 3> dims, bool required, TensorInit init) {
    TensorDesc d{std::move(name), {}, required, init};
    int n = 3;
    while (n > 1 && dims[static_cast<size_t>(n - 1)] == Dim::kOne) --n;
    for (int i = 0; i < n; ++i) d.ne.push_back(dim_size(dims[static_cast<size_t>(i)], hp));
    return d;
  };
  std::vector<TensorDesc> out;
  out.push_back(desc("token_embd.weight", {Dim::kEmbd, Dim::kVocab, Dim::kOne}, true, TensorInit::kOutput));
  for (int64_t il = 0; il < hp.n_layer; ++il)
    for (const LayerTensor& t : arch.layer_tensors)
      if (t.required || include_optional) out.push_back(desc(fmt::format("blk.{}.{}", il, t.name), t.ne, t.required, t.init));
  out.push_back(desc("output_norm.weight", {Dim::kEmbd, Dim::kOne, Dim::kOne}, true, TensorInit::kNorm));
  if (!tied_output) out.push_back(desc("output.weight", {Dim::kEmbd, Dim::kVocab, Dim::kOne}, true, TensorInit::kOutput));
  if (include_optional)
    out.push_back(desc("rope_freqs.weight", {Dim::kRopeFreqs, Dim::kOne, Dim::kOne}, false, TensorInit::kNorm));
  return out;
}

std::vector<WeightMatrix> ModelWeights::matrices() const {
  std::vector<WeightMatrix> out;
  for_each_matrix(*this, [&](const kernels::Matrix& m, int64_t il, bool expert) { out.push_back({&m, il, expert}); });
  return out;
}

}  // namespace codey
