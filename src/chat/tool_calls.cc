// Tool-call syntaxes: detection, rendering and the bounded, streaming parser
// (see codey/tool_calls.h).
#include "codey/tool_calls.h"

#include "codey/chat.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace codey {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kToolCallOpen = "<tool_call>";
constexpr std::string_view kToolCallClose = "</tool_call>";
constexpr std::string_view kMistralMarker = "[TOOL_CALLS]";
constexpr std::string_view kMistralArgs = "[ARGS]";
constexpr std::string_view kMistralCallId = "[CALL_ID]";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kGemmaOpen = "<start_function_call>";
constexpr std::string_view kGemmaClose = "<end_function_call>";
constexpr std::string_view kGemmaEscape = "<escape>";
constexpr std::string_view kFunctionOpen = "<function=";
constexpr std::string_view kFunctionClose = "</function>";
constexpr std::string_view kParameterOpen = "<parameter=";
constexpr std::string_view kParameterClose = "</parameter>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The marker a call starts with in formats that have one ("" otherwise).
std::string_view open_marker(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kHermes:
    case ToolCallFormat::kQwen3Coder: return kToolCallOpen;
    case ToolCallFormat::kMistral: return kMistralMarker;
    case ToolCallFormat::kFunctionGemma: return kGemmaOpen;
    default: return {};
  }
}

// Length of the longest suffix of `text` that is a proper prefix of `marker`.
size_t partial_marker_suffix(std::string_view text, std::string_view marker) {
  const size_t max = std::min(text.size(), marker.size() - 1);
  for (size_t n = max; n > 0; --n)
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += n;
  }
  return true;
}

// Model output is untrusted: JSON is parsed within the request limits (a
// model can write 100k '[' as easily as code); beyond them it is no call.
ojson output_json(std::string_view text) {
  auto j = parse_json<ojson>(text, JsonLimits{kMaxToolCallDepth});
  return j ? std::move(*j) : ojson(ojson::value_t::discarded);
}

// JSON as Python's json.dumps writes it (", " and ": "), which is how the
// templates show calls to their models.
void dump_spaced(const ojson& j, std::string& out) {
  if (j.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : j.items()) {
      if (!first) out += ", ";
      first = false;
      out += ojson(k).dump(-1, ' ', false, ojson::error_handler_t::replace);
      out += ": ";
      dump_spaced(v, out);
    }
    out += '}';
  } else if (j.is_array()) {
    out += '[';
    for (size_t i = 0; i < j.size(); ++i) {
      if (i) out += ", ";
      dump_spaced(j[i], out);
    }
    out += ']';
  } else {
    out += j.dump(-1, ' ', false, ojson::error_handler_t::replace);
  }
}

std::string spaced(const ojson& j) {
  std::string s;
  dump_spaced(j, s);
  return s;
}

// A call or a non-empty array of calls; nullopt unless every element is one.
std::optional<std::vector<ToolCall>> calls_of(const ojson& j) {
  std::vector<ToolCall> out;
  if (j.is_object()) {
    auto c = parse_tool_call_object(j);
    if (!c) return std::nullopt;
    out.push_back(std::move(*c));
    return out;
  }
  if (j.is_array() && !j.empty()) {
    for (const auto& item : j) {
      auto c = parse_tool_call_object(item);
      if (!c) return std::nullopt;
      out.push_back(std::move(*c));
    }
    return out;
  }
  return std::nullopt;
}

bool good_name(std::string_view n) {
  if (n.empty() || n.size() > 256 || !valid_utf8(n)) return false;
  return std::none_of(n.begin(), n.end(), [](char c) { return is_space(c) || c == '<' || c == '>' || c == '{'; });
}

// ------------------------------------------------------------ Qwen3-Coder --

