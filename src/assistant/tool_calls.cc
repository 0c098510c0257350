// The router's tool call: the grammar of one argument-less call in the
// template's syntax (codey/tool_calls.h renders it), parsing it back, and the
// routes as tool schemas.
#include <algorithm>

#include "codey/assistant.h"
#include "codey/gguf.h"

namespace codey {

ToolCallFormat router_call_format(std::string_view chat_template) {
  const ToolCallFormat f = detect_tool_call_format(chat_template);
  return f == ToolCallFormat::kNone ? ToolCallFormat::kJson : f;
}

namespace {

// The rendered call after `from`, with the space JSON writes after ':' and
// ',' optional: a vocabulary may have no token that goes on with it, and the
// parser reads JSON either way.
Grammar::Node rendered_call(Grammar& g, Grammar::Node from, std::string_view text) {
  Grammar::Node at = from;
  for (size_t i = 0; i < text.size(); ++i) {
    const Grammar::Node next = g.literal(at, text.substr(i, 1));
    if (text[i] == ' ' && i > 0 && (text[i - 1] == ':' || text[i - 1] == ',')) g.epsilon(at, next);
    at = next;
  }
  return at;
}

}  // namespace

Grammar tool_choice_grammar(ToolCallFormat f, std::span<const std::string> names) {
  CODEY_ASSERT(!names.empty());
  Grammar g;
  const Grammar::Node end = g.add_node();
  for (const auto& n : names)
    g.epsilon(rendered_call(g, g.start(), render_tool_calls(f, std::vector<ToolCall>{ToolCall{n}})), end);
  g.accept(end);
  return g;
}

std::optional<std::string> parse_tool_choice(ToolCallFormat f, std::string_view text,
                                             std::span<const std::string> names) {
  const auto out = parse_tool_calls(f, text);
  if (out.calls.empty()) return std::nullopt;
  const std::string& n = out.calls.front().name;
  if (std::find(names.begin(), names.end(), n) == names.end()) return std::nullopt;
  return n;
}

nlohmann::ordered_json route_tools(std::span<const RouteConfig> routes) {
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();
  for (const auto& r : routes) {
    nlohmann::ordered_json fn;
    fn["name"] = r.name;
    fn["description"] = r.description.empty() ? fmt::format("Send the task to the '{}' route.", r.name) : r.description;
    fn["parameters"] = {{"type", "object"}, {"properties", nlohmann::ordered_json::object()}};
    tools.push_back({{"type", "function"}, {"function", fn}});
  }
  return tools;
}

Result<ModelText> load_model_text(const std::string& path) {
  const auto t0 = Clock::now();
  auto file = GgufFile::open(path);
  if (!file) return std::unexpected(std::move(file.error()).with_context(fmt::format("reading {}", path)));
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok) return std::unexpected(std::move(tok.error()).with_context(fmt::format("tokenizer of {}", path)));
  ModelText mt;
  auto tmpl = file->get_string_or("tokenizer.chat_template", "");
  if (tmpl && !tmpl->empty()) mt.chat_template = std::string(*tmpl);
  mt.tokenizer = std::make_shared<const Tokenizer>(std::move(*tok));
  mt.index = VocabIndex::build(*mt.tokenizer);
  mt.load_seconds = seconds_since(t0);
  return mt;
}

}  // namespace codey
