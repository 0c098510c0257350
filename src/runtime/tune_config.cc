// `codey tune` writing its choices into codey.yaml: a surgical text edit of one
// model's entry (re-emitting with yaml-cpp would drop every comment), checked
// afterwards by parsing both texts and comparing every other setting.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include <fmt/ranges.h>

#include "codey/tune.h"

namespace codey::tune {
namespace {

constexpr std::string_view kCommentMarker = "# codey tune";

struct Line {
  std::string text;  // without "\n" (and without "\r" when cr)
  bool cr = false;
};

struct Lines {
  std::vector<Line> lines;
  bool final_newline = true;
  bool crlf = false;  // the file's style, for new lines

  static Lines split(std::string_view text) {
    Lines out;
    size_t start = 0;
    size_t n_cr = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      const bool last = nl == std::string_view::npos;
      std::string_view l = text.substr(start, last ? std::string_view::npos : nl - start);
      Line line;
      if (!l.empty() && l.back() == '\r') {
        line.cr = true;
        l.remove_suffix(1);
        ++n_cr;
      }
      line.text = std::string(l);
      out.lines.push_back(std::move(line));
      if (last) {
        out.final_newline = false;
        break;
      }
      start = nl + 1;
    }
    out.crlf = n_cr > 0 && n_cr * 2 >= out.lines.size();
    return out;
  }

  std::string join() const {
    std::string s;
    for (size_t i = 0; i < lines.size(); ++i) {
      s += lines[i].text;
      if (lines[i].cr) s += '\r';
      if (i + 1 < lines.size() || final_newline) s += '\n';
    }
    return s;
  }

  Line make(std::string text) const { return Line{std::move(text), crlf}; }
};

size_t indent_of(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return i;
}

bool blank(std::string_view s) { return indent_of(s) == s.size(); }
bool tune_comment_line(std::string_view s) { return s.substr(indent_of(s)).starts_with(kCommentMarker); }

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

// End (exclusive) of a quoted scalar starting at s[i] (a quote), or npos.
size_t quoted_end(std::string_view s, size_t i) {
  const char q = s[i];
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (q == '"' && s[j] == '\\') {
      ++j;
      continue;
    }
    if (s[j] == q) {
      if (q == '\'' && j + 1 < s.size() && s[j + 1] == '\'') {
        ++j;
        continue;
      }
      return j + 1;
    }
  }
  return std::string_view::npos;
}

// The scalar's text without quotes (for comparing values).
std::string unquote(std::string_view v) {
  std::string t = trim(v);
  if (t.size() >= 2 && (t.front() == '"' || t.front() == '\'') && t.back() == t.front())
    return t.substr(1, t.size() - 2);
  return t;
}

// A YAML/JSON scalar for a string: plain when that reads back unchanged.
std::string quote_if_needed(std::string_view s, bool json) {
  bool plain = !s.empty() && !json;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '_' || c == '-' || c == '+' ||
          c == '~'))
      plain = false;
  if (plain && (s.front() == '-' || s.front() == '~')) plain = s.front() == '~' && s.size() > 1 && s[1] == '/';
  if (plain) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