// The JSON schema of parameter `param` of tool `name` in OpenAI `tools`.
const ojson* parameter_schema(const ojson& tools, std::string_view name, std::string_view param) {
  if (!tools.is_array()) return nullptr;
  for (const auto& t : tools) {
    const ojson* fn = &t;
    if (t.is_object() && t.contains("function") && t["function"].is_object()) fn = &t["function"];
    if (!fn->is_object() || !fn->contains("name") || (*fn)["name"] != name) continue;
    auto p = fn->find("parameters");
    if (p == fn->end() || !p->is_object()) return nullptr;
    auto props = p->find("properties");
    if (props == p->end() || !props->is_object()) return nullptr;
    auto s = props->find(std::string(param));
    return s != props->end() && s->is_object() ? &*s : nullptr;
  }
  return nullptr;
}

// A parameter's text as the value its schema types (what Qwen's own parser
// does): strings stay text, numbers/booleans/objects/arrays are parsed when
// they are what the schema says, anything else stays text.
ojson typed_value(std::string_view v, const ojson* schema) {
  std::string type;
  if (schema) {
    auto t = schema->find("type");
    if (t != schema->end() && t->is_string()) type = t->get<std::string>();
    if (t != schema->end() && t->is_array())
      for (const auto& x : *t)
        if (x.is_string() && x != "null") {
          type = x.get<std::string>();
          break;
        }
  }
  if (type.empty() || type == "string") return ojson(std::string(v));
  const std::string_view tv = trim(v);
  if (type == "boolean") {
    if (tv == "true" || tv == "True") return true;
    if (tv == "false" || tv == "False") return false;
    return ojson(std::string(v));
  }
  const ojson j = output_json(tv);
  const bool ok = (type == "integer" && (j.is_number_integer() || j.is_number_unsigned())) ||
                  (type == "number" && j.is_number()) || (type == "object" && j.is_object()) ||
                  (type == "array" && j.is_array()) || (type == "null" && j.is_null());
  return ok ? j : ojson(std::string(v));
}

// <function=NAME>(<parameter=P>\nvalue\n</parameter>)*</function>, one or more.
std::optional<std::vector<ToolCall>> parse_qwen3_coder(std::string_view body, const ojson& tools) {
  std::vector<ToolCall> calls;
  std::string_view b = trim(body);
  while (!b.empty()) {
    if (!b.starts_with(kFunctionOpen)) return std::nullopt;
    b.remove_prefix(kFunctionOpen.size());
    const size_t gt = b.find('>');
    if (gt == std::string_view::npos || !good_name(b.substr(0, gt))) return std::nullopt;
    ToolCall call;
    call.name = std::string(b.substr(0, gt));
    b = trim(b.substr(gt + 1));
    while (b.starts_with(kParameterOpen)) {
      b.remove_prefix(kParameterOpen.size());
      const size_t pgt = b.find('>');
      if (pgt == std::string_view::npos || !good_name(b.substr(0, pgt))) return std::nullopt;
      const std::string param(b.substr(0, pgt));
      b.remove_prefix(pgt + 1);
      // The value runs to </parameter>; a model that forgets it ends the value
      // at the next parameter or at the function's end.
      size_t end = b.find(kParameterClose);
      size_t skip = kParameterClose.size();
      if (end == std::string_view::npos) {
        end = std::min(b.find(kParameterOpen), b.find(kFunctionClose));
        if (end == std::string_view::npos) end = b.size();
        skip = 0;
      }
      std::string_view v = b.substr(0, end);
      if (v.starts_with('\n')) v.remove_prefix(1);
      if (v.ends_with('\n')) v.remove_suffix(1);
      if (!valid_utf8(v) || call.arguments.contains(param)) return std::nullopt;
      call.arguments[param] = typed_value(v, parameter_schema(tools, call.name, param));
      b = trim(b.substr(end + skip));
    }
    if (b.starts_with(kFunctionClose)) b = trim(b.substr(kFunctionClose.size()));
    else if (!b.empty()) return std::nullopt;
    calls.push_back(std::move(call));
  }
  if (calls.empty()) return std::nullopt;
  return calls;
}

