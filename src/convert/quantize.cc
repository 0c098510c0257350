// `codey quantize`: re-encode every weight of a GGUF file with a target type
// or recipe. Streams tensor by tensor (rows in chunks, split across threads),
// copies all metadata and sets general.file_type.
#include <algorithm>
#include <filesystem>
#include <thread>

#include "codey/convert.h"
#include "codey/quant.h"
#include "convert/parallel.h"

namespace codey {

void parallel_rows(int threads, int64_t n_rows, const std::function<void(int64_t, int64_t)>& fn) {
  threads = std::max(1, std::min<int>(threads, static_cast<int>(n_rows)));
  if (threads == 1) {
    fn(0, n_rows);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t per = (n_rows + threads - 1) / threads;
  for (int t = 0; t < threads; ++t) {
    const int64_t r0 = t * per, r1 = std::min(n_rows, r0 + per);
    if (r0 >= r1) break;
    pool.emplace_back([&fn, r0, r1] { fn(r0, r1); });
  }
  for (auto& th : pool) th.join();
}

Status convert_rows(TensorType dst_type, int64_t row_len, int64_t n_rows, int threads, ChunkWriter& out,
                    const std::function<void(int64_t row, float* dst)>& make_row) {
  const size_t in_row = static_cast<size_t>(row_len);
  const size_t out_row = row_bytes(dst_type, row_len);
  // Chunks of ~16 MiB of f32 keep memory bounded for multi-GB tensors.
  const int64_t chunk_rows = std::max<int64_t>(1, (int64_t(16) << 20) / int64_t(4 * in_row));
  std::vector<uint8_t> buf(static_cast<size_t>(std::min(chunk_rows, n_rows)) * out_row);
  for (int64_t c0 = 0; c0 < n_rows; c0 += chunk_rows) {
    const int64_t c1 = std::min(n_rows, c0 + chunk_rows);
    parallel_rows(threads, c1 - c0, [&](int64_t r0, int64_t r1) {
      std::vector<float> row(in_row);
      for (int64_t r = r0; r < r1; ++r) {
        make_row(c0 + r, row.data());
        quantize_row(dst_type, row.data(), buf.data() + static_cast<size_t>(r) * out_row, row_len);
      }
    });
    CODEY_TRY(out(std::span<const uint8_t>(buf.data(), static_cast<size_t>(c1 - c0) * out_row)));
  }
  return {};
}

Result<uint64_t> publish_output(GgufWriter& w, const std::string& tmp, const std::string& output) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (auto st = w.finish(); !st) {
    fs::remove(tmp, ec);
    return std::unexpected(st.error());
  }
  fs::rename(tmp, output, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot rename {} to {}: {}", tmp, output, ec.message());
  return static_cast<uint64_t>(fs::file_size(output, ec));
}

Result<QuantizeReport> quantize_file(const QuantizeOptions& o, const ProgressFn& progress) {
  namespace fs = std::filesystem;
  auto target = parse_quant_target(o.target);
  if (!target) return std::unexpected(target.error());
  std::error_code ec;
  if (fs::exists(o.output, ec) && fs::equivalent(o.input, o.output, ec))
    return make_error(ErrorCode::kInvalidArgument, "refusing to overwrite the input {} (choose another output file)",
                      o.input);
  auto in = GgufFile::open(o.input);
  if (!in) return std::unexpected(in.error());
  for (const auto& t : in->tensors())
    if (!type_traits(t.type).dequantizable)
      return make_error(ErrorCode::kUnsupported, "tensor {} has type {}, which codey cannot decode yet", t.name,
                        type_name(t.type));
  const auto t0 = Clock::now();
  const int threads = o.threads > 0 ? o.threads : usable_cores();

  QuantRecipe recipe(*target, recipe_context(*in));
  QuantizeReport report;
  GgufWriter w;
  for (const auto& [k, v] : in->metadata()) w.set(std::string(k), v);
  w.set("general.file_type", GgufValue::make_u32(target->file_type));
  w.set("general.quantized_by", GgufValue::make_string("codey"));
  std::vector<TensorType> out_types;
  for (const auto& t : in->tensors()) {
    std::span<const int64_t> ne(t.ne.data(), static_cast<size_t>(t.n_dims));
    auto choice = recipe.choose(t.name, ne, t.type);
    TensorType type = choice ? choice->type : t.type;
    if (choice && !choice->note.empty()) report.notes.push_back(choice->note);
    out_types.push_back(type);
    w.add_tensor(std::string(t.name), type, ne);
  }
  // Write to a temporary name and rename at the end, so a failure never
  // leaves a half-written file under the output name.
  const std::string tmp = o.output + ".partial";
  CODEY_TRY(w.begin(tmp));
  ChunkWriter out = [&](std::span<const uint8_t> bytes) { return w.write_tensor_chunk(bytes); };
  const auto& tensors = in->tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const TensorView src = in->view(t);
    report.input_bytes += t.n_bytes;
    if (progress)
      progress(i + 1, tensors.size(), t.name, fmt::format("{} -> {}", type_name(t.type), type_name(out_types[i])));
    Status st;
    if (out_types[i] == t.type) {
      st = out(src.data);
    } else {
      st = convert_rows(out_types[i], src.ne[0], src.n_rows(), threads, out, [&](int64_t r, float* dst) {
        dequantize_row(src.type, src.row(r), dst, src.ne[0]);
      });
    }
    if (!st) {
      fs::remove(tmp, ec);
      return std::unexpected(st.error());
    }
  }
  auto size = publish_output(w, tmp, o.output);
  if (!size) return std::unexpected(size.error());
  report.output_bytes = *size;
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace codey