bool is_number(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// A value's text in the file's style: numbers bare, strings quoted in JSON.
std::string value_text(std::string_view v, bool json) { return is_number(v) ? std::string(v) : quote_if_needed(v, json); }

// Where a "key: value" line's value is: [value_begin, value_end) and the
// start of what follows (spaces and a comment). Returns false if the line is
// not `key:` followed by a scalar on the same line.
struct KeyLine {
  size_t colon = 0, value_begin = 0, value_end = 0;
};
std::optional<KeyLine> parse_key_line(std::string_view s, std::string_view key) {
  size_t i = indent_of(s);
  std::string_view rest = s.substr(i);
  size_t klen = 0;
  if (rest.starts_with(key)) {
    klen = key.size();
  } else if (rest.size() > key.size() + 1 && (rest[0] == '"' || rest[0] == '\'') && rest.substr(1).starts_with(key) &&
             rest[key.size() + 1] == rest[0]) {
    klen = key.size() + 2;
  } else {
    return std::nullopt;
  }
  size_t j = i + klen;
  while (j < s.size() && s[j] == ' ') ++j;
  if (j >= s.size() || s[j] != ':') return std::nullopt;
  KeyLine kl;
  kl.colon = j;
  j++;
  while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
  kl.value_begin = j;
  if (j >= s.size() || s[j] == '#') return std::nullopt;  // the value is on the next lines
  size_t end;
  if (s[j] == '"' || s[j] == '\'') {
    end = quoted_end(s, j);
    if (end == std::string_view::npos) return std::nullopt;
  } else {
    end = s.size();
    for (size_t k = j; k < s.size(); ++k)
      if (s[k] == '#' && (s[k - 1] == ' ' || s[k - 1] == '\t')) {
        end = k;
        break;
      }
    while (end > j && (s[end - 1] == ' ' || s[end - 1] == '\t')) --end;
  }
  kl.value_end = end;
  return kl;
}

// Replaces the value of a key line, keeping a trailing comment at its column
// when the new value leaves room.
std::string replace_value(const std::string& s, const KeyLine& kl, std::string_view value) {
  std::string out = s.substr(0, kl.value_begin) + std::string(value);
  std::string_view tail = std::string_view(s).substr(kl.value_end);
  const size_t hash = tail.find('#');
  if (hash == std::string_view::npos) return out + trim(tail);
  const size_t comment_col = kl.value_end + hash;
  const size_t pad = comment_col > out.size() ? comment_col - out.size() : 1;
  return out + std::string(pad, ' ') + std::string(tail.substr(hash));
}

int mark_line(const YAML::Node& n) { return n.Mark().line; }  // 0-based, -1 unknown

// Lines [from, end) after a key at `key_indent` that belong to its block value:
// up to the first non-blank line (comments included) indented no deeper.
size_t block_end(const Lines& L, size_t key_line, size_t key_indent) {
  size_t i = key_line + 1;
  for (; i < L.lines.size(); ++i) {
    const std::string& t = L.lines[i].text;
    if (blank(t)) continue;
    if (indent_of(t) <= key_indent) break;
  }
  return i;
}
// The last non-blank line in (key_line, end), or key_line.
size_t last_content(const Lines& L, size_t key_line, size_t end) {
  size_t last = key_line;
  for (size_t i = key_line + 1; i < end; ++i)
    if (!blank(L.lines[i].text)) last = i;
  return last;
}

// A top-level element of a flow map: key and value spans (offsets into the
// joined flow text).
struct FlowPair {
  std::string key;
  size_t value_begin = 0, value_end = 0;
};
struct FlowMap {
  size_t open = 0, close = 0;  // offsets of '{' and its '}'
  std::vector<FlowPair> pairs;
};

// Parses the flow map whose '{' is at text[open]. Handles quotes, nested
// [] and {}, and comments at line ends.
Result<FlowMap> parse_flow_map(std::string_view text, size_t open) {
  FlowMap m;
  m.open = open;
  int depth = 0;
  size_t elem_begin = open + 1;
  auto finish_elem = [&](size_t elem_end) {
    std::string_view e = text.substr(elem_begin, elem_end - elem_begin);
    // key: up to the first ':' at depth 0 outside quotes (followed by space, or after a quoted key)
    size_t i = 0;
    while (i < e.size() && std::isspace(static_cast<unsigned char>(e[i]))) ++i;
    if (i == e.size()) return;
    size_t colon = std::string_view::npos;
    std::string key;
    if (e[i] == '"' || e[i] == '\'') {
      size_t qe = quoted_end(e, i);
      if (qe == std::string_view::npos) return;
      key = std::string(e.substr(i + 1, qe - i - 2));
      colon = e.find(':', qe);
    } else {
      size_t k = i;
      while (k < e.size() && !(e[k] == ':' && (k + 1 == e.size() || std::isspace(static_cast<unsigned char>(e[k + 1])))))
        ++k;
      if (k == e.size()) return;
      key = trim(e.substr(i, k - i));
      colon = k;
    }
    if (colon == std::string_view::npos) return;
    size_t vb = colon + 1;
    while (vb < e.size() && std::isspace(static_cast<unsigned char>(e[vb]))) ++vb;
    size_t ve = e.size();
    while (ve > vb && std::isspace(static_cast<unsigned char>(e[ve - 1]))) --ve;
    m.pairs.push_back({key, elem_begin + vb, elem_begin + ve});
  };
  for (size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      size_t e = quoted_end(text, i);
      if (e == std::string_view::npos) break;
      i = e - 1;
    } else if (c == '#' && i > 0 && std::isspace(static_cast<unsigned char>(text[i - 1]))) {
      size_t nl = text.find('\n', i);
      if (nl == std::string_view::npos) break;
      i = nl;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
      if (depth == 0) {
        finish_elem(i);
        m.close = i;
        return m;
      }
    } else if (c == ',' && depth == 1) {
      finish_elem(i);
      elem_begin = i + 1;
    }
  }
  return make_error(ErrorCode::kInvalidArgument, "unbalanced flow map starting at offset {}", open);
}