std::string render_qwen3_coder(const ToolCall& c) {
  std::string s = "<tool_call>\n<function=" + c.name + ">\n";
  for (const auto& [k, v] : c.arguments.items()) {
    s += "<parameter=" + k + ">\n";
    s += v.is_string() ? v.get<std::string>() : spaced(v);
    s += "\n</parameter>\n";
  }
  return s + "</function>\n</tool_call>";
}

// ---------------------------------------------------------- FunctionGemma --

// FunctionGemma's argument syntax: {key:value,...}, [a,b], strings between
// <escape> marks, bare numbers, true/false/null, depth-bounded.
class GemmaValues {
 public:
  explicit GemmaValues(std::string_view s) : s_(s) {}
  std::optional<ojson> object() {
    skip();
    if (!eat('{') || ++depth_ > kMaxToolCallDepth) return std::nullopt;
    ojson o = ojson::object();
    skip();
    if (eat('}')) return --depth_, o;
    while (true) {
      skip();
      std::string key;
      if (s_.substr(i_).starts_with(kGemmaEscape)) {
        auto k = escaped();
        if (!k) return std::nullopt;
        key = std::move(*k);
      } else {
        const size_t colon = s_.find(':', i_);
        if (colon == std::string_view::npos) return std::nullopt;
        key = std::string(trim(s_.substr(i_, colon - i_)));
        i_ = colon;
      }
      skip();
      if (!good_name(key) || key.find_first_of(",}]") != std::string::npos || !eat(':')) return std::nullopt;
      auto v = value();
      if (!v) return std::nullopt;
      o[key] = std::move(*v);
      skip();
      if (eat('}')) return --depth_, o;
      if (!eat(',')) return std::nullopt;
    }
  }
  bool at_end() {
    skip();
    return i_ == s_.size();
  }

 private:
  std::optional<ojson> value() {
    skip();
    if (i_ >= s_.size()) return std::nullopt;
    if (s_[i_] == '{') return object();
    if (s_.substr(i_).starts_with(kGemmaEscape)) {
      auto e = escaped();
      if (!e) return std::nullopt;
      return ojson(std::move(*e));
    }
    if (eat('[')) {
      if (++depth_ > kMaxToolCallDepth) return std::nullopt;
      ojson a = ojson::array();
      skip();
      if (eat(']')) return --depth_, a;
      while (true) {
        auto v = value();
        if (!v) return std::nullopt;
        a.push_back(std::move(*v));
        skip();
        if (eat(']')) return --depth_, a;
        if (!eat(',')) return std::nullopt;
      }
    }
    size_t e = i_;
    while (e < s_.size() && s_[e] != ',' && s_[e] != '}' && s_[e] != ']') ++e;
    const std::string_view tok = trim(s_.substr(i_, e - i_));
    i_ = e;
    if (tok.empty()) return std::nullopt;
    const ojson j = output_json(tok);
    if (j.is_number() || j.is_boolean() || j.is_null()) return j;
    if (!valid_utf8(tok)) return std::nullopt;
    return ojson(std::string(tok));  // a bare word: text
  }
  std::optional<std::string> escaped() {
    i_ += kGemmaEscape.size();
    const size_t e = s_.find(kGemmaEscape, i_);
    if (e == std::string_view::npos) return std::nullopt;
    std::string out(s_.substr(i_, e - i_));
    i_ = e + kGemmaEscape.size();
    if (!valid_utf8(out)) return std::nullopt;
    return out;
  }
  void skip() {
    while (i_ < s_.size() && is_space(s_[i_])) ++i_;
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;
};

// call:NAME{...}
std::optional<std::vector<ToolCall>> parse_function_gemma(std::string_view body) {
  std::string_view b = trim(body);
  if (!b.starts_with("call:")) return std::nullopt;
  b.remove_prefix(5);
  const size_t brace = b.find('{');
  if (brace == std::string_view::npos || !good_name(trim(b.substr(0, brace)))) return std::nullopt;
  ToolCall call;
  call.name = std::string(trim(b.substr(0, brace)));
  GemmaValues p(b.substr(brace));
  auto args = p.object();
  if (!args || !p.at_end()) return std::nullopt;
  call.arguments = std::move(*args);
  return std::vector<ToolCall>{std::move(call)};
}

void render_gemma_value(const ojson& v, std::string& out) {
  if (v.is_string()) {
    out += kGemmaEscape;
    out += v.get<std::string>();
    out += kGemmaEscape;
  } else if (v.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [k, x] : v.items()) {
      if (!first) out += ',';
      first = false;
      out += k + ":";
      render_gemma_value(x, out);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ',';
      render_gemma_value(v[i], out);
    }
    out += ']';
  } else {
    out += v.dump(-1, ' ', false, ojson::error_handler_t::replace);
  }
}

