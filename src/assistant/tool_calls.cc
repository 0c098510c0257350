// Tool-call syntaxes of the chat templates the router may use (Qwen/Hermes,
// Llama 3, Mistral, FunctionGemma, plain JSON): the grammar of one
// argument-less call, parsing it back, and the routes as tool schemas.
#include <algorithm>

#include "codey/assistant.h"
#include "codey/chat.h"
#include "codey/gguf.h"

namespace codey {

std::string_view tool_call_format_name(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kJson: return "json";
    case ToolCallFormat::kHermes: return "hermes";
    case ToolCallFormat::kLlama3: return "llama3";
    case ToolCallFormat::kMistral: return "mistral";
    case ToolCallFormat::kFunctionGemma: return "functiongemma";
  }
  return "?";
}

ToolCallFormat detect_tool_call_format(std::string_view t) {
  if (t.find("start_function_call") != std::string_view::npos) return ToolCallFormat::kFunctionGemma;
  if (t.find("<tool_call>") != std::string_view::npos) return ToolCallFormat::kHermes;
  if (t.find("[TOOL_CALLS]") != std::string_view::npos) return ToolCallFormat::kMistral;
  if (t.find("<|python_tag|>") != std::string_view::npos || t.find("ipython") != std::string_view::npos)
    return ToolCallFormat::kLlama3;
  return ToolCallFormat::kJson;
}

bool template_renders_tools(std::string_view t) {
  // Templates that know tools test or iterate the `tools` variable.
  return t.find("tools") != std::string_view::npos;
}

namespace {

// {"name": <one of names>, "<args_key>": {}}
Grammar::Node json_call(Grammar& g, Grammar::Node from, std::span<const std::string> names, std::string_view args_key) {
  nlohmann::ordered_json names_json = nlohmann::ordered_json::array();
  for (const auto& n : names) names_json.push_back(n);
  nlohmann::ordered_json schema = {{"type", "object"},
                           {"properties", {{"name", {{"enum", names_json}}}, {std::string(args_key), {{"type", "object"}}}}},
                           {"required", {"name", std::string(args_key)}}};
  auto end = add_json_schema(g, from, schema);
  CODEY_ASSERT(end.has_value());  // a fixed, supported schema
  return *end;
}

}  // namespace

Grammar tool_choice_grammar(ToolCallFormat f, std::span<const std::string> names) {
  CODEY_ASSERT(!names.empty());
  Grammar g;
  Grammar::Node end = g.start();
  switch (f) {
    case ToolCallFormat::kJson: end = json_call(g, g.start(), names, "arguments"); break;
    case ToolCallFormat::kLlama3: end = json_call(g, g.start(), names, "parameters"); break;
    case ToolCallFormat::kHermes:
      end = g.literal(json_call(g, g.literal(g.start(), "<tool_call>\n"), names, "arguments"), "\n</tool_call>");
      break;
    case ToolCallFormat::kMistral:
      end = g.literal(json_call(g, g.literal(g.start(), "[TOOL_CALLS]["), names, "arguments"), "]");
      break;
    case ToolCallFormat::kFunctionGemma:
      end = g.literal(g.one_of(g.literal(g.start(), "<start_function_call>call:"), names), "{}<end_function_call>");
      break;
  }
  g.accept(end);
  return g;
}

std::optional<std::string> parse_tool_choice(ToolCallFormat f, std::string_view text,
                                             std::span<const std::string> names) {
  auto known = [&](std::string_view n) -> std::optional<std::string> {
    if (std::find(names.begin(), names.end(), n) != names.end()) return std::string(n);
    return std::nullopt;
  };
  if (f == ToolCallFormat::kFunctionGemma) {
    const auto p = text.find("call:");
    if (p == std::string_view::npos) return std::nullopt;
    const auto rest = text.substr(p + 5);
    const auto e = rest.find('{');
    if (e == std::string_view::npos) return std::nullopt;
    return known(rest.substr(0, e));
  }
  const auto b = text.find('{');
  const auto e = text.rfind('}');
  if (b == std::string_view::npos || e == std::string_view::npos || e < b) return std::nullopt;
  // Model output: parsed within limits (it may nest as deep as it likes).
  const auto parsed = parse_json<nlohmann::json>(text.substr(b, e - b + 1));
  if (!parsed) return std::nullopt;
  const nlohmann::json& j = *parsed;
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return std::nullopt;
  return known(j["name"].get<std::string>());
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