size_t line_offset(const Lines& L, size_t line) {
  size_t off = 0;
  for (size_t i = 0; i < line && i < L.lines.size(); ++i) off += L.lines[i].text.size() + (L.lines[i].cr ? 2 : 1);
  return off;
}

// Every setting of a model as text, to compare two parses.
std::map<std::string, std::string> model_fields(const ModelConfig& m) {
  auto opt = [](const auto& o) { return o ? fmt::format("{}", *o) : std::string("-"); };
  std::map<std::string, std::string> f;
  f["path"] = m.path;
  f["ctx"] = m.ctx_auto ? "auto" : fmt::format("{}", m.ctx);
  f["ctx_max"] = fmt::format("{}", m.ctx_max);
  f["kv_type"] = std::string(type_name(m.kv_type));
  f["batch"] = fmt::format("{}", m.batch);
  f["prompt_chunk"] = fmt::format("{}", m.prompt_chunk);
  f["threads"] = fmt::format("{}", m.threads);
  f["parallel"] = fmt::format("{}", m.parallel);
  f["mmap"] = fmt::format("{}", m.mmap);
  f["mlock"] = fmt::format("{}", m.mlock);
  f["repack"] = fmt::format("{}", m.repack);
  f["pinned"] = fmt::format("{}", m.pinned);
  f["stop"] = fmt::format("{}", fmt::join(m.stop, "\x1f"));
  f["keep_alive"] = fmt::format("{}", m.keep_alive.count());
  f["deadline"] = fmt::format("{}", m.deadline.count());
  f["max_tokens"] = fmt::format("{}", m.max_tokens);
  f["queue"] = fmt::format("{}", m.queue);
  const SamplingOptions& s = m.sampling;
  f["temperature"] = opt(s.temperature);
  f["top_k"] = opt(s.top_k);
  f["top_p"] = opt(s.top_p);
  f["min_p"] = opt(s.min_p);
  f["repeat_penalty"] = opt(s.repeat_penalty);
  f["repeat_last_n"] = opt(s.repeat_last_n);
  f["presence_penalty"] = opt(s.presence_penalty);
  f["frequency_penalty"] = opt(s.frequency_penalty);
  f["seed"] = opt(s.seed);
  return f;
}

std::string top_fields(const RuntimeConfig& c) {
  std::string s = fmt::format("budget={} threads={} router={} server={}:{}:{}:{}:{}", c.memory_budget_auto ? 0 : c.memory_budget,
                              c.threads, c.router, c.server.host, c.server.port, c.server.api_key, c.server.max_body,
                              c.server.shutdown_grace.count());
  for (const auto& r : c.routes) s += fmt::format(" route:{}:{}:{}:{}", r.name, r.model, r.max_tokens, r.system.size());
  return s;
}