// ---------------------------------------------------------------- Mistral --

// After [TOOL_CALLS]: a JSON call or array of them (v3), or NAME[ARGS]{...}
// (v11, optionally NAME[CALL_ID]id[ARGS]{...}).
std::optional<std::vector<ToolCall>> parse_mistral(std::string_view body) {
  const std::string_view b = trim(body);
  if (b.starts_with('[') || b.starts_with('{')) return calls_of(output_json(b));
  const size_t args = b.find(kMistralArgs);
  if (args == std::string_view::npos) return std::nullopt;
  std::string_view name = b.substr(0, args);
  if (const size_t id = name.find(kMistralCallId); id != std::string_view::npos) name = name.substr(0, id);
  name = trim(name);
  if (!good_name(name)) return std::nullopt;
  const ojson a = output_json(trim(b.substr(args + kMistralArgs.size())));
  if (!a.is_object()) return std::nullopt;
  return std::vector<ToolCall>{ToolCall{std::string(name), a}};
}

// ------------------------------------------------------ whole-reply JSON --

// {"name", "arguments"|"parameters"} or an array of them, optionally after
// <|python_tag|>; Llama 3.x may join several calls with ';'.
std::optional<std::vector<ToolCall>> parse_json_reply(std::string_view text) {
  std::string_view t = trim(text);
  if (t.starts_with(kPythonTag)) t = trim(t.substr(kPythonTag.size()));
  if (auto c = calls_of(output_json(t))) return c;
  std::vector<ToolCall> calls;
  size_t start = 0;
  while (start < t.size()) {
    size_t end = t.find(';', start);
    if (end == std::string_view::npos) end = t.size();
    auto c = calls_of(output_json(trim(t.substr(start, end - start))));
    if (!c) return std::nullopt;
    for (auto& x : *c) calls.push_back(std::move(x));
    start = end + 1;
  }
  if (calls.empty()) return std::nullopt;
  return calls;
}

// The calls of one marked block's body (after the open marker, before the
// close marker).
std::optional<std::vector<ToolCall>> parse_body(ToolCallFormat f, std::string_view body, const ojson& tools) {
  switch (f) {
    case ToolCallFormat::kHermes: return calls_of(output_json(trim(body)));
    case ToolCallFormat::kQwen3Coder:
      // Qwen3-Coder sometimes answers in its predecessor's JSON: take both.
      if (trim(body).starts_with('{')) return calls_of(output_json(trim(body)));
      return parse_qwen3_coder(body, tools);
    case ToolCallFormat::kMistral: return parse_mistral(body);
    case ToolCallFormat::kFunctionGemma: return parse_function_gemma(body);
    default: return std::nullopt;
  }
}

std::string_view close_marker(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kHermes:
    case ToolCallFormat::kQwen3Coder: return kToolCallClose;
    case ToolCallFormat::kFunctionGemma: return kGemmaClose;
    default: return {};  // Mistral: a call runs to the next marker or the end
  }
}

