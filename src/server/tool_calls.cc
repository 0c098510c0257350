// Tool-call syntaxes and the streaming separator (see tool_calls.h).
#include "server/tool_calls.h"

#include <algorithm>
#include <cctype>

namespace codey::server {
namespace {

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kMistralMarker = "[TOOL_CALLS]";
constexpr std::string_view kPythonTag = "<|python_tag|>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Length of the longest suffix of `text` that is a proper prefix of `marker`.
size_t partial_marker_suffix(std::string_view text, std::string_view marker) {
  const size_t max = std::min(text.size(), marker.size() - 1);
  for (size_t n = max; n > 0; --n)
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

// Model output is untrusted: parsed within the request limits (a model can
// write 100k '[' as easily as code); anything else is not a call.
Json parse_output_json(std::string_view text) {
  auto j = codey::parse_json<Json>(text, kRequestJsonLimits);
  return j ? std::move(*j) : Json(Json::value_t::discarded);
}

// A call or an array of calls; nullopt unless every element is a call.
std::optional<std::vector<ToolCall>> parse_calls(const Json& j) {
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

}  // namespace

ToolFormat detect_tool_format(std::string_view src) {
  if (src.find(kHermesOpen) != std::string_view::npos) return ToolFormat::kHermes;
  if (src.find(kMistralMarker) != std::string_view::npos) return ToolFormat::kMistral;
  // A template that renders `tools` at all takes them; what it teaches the
  // model to answer with is then most often a bare JSON object.
  for (size_t p = src.find("tools"); p != std::string_view::npos; p = src.find("tools", p + 1)) {
    const bool left_ok = p == 0 || !(std::isalnum(static_cast<unsigned char>(src[p - 1])) || src[p - 1] == '_');
    const size_t e = p + 5;
    const bool right_ok = e >= src.size() || !(std::isalnum(static_cast<unsigned char>(src[e])) || src[e] == '_');
    if (left_ok && right_ok) return ToolFormat::kJson;
  }
  return ToolFormat::kNone;
}

std::string_view tool_format_name(ToolFormat f) {
  switch (f) {
    case ToolFormat::kNone: return "none";
    case ToolFormat::kHermes: return "hermes";
    case ToolFormat::kMistral: return "mistral";
    case ToolFormat::kJson: return "json";
  }
  return "none";
}

std::optional<ToolCall> parse_tool_call_object(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  const Json* obj = &j;
  // {"type": "function", "function": {...}} is accepted too.
  if (auto f = j.find("function"); f != j.end() && f->is_object()) obj = &*f;
  auto name = obj->find("name");
  if (name == obj->end() || !name->is_string() || name->get_ref<const std::string&>().empty()) return std::nullopt;
  ToolCall call;
  call.name = name->get<std::string>();
  auto args = obj->find("arguments");
  if (args == obj->end()) args = obj->find("parameters");
  if (args != obj->end() && !args->is_null()) {
    if (args->is_object()) {
      call.arguments = *args;
    } else if (args->is_string()) {
      Json parsed = parse_output_json(args->get_ref<const std::string&>());
      if (!parsed.is_object()) return std::nullopt;
      call.arguments = std::move(parsed);
    } else {
      return std::nullopt;
    }
  }
  return call;
}

std::string ToolCallParser::push(std::string_view text) {
  if (format_ == ToolFormat::kNone) return std::string(text);
  if (holding_) {
    held_ += text;
    return {};
  }
  pending_ += text;
  if (format_ == ToolFormat::kJson) {
    if (decided_) {
      std::string out = std::move(pending_);
      pending_.clear();
      return out;
    }
    const std::string_view t = trim(pending_);
    if (t.empty()) return {};  // only whitespace so far: undecided
    // The reply is a call only if it starts like one.
    const bool maybe_tag = std::string_view(kPythonTag).substr(0, std::min(t.size(), kPythonTag.size())) ==
                           t.substr(0, std::min(t.size(), kPythonTag.size()));
    if (t.front() == '{' || t.front() == '[' || maybe_tag) {
      if (t.front() == '{' || t.front() == '[' || t.starts_with(kPythonTag)) {
        holding_ = true;
        decided_ = true;
        held_ = std::move(pending_);
        pending_.clear();
      }
      return {};  // a prefix of <|python_tag|>: wait
    }
    decided_ = true;
    std::string out = std::move(pending_);
    pending_.clear();
    return out;
  }
  const std::string_view marker = format_ == ToolFormat::kHermes ? kHermesOpen : kMistralMarker;
  if (size_t p = pending_.find(marker); p != std::string::npos) {
    std::string out = pending_.substr(0, p);
    held_ = pending_.substr(p);
    pending_.clear();
    holding_ = true;
    return out;
  }
  const size_t keep = partial_marker_suffix(pending_, marker);
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

ToolCallParser::Output ToolCallParser::finish() {
  Output out;
  if (!holding_) {
    out.content = std::move(pending_);
    pending_.clear();
    return out;
  }
  std::string_view h = held_;
  auto fail = [&] {
    Output o;
    o.content = std::move(held_);
    return o;
  };
  switch (format_) {
    case ToolFormat::kHermes: {
      std::string tail;
      while (true) {
        const size_t open = h.find(kHermesOpen);
        if (open == std::string_view::npos) {
          tail += std::string(trim(h));
          break;
        }
        tail += std::string(trim(h.substr(0, open)));
        h.remove_prefix(open + kHermesOpen.size());
        const size_t close = h.find(kHermesClose);
        const std::string_view body = close == std::string_view::npos ? h : h.substr(0, close);
        auto calls = parse_calls(parse_output_json(trim(body)));
        if (!calls) return fail();
        for (auto& c : *calls) out.calls.push_back(std::move(c));
        if (close == std::string_view::npos) break;
        h.remove_prefix(close + kHermesClose.size());
      }
      out.content = std::move(tail);
      return out;
    }
    case ToolFormat::kMistral: {
      h.remove_prefix(kMistralMarker.size());
      auto calls = parse_calls(parse_output_json(trim(h)));
      if (!calls) return fail();
      out.calls = std::move(*calls);
      return out;
    }
    case ToolFormat::kJson: {
      std::string_view t = trim(h);
      if (t.starts_with(kPythonTag)) t = trim(t.substr(kPythonTag.size()));
      // Llama 3.x may separate several calls with ';'.
      std::vector<ToolCall> calls;
      Json whole = parse_output_json(t);
      if (auto c = parse_calls(whole)) {
        out.calls = std::move(*c);
        return out;
      }
      size_t start = 0;
      while (start < t.size()) {
        size_t end = t.find(';', start);
        if (end == std::string_view::npos) end = t.size();
        auto c = parse_calls(parse_output_json(trim(t.substr(start, end - start))));
        if (!c) return fail();
        for (auto& x : *c) calls.push_back(std::move(x));
        start = end + 1;
      }
      if (calls.empty()) return fail();
      out.calls = std::move(calls);
      return out;
    }
    case ToolFormat::kNone: break;
  }
  return fail();
}

}  // namespace codey::server