// After the edit: the entry has the values, and nothing else changed.
Status check_edit(std::string_view before, std::string_view after, std::string_view name, const std::string& base_dir,
                  std::string_view model_name, std::span<const ConfigValue> values, bool created) {
  auto b = before.empty() ? Result<RuntimeConfig>(RuntimeConfig{}) : parse_config(before, name, base_dir);
  auto a = parse_config(after, name, base_dir);
  if (!a)
    return make_error(ErrorCode::kInternal, "the edited config does not parse ({}); nothing was written",
                      a.error().message);
  if (!b) return make_error(ErrorCode::kInvalidArgument, "{}", b.error().message);
  if (!before.empty() && top_fields(*a) != top_fields(*b))
    return make_error(ErrorCode::kInternal, "the edit changed top-level settings; nothing was written");
  if (a->models.size() != b->models.size() + (created ? 1 : 0))
    return make_error(ErrorCode::kInternal, "the edit changed the number of models; nothing was written");
  for (const auto& bm : b->models) {
    const ModelConfig* am = a->find_model(bm.name);
    if (!am) return make_error(ErrorCode::kInternal, "the edit lost model '{}'; nothing was written", bm.name);
    auto fa = model_fields(*am), fb = model_fields(bm);
    if (bm.name == model_name)
      for (const auto& [k, v] : values) fa.erase(k), fb.erase(k);
    if (fa != fb)
      return make_error(ErrorCode::kInternal, "the edit changed other settings of model '{}'; nothing was written",
                        bm.name);
  }
  const ModelConfig* m = a->find_model(model_name);
  if (!m) return make_error(ErrorCode::kInternal, "the edited config has no model '{}'", model_name);
  const auto f = model_fields(*m);
  for (const auto& [k, v] : values) {
    auto it = f.find(k);
    if (it == f.end())
      return make_error(ErrorCode::kInternal, "'{}' is not a model setting codey tune can check", k);
    if (it->second != v)
      return make_error(ErrorCode::kInternal, "after the edit {} of model '{}' reads as '{}', expected '{}'", k,
                        model_name, it->second, v);
  }
  return {};
}

}  // namespace