// Held text of a marker format: calls and the text around them; nullopt if
// any block does not parse.
std::optional<ToolCallParser::Output> parse_marked(ToolCallFormat f, std::string_view h, const ojson& tools) {
  const std::string_view open = open_marker(f), close = close_marker(f);
  ToolCallParser::Output out;
  while (true) {
    const size_t at = h.find(open);
    if (at == std::string_view::npos) {
      out.content += std::string(trim(h));
      break;
    }
    out.content += std::string(trim(h.substr(0, at)));
    h.remove_prefix(at + open.size());
    size_t end = close.empty() ? h.find(open) : h.find(close);
    const std::string_view body = end == std::string_view::npos ? h : h.substr(0, end);
    auto calls = parse_body(f, body, tools);
    if (!calls) return std::nullopt;
    for (auto& c : *calls) out.calls.push_back(std::move(c));
    if (end == std::string_view::npos) break;
    h.remove_prefix(end + close.size());
  }
  if (out.calls.empty()) return std::nullopt;
  return out;
}

bool whole_reply(ToolCallFormat f) { return f == ToolCallFormat::kJson || f == ToolCallFormat::kLlama3; }

}  // namespace

std::string_view tool_call_format_name(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kNone: return "none";
    case ToolCallFormat::kJson: return "json";
    case ToolCallFormat::kHermes: return "hermes";
    case ToolCallFormat::kQwen3Coder: return "qwen3-coder";
    case ToolCallFormat::kLlama3: return "llama3";
    case ToolCallFormat::kMistral: return "mistral";
    case ToolCallFormat::kFunctionGemma: return "functiongemma";
  }
  return "none";
}

ToolCallFormat detect_tool_call_format(std::string_view t) {
  if (t.find("start_function_call") != std::string_view::npos) return ToolCallFormat::kFunctionGemma;
  if (t.find(kToolCallOpen) != std::string_view::npos)
    return t.find("<function=") != std::string_view::npos ? ToolCallFormat::kQwen3Coder : ToolCallFormat::kHermes;
  if (t.find(kMistralMarker) != std::string_view::npos) return ToolCallFormat::kMistral;
  // A template that renders `tools` at all takes them.
  bool takes_tools = false;
  for (size_t p = t.find("tools"); p != std::string_view::npos && !takes_tools; p = t.find("tools", p + 1)) {
    const auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    const size_t e = p + 5;
    takes_tools = (p == 0 || !word(t[p - 1])) && (e >= t.size() || !word(t[e]));
  }
  if (!takes_tools) return ToolCallFormat::kNone;
  if (t.find(kPythonTag) != std::string_view::npos || t.find("ipython") != std::string_view::npos)
    return ToolCallFormat::kLlama3;
  return ToolCallFormat::kJson;
}

std::optional<ToolCall> parse_tool_call_object(const ojson& j) {
  if (!j.is_object()) return std::nullopt;
  const ojson* obj = &j;
  if (auto f = j.find("function"); f != j.end() && f->is_object()) obj = &*f;
  auto name = obj->find("name");
  if (name == obj->end() || !name->is_string() || !good_name(name->get_ref<const std::string&>())) return std::nullopt;
  ToolCall call;
  call.name = name->get<std::string>();
  auto args = obj->find("arguments");
  if (args == obj->end()) args = obj->find("parameters");
  if (args != obj->end() && !args->is_null()) {
    if (args->is_object()) {
      call.arguments = *args;
    } else if (args->is_string()) {
      ojson parsed = output_json(args->get_ref<const std::string&>());
      if (!parsed.is_object()) return std::nullopt;
      call.arguments = std::move(parsed);
    } else {
      return std::nullopt;
    }
  }
  return call;
}

