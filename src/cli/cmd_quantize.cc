// `codey quantize IN.gguf OUT.gguf TYPE [--threads N]`: re-encode a model with a
// tensor type (Q8_0, Q4_0, ...) or a recipe (Q4_K_M, Q5_K_S, ...).
#include <fmt/ranges.h>

#include "cli/command.h"
#include "cli/progress.h"
#include "codey/convert.h"

namespace codey::cli {
namespace {

CommandRunner setup(CLI::App& root) {
  auto o = std::make_shared<QuantizeOptions>();
  auto* cmd = root.add_subcommand("quantize", "Quantize a GGUF model to a type or recipe (like llama-quantize)");
  cmd->add_option("input", o->input, "Input GGUF (f32/f16/bf16, or quantized)")->required();
  cmd->add_option("output", o->output, "Output GGUF")->required();
  cmd->add_option("type", o->target, fmt::format("Target: {}", fmt::join(quant_target_names(), ", ")))->required();
  cmd->add_option("-t,--threads", o->threads, "Threads (default: usable cores)");
  return [o]() -> int {
    ProgressLine line;
    auto report = quantize_file(*o, [&](size_t i, size_t n, std::string_view name, std::string_view what) {
      line.update(fmt::format("[{}/{}] {} {}  ({:.1f} s)", i, n, name, what, line.elapsed()));
    });
    line.done();
    if (!report) return fail(report.error().message);
    for (const auto& note : report->notes) std::fprintf(stderr, "note: %s\n", note.c_str());
    std::fprintf(stderr, "quantized %s (%s) -> %s (%s) as %s in %.1f s, %.1f MB/s\n", o->input.c_str(),
                 format_bytes(report->input_bytes).c_str(), o->output.c_str(),
                 format_bytes(report->output_bytes).c_str(), o->target.c_str(), report->seconds,
                 double(report->input_bytes) / 1e6 / std::max(report->seconds, 1e-9));
    return 0;
  };
}

CODEY_REGISTER_COMMAND(quantize, setup);

}  // namespace
}  // namespace codey::cli