Result<ConfigEdit> edit_config_text(std::string_view text, std::string_view config_name, const std::string& base_dir,
                                    std::string_view model_name, std::span<const ConfigValue> values,
                                    std::string_view comment, std::string_view new_entry_path) {
  ConfigEdit out;
  const std::string comment_line = comment.empty() ? std::string() : fmt::format("{}: {}", kCommentMarker, comment);
  const size_t first = text.find_first_not_of(" \t\r\n");
  const bool json = first != std::string_view::npos && text[first] == '{';
  if (!trim(text).empty()) {
    auto before = parse_config(text, config_name, base_dir);
    if (!before)
      return make_error(ErrorCode::kInvalidArgument, "the config does not parse, fix it first: {}",
                        before.error().message);
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::kInvalidArgument, "{}: not valid YAML: {}", config_name, e.msg);
  }
  Lines L = Lines::split(text);

  auto summary_of = [&](const std::map<std::string, std::string>& old_values) {
    std::vector<std::string> parts;
    for (const auto& [k, v] : values) {
      auto it = old_values.find(k);
      if (it == old_values.end())
        parts.push_back(fmt::format("{} {} (new)", k, v));
      else if (it->second == v)
        parts.push_back(fmt::format("{} {} (unchanged)", k, v));
      else
        parts.push_back(fmt::format("{} {} -> {}", k, it->second, v));
    }
    return fmt::format("{}", fmt::join(parts, ", "));
  };

  // yaml-cpp: a missing key reads as an undefined node (false in a condition).
  const bool has_models = root.IsMap() && root["models"];
  const YAML::Node models = has_models ? root["models"] : YAML::Node();
  YAML::Node key_node, entry;  // valid only when `found`
  bool found = false;
  if (has_models && models.IsMap())
    for (const auto& kv : models)
      if (kv.first.IsScalar() && kv.first.Scalar() == model_name) {
        key_node = kv.first;
        entry = kv.second;
        found = true;
      }

  std::map<std::string, std::string> old_values;
  if (!found) {
    // ---- a new entry at the end of `models` (or a new `models` section)
    if (json)
      return make_error(ErrorCode::kUnsupported,
                        "{} is JSON and has no model '{}'; add the entry (with its path) first, then run tune again",
                        config_name, model_name);
    std::vector<Line> block;
    std::string entry_indent = "  ";
    size_t insert_at = L.lines.size();
    if (has_models && models.IsMap() && models.size() > 0) {
      if (models.Style() == YAML::EmitterStyle::Flow)
        return make_error(ErrorCode::kUnsupported, "models in {} is a flow map ({{...}}); add '{}' by hand first",
                          config_name, model_name);
      const auto first_model = models.begin()->first;
      const size_t fl = static_cast<size_t>(mark_line(first_model));
      entry_indent = L.lines[fl].text.substr(0, indent_of(L.lines[fl].text));
      size_t models_line = 0;
      for (const auto& kv : root)
        if (kv.first.Scalar() == "models") models_line = static_cast<size_t>(mark_line(kv.first));
      const size_t end = block_end(L, models_line, indent_of(L.lines[models_line].text));
      insert_at = last_content(L, models_line, end) + 1;
    } else if (has_models && (models.IsNull() || (models.IsMap() && models.size() == 0))) {
      size_t models_line = 0;
      for (const auto& kv : root)
        if (kv.first.Scalar() == "models") models_line = static_cast<size_t>(mark_line(kv.first));
      if (models.IsMap()) {  // "models: {}": drop the empty flow map
        std::string& t = L.lines[models_line].text;
        const size_t brace = t.find('{');
        const size_t close = t.find('}', brace);
        if (brace != std::string::npos && close != std::string::npos) t.erase(brace, close - brace + 1);
        while (!t.empty() && t.back() == ' ') t.pop_back();
      }
      insert_at = models_line + 1;
    } else if (has_models) {
      return make_error(ErrorCode::kInvalidArgument, "models in {} is not a map", config_name);
    } else {
      if (!L.lines.empty() && !blank(L.lines.back().text)) block.push_back(L.make(""));
      block.push_back(L.make("models:"));
      insert_at = L.lines.size();
    }
    const std::string child = entry_indent + "  ";
    block.push_back(L.make(fmt::format("{}{}:", entry_indent, model_name)));
    block.push_back(L.make(fmt::format("{}path: {}", child, quote_if_needed(new_entry_path, false))));
    if (!comment_line.empty()) block.push_back(L.make(child + comment_line));
    for (const auto& [k, v] : values) block.push_back(L.make(fmt::format("{}{}: {}", child, k, value_text(v, false))));
    L.lines.insert(L.lines.begin() + static_cast<std::ptrdiff_t>(insert_at), block.begin(), block.end());
    if (L.lines.size() == block.size()) L.final_newline = true;
    out.created_entry = true;
  } else if (entry.IsMap() && entry.Style() != YAML::EmitterStyle::Flow) {
    // ---- block map: replace values in place, add the missing keys at the end
    const size_t key_line = static_cast<size_t>(mark_line(key_node));
    const size_t key_indent = indent_of(L.lines[key_line].text);
    const size_t end = block_end(L, key_line, key_indent);
    std::string child_indent = L.lines[key_line].text.substr(0, key_indent) + "  ";
    std::map<std::string, size_t> key_lines;  // tuned key -> line
    bool first_child = true;
    for (const auto& kv : entry) {
      const size_t l = static_cast<size_t>(mark_line(kv.first));
      if (first_child && l < L.lines.size()) {
        child_indent = L.lines[l].text.substr(0, indent_of(L.lines[l].text));
        first_child = false;
      }
      for (const auto& [k, v] : values)
        if (kv.first.Scalar() == k) key_lines[k] = l;
    }
    std::map<size_t, std::pair<std::string, KeyLine>> edits;  // line -> (new value, where)
    bool all_same = true;
    for (const auto& [k, v] : values) {
      auto it = key_lines.find(k);
      if (it == key_lines.end()) {
        all_same = false;
        continue;
      }
      auto kl = parse_key_line(L.lines[it->second].text, k);
      if (!kl)
        return make_error(ErrorCode::kUnsupported, "{}:{}: cannot edit '{}' of model '{}' (expected `{}: value` on one line)",
                          config_name, it->second + 1, k, model_name, k);
      const std::string old = unquote(std::string_view(L.lines[it->second].text).substr(kl->value_begin, kl->value_end - kl->value_begin));
      old_values[k] = old;
      if (old != v) {
        all_same = false;
        edits[it->second] = {value_text(v, json), *kl};
      }
    }
    bool has_comment = false;
    for (size_t i = key_line + 1; i < end; ++i) has_comment |= tune_comment_line(L.lines[i].text);
    if (all_same && (has_comment || comment_line.empty())) {
      out.text = std::string(text);
      out.summary = summary_of(old_values);
      return out;
    }
    const size_t last = last_content(L, key_line, end);
    size_t first_tuned = std::string::npos;
    for (const auto& [k, l] : key_lines) first_tuned = std::min(first_tuned, l);
    std::vector<Line> result;
    for (size_t i = 0; i < L.lines.size(); ++i) {
      const bool in_entry = i > key_line && i < end;
      if (in_entry && tune_comment_line(L.lines[i].text) && !comment_line.empty()) continue;
      if (i == first_tuned && !comment_line.empty()) result.push_back(L.make(child_indent + comment_line));
      Line line = L.lines[i];
      if (auto e = edits.find(i); e != edits.end()) line.text = replace_value(line.text, e->second.second, e->second.first);
      result.push_back(std::move(line));
      if (i == last) {
        bool comment_done = first_tuned != std::string::npos || comment_line.empty();
        for (const auto& [k, v] : values) {
          if (key_lines.count(k)) continue;
          if (!comment_done) {
            result.push_back(L.make(child_indent + comment_line));
            comment_done = true;
          }
          result.push_back(L.make(fmt::format("{}{}: {}", child_indent, k, value_text(v, json))));
        }
      }
    }
    L.lines = std::move(result);
  } else if (entry.IsMap()) {
    // ---- flow map { ... } on one or more lines
    const std::string joined = L.join();
    const size_t key_line = static_cast<size_t>(mark_line(key_node));
    const size_t value_line = static_cast<size_t>(std::max(mark_line(entry), mark_line(key_node)));
    size_t open = joined.find('{', line_offset(L, value_line) + (value_line == key_line
                                                                      ? std::max<size_t>(0, static_cast<size_t>(std::max(0, key_node.Mark().column)))
                                                                      : 0));
    if (open == std::string::npos)
      return make_error(ErrorCode::kInternal, "{}:{}: cannot find the '{{' of model '{}'", config_name, key_line + 1,
                        model_name);
    auto fm = parse_flow_map(joined, open);
    if (!fm) return std::unexpected(fm.error());
    struct Replace {
      size_t at, len;
      std::string with;
    };
    std::vector<Replace> reps;
    bool all_same = true;
    std::string added;
    for (const auto& [k, v] : values) {
      auto it = std::find_if(fm->pairs.begin(), fm->pairs.end(), [&](const FlowPair& p) { return p.key == k; });
      if (it == fm->pairs.end()) {
        all_same = false;
        added += fmt::format(", {}: {}", json ? "\"" + k + "\"" : k, value_text(v, json));
        continue;
      }
      const std::string old = unquote(std::string_view(joined).substr(it->value_begin, it->value_end - it->value_begin));
      old_values[k] = old;
      if (old != v) {
        all_same = false;
        reps.push_back({it->value_begin, it->value_end - it->value_begin, value_text(v, json)});
      }
    }
    // The comment goes on its own line above the entry (not in JSON, which has none).
    const bool can_comment = !json && !comment_line.empty() &&
                             indent_of(L.lines[key_line].text) == L.lines[key_line].text.find_first_not_of(" \t");
    const bool has_comment = key_line > 0 && tune_comment_line(L.lines[key_line - 1].text);
    if (all_same && (has_comment || !can_comment)) {
      out.text = std::string(text);
      out.summary = summary_of(old_values);
      return out;
    }
    if (!added.empty()) {
      size_t at = fm->close;
      while (at > fm->open + 1 && std::isspace(static_cast<unsigned char>(joined[at - 1]))) --at;
      if (joined[at - 1] == '{') added = added.substr(2);
      else if (joined[at - 1] == ',') added = added.substr(1);
      reps.push_back({at, 0, added});
    }
    std::sort(reps.begin(), reps.end(), [](const Replace& a, const Replace& b) { return a.at > b.at; });
    std::string edited = joined;
    for (const auto& r : reps) edited.replace(r.at, r.len, r.with);
    Lines E = Lines::split(edited);
    if (can_comment) {
      const std::string indent = E.lines[key_line].text.substr(0, indent_of(E.lines[key_line].text));
      if (has_comment)
        E.lines[key_line - 1].text = indent + comment_line;
      else
        E.lines.insert(E.lines.begin() + static_cast<std::ptrdiff_t>(key_line), E.make(indent + comment_line));
    }
    L = std::move(E);
  } else if (entry.IsScalar()) {
    // ---- `name: path.gguf`: becomes a block map with the same path
    if (json) return make_error(ErrorCode::kUnsupported, "{}: model '{}' is a plain path; give it a map first", config_name, model_name);
    const size_t key_line = static_cast<size_t>(mark_line(key_node));
    auto kl = parse_key_line(L.lines[key_line].text, model_name);
    if (!kl)
      return make_error(ErrorCode::kUnsupported, "{}:{}: cannot edit model '{}' (expected `{}: path` on one line)",
                        config_name, key_line + 1, model_name, model_name);
    const std::string& t = L.lines[key_line].text;
    const std::string path_text = t.substr(kl->value_begin, kl->value_end - kl->value_begin);
    std::string tail = trim(std::string_view(t).substr(kl->value_end));
    const std::string indent = t.substr(0, indent_of(t));
    const std::string child = indent + "  ";
    std::vector<Line> block;
    block.push_back(L.make(t.substr(0, kl->colon + 1) + (tail.empty() ? "" : "  " + tail)));
    block.push_back(L.make(child + "path: " + path_text));
    if (!comment_line.empty()) block.push_back(L.make(child + comment_line));
    for (const auto& [k, v] : values) block.push_back(L.make(fmt::format("{}{}: {}", child, k, value_text(v, false))));
    L.lines.erase(L.lines.begin() + static_cast<std::ptrdiff_t>(key_line));
    L.lines.insert(L.lines.begin() + static_cast<std::ptrdiff_t>(key_line), block.begin(), block.end());
  } else {
    return make_error(ErrorCode::kInvalidArgument, "{}: model '{}' has no settings map", config_name, model_name);
  }

  out.text = L.join();
  out.changed = out.text != text;
  out.summary = summary_of(old_values);
  CODEY_TRY(check_edit(text, out.text, config_name, base_dir, model_name, values, out.created_entry));
  return out;
}

Result<std::optional<std::string>> find_model_by_path(const RuntimeConfig& cfg, const std::string& model_path) {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  for (const auto& m : cfg.models) {
    std::error_code ec;
    if (fs::exists(m.path, ec) && fs::equivalent(m.path, model_path, ec)) names.push_back(m.name);
  }
  if (names.empty()) return std::optional<std::string>();
  if (names.size() > 1)
    return make_error(ErrorCode::kInvalidArgument, "models {} all use {}; say which with --name",
                      fmt::format("{}", fmt::join(names, ", ")), model_path);
  return std::optional<std::string>(names.front());
}

}  // namespace codey::tune