std::string render_tool_calls(ToolCallFormat f, std::span<const ToolCall> calls) {
  auto json_call = [](const ToolCall& c, std::string_view args_key) {
    ojson j = ojson::object();
    j["name"] = c.name;
    j[std::string(args_key)] = c.arguments;
    return j;
  };
  std::string s;
  switch (f) {
    case ToolCallFormat::kNone:
    case ToolCallFormat::kJson: {
      if (calls.size() == 1) return spaced(json_call(calls[0], "arguments"));
      ojson a = ojson::array();
      for (const auto& c : calls) a.push_back(json_call(c, "arguments"));
      return spaced(a);
    }
    case ToolCallFormat::kLlama3:
      for (size_t i = 0; i < calls.size(); ++i) s += (i ? "; " : "") + spaced(json_call(calls[i], "parameters"));
      return s;
    case ToolCallFormat::kHermes:
      for (size_t i = 0; i < calls.size(); ++i)
        s += (i ? "\n" : "") + std::string(kToolCallOpen) + "\n" + spaced(json_call(calls[i], "arguments")) + "\n" +
             std::string(kToolCallClose);
      return s;
    case ToolCallFormat::kQwen3Coder:
      for (size_t i = 0; i < calls.size(); ++i) s += (i ? "\n" : "") + render_qwen3_coder(calls[i]);
      return s;
    case ToolCallFormat::kMistral: {
      ojson a = ojson::array();
      for (const auto& c : calls) a.push_back(json_call(c, "arguments"));
      return std::string(kMistralMarker) + spaced(a);
    }
    case ToolCallFormat::kFunctionGemma:
      for (const auto& c : calls) {
        s += std::string(kGemmaOpen) + "call:" + c.name;
        render_gemma_value(c.arguments.is_object() ? c.arguments : ojson::object(), s);
        s += kGemmaClose;
      }
      return s;
  }
  return s;
}

std::string ToolCallParser::push(std::string_view text) {
  if (format_ == ToolCallFormat::kNone || passthrough_) return std::string(text);
  if (holding_) {
    held_ += text;
    if (held_.size() > kMaxToolCallBytes) return give_up().content;
    return {};
  }
  pending_ += text;
  if (whole_reply(format_)) {
    if (decided_) return std::exchange(pending_, {});
    const std::string_view t = trim(pending_);
    if (t.empty()) {  // only whitespace so far: undecided (for a bounded while)
      if (pending_.size() <= kMaxToolCallBytes) return {};
      decided_ = true;
      return std::exchange(pending_, {});
    }
    // The reply is a call only if it starts like one.
    const size_t n = std::min(t.size(), kPythonTag.size());
    if (t.front() == '{' || t.front() == '[' || t.starts_with(kPythonTag)) {
      holding_ = decided_ = true;
      held_ = std::exchange(pending_, {});
      return {};
    }
    if (t.substr(0, n) == kPythonTag.substr(0, n)) return {};  // a prefix of <|python_tag|>: wait
    decided_ = true;
    return std::exchange(pending_, {});
  }
  const std::string_view marker = open_marker(format_);
  if (size_t p = pending_.find(marker); p != std::string::npos) {
    std::string out = pending_.substr(0, p);
    held_ = pending_.substr(p);
    pending_.clear();
    holding_ = true;
    if (held_.size() > kMaxToolCallBytes) return out + give_up().content;
    return out;
  }
  const size_t keep = partial_marker_suffix(pending_, marker);
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

ToolCallParser::Output ToolCallParser::give_up() {
  Output o;
  o.content = std::exchange(pending_, {}) + std::exchange(held_, {});
  holding_ = false;
  passthrough_ = true;
  return o;
}

ToolCallParser::Output ToolCallParser::finish() {
  if (!holding_) {
    Output out;
    out.content = std::exchange(pending_, {});
    return out;
  }
  std::optional<Output> parsed;
  if (whole_reply(format_)) {
    if (auto calls = parse_json_reply(held_)) {
      parsed.emplace();
      parsed->calls = std::move(*calls);
    }
  } else {
    parsed = parse_marked(format_, held_, tools_);
  }
  if (!parsed) return give_up();
  held_.clear();
  holding_ = false;
  return std::move(*parsed);
}

ToolCallParser::Output parse_tool_calls(ToolCallFormat f, std::string_view text, const nlohmann::ordered_json& tools) {
  ToolCallParser p(f, tools);
  std::string content = p.push(text);
  ToolCallParser::Output out = p.finish();
  out.content = content + out.content;
  return out;
}

}  // namespace codey
