// Code extraction from model answers: fenced blocks and their target file
// names (info string, first-line marker, the line before, the task), or a
// whole answer that is plain code; file names mentioned in a task.
#include <algorithm>
#include <cctype>

#include "codey/assistant.h"

namespace codey {

namespace {

struct ExtLang {
  std::string_view ext, lang;
};
constexpr ExtLang kExtensions[] = {
    {"py", "python"},     {"pyi", "python"},    {"c", "c"},           {"h", "c"},           {"cc", "cpp"},
    {"cpp", "cpp"},       {"cxx", "cpp"},       {"c++", "cpp"},       {"hpp", "cpp"},       {"hh", "cpp"},
    {"hxx", "cpp"},       {"js", "javascript"}, {"mjs", "javascript"}, {"cjs", "javascript"}, {"jsx", "javascript"},
    {"ts", "typescript"}, {"tsx", "typescript"}, {"java", "java"},     {"go", "go"},         {"rs", "rust"},
    {"rb", "ruby"},       {"php", "php"},       {"cs", "csharp"},     {"swift", "swift"},   {"kt", "kotlin"},
    {"kts", "kotlin"},    {"scala", "scala"},   {"sh", "bash"},       {"bash", "bash"},     {"zsh", "bash"},
    {"sql", "sql"},       {"html", "html"},     {"htm", "html"},      {"css", "css"},       {"scss", "scss"},
    {"json", "json"},     {"yaml", "yaml"},     {"yml", "yaml"},      {"toml", "toml"},     {"md", "markdown"},
    {"txt", "text"},      {"lua", "lua"},       {"r", "r"},           {"jl", "julia"},      {"hs", "haskell"},
    {"ml", "ocaml"},      {"ex", "elixir"},     {"exs", "elixir"},    {"erl", "erlang"},    {"clj", "clojure"},
    {"dart", "dart"},     {"pl", "perl"},       {"vue", "vue"},       {"svelte", "svelte"}, {"xml", "xml"},
    {"ini", "ini"},       {"cfg", "ini"},       {"cmake", "cmake"},   {"mk", "make"},       {"zig", "zig"},
    {"nim", "nim"},       {"v", "verilog"},     {"asm", "asm"},       {"s", "asm"},         {"proto", "protobuf"},
};
constexpr std::string_view kBareNames[] = {"Makefile", "Dockerfile", "CMakeLists.txt", "Rakefile", "Gemfile"};

std::string lower(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string_view extension_of(std::string_view name) {
  const auto slash = name.find_last_of('/');
  const auto base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  const auto dot = base.find_last_of('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == base.size()) return {};
  return base.substr(dot + 1);
}

bool path_chars(std::string_view s) {
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '/' || c == '+')) return false;
  return true;
}

// A word that names a file: known extension (or bare name), path characters only.
std::optional<std::string> as_filename(std::string_view word) {
  // Strip decoration: quotes, backticks, emphasis, brackets, trailing punctuation.
  auto strip = [](std::string_view w) {
    constexpr std::string_view kLead = "\"'`*([<{";
    constexpr std::string_view kTrail = "\"'`*)]>},;:!?.";
    while (!w.empty() && kLead.find(w.front()) != std::string_view::npos) w.remove_prefix(1);
    while (!w.empty() && kTrail.find(w.back()) != std::string_view::npos) w.remove_suffix(1);
    return w;
  };
  word = strip(word);
  if (word.empty() || word.size() > 200 || word.find("://") != std::string_view::npos) return std::nullopt;
  if (word.starts_with("./")) word.remove_prefix(2);
  if (!path_chars(word)) return std::nullopt;
  for (auto b : kBareNames) {
    if (word == b || (word.size() > b.size() && word.ends_with(b) && word[word.size() - b.size() - 1] == '/'))
      return std::string(word);
  }
  const auto ext = extension_of(word);
  if (ext.empty()) return std::nullopt;
  // Upper-case extensions are acronyms more often than files ("e.g. the API.MD").
  const std::string lext = lower(ext);
  if (lext != ext) return std::nullopt;
  const auto base_end = word.size() - ext.size() - 1;
  if (base_end == 0 || word[base_end - 1] == '/') return std::nullopt;
  for (const auto& e : kExtensions)
    if (e.ext == lext) {
      // "1.5" or "v2.c"-like version numbers: the stem needs a letter or underscore.
      const auto stem = word.substr(0, base_end);
      if (std::none_of(stem.begin(), stem.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }))
        return std::nullopt;
      return std::string(word);
    }
  return std::nullopt;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t p = 0;
  while (p <= text.size()) {
    const auto e = text.find('\n', p);
    if (e == std::string_view::npos) {
      if (p < text.size()) lines.push_back(text.substr(p));
      break;
    }
    auto line = text.substr(p, e - p);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    p = e + 1;
  }
  return lines;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// Drops <think>...</think> sections (reasoning models): code in them is a draft.
std::string without_thinking(std::string_view text) {
  std::string out;
  size_t p = 0;
  while (true) {
    const auto b = text.find("<think>", p);
    if (b == std::string_view::npos) break;
    out.append(text.substr(p, b - p));
    const auto e = text.find("</think>", b);
    if (e == std::string_view::npos) return out;  // still thinking: nothing after counts
    p = e + 8;
  }
  out.append(text.substr(p));
  return out;
}

// File named in a fence info string: title=x, file=x, filename=x, path=x,
// name=x, lang:x, or a bare x.ext.
void parse_info(std::string_view info, std::string& lang, std::string& file) {
  auto ws = words(info);
  for (size_t i = 0; i < ws.size(); ++i) {
    std::string_view w = ws[i];
    if (w.starts_with("{") || w.starts_with(".")) {  // {.python} pandoc style
      while (!w.empty() && (w.front() == '{' || w.front() == '.')) w.remove_prefix(1);
      while (!w.empty() && w.back() == '}') w.remove_suffix(1);
    }
    const auto eq = w.find('=');
    if (eq != std::string_view::npos) {
      const std::string key = lower(w.substr(0, eq));
      if (key == "title" || key == "file" || key == "filename" || key == "path" || key == "name") {
        if (auto f = as_filename(w.substr(eq + 1))) file = *f;
      }
      continue;
    }
    const auto colon = w.find(':');
    if (colon != std::string_view::npos && colon > 0) {  // python:calc.py
      if (lang.empty()) lang = normalize_language(w.substr(0, colon));
      if (auto f = as_filename(w.substr(colon + 1))) file = *f;
      continue;
    }
    if (auto f = as_filename(w)) {
      file = *f;
      continue;
    }
    if (i == 0 && lang.empty()) lang = normalize_language(w);
  }
}

// "# file: calc.py", "// calc.c", "<!-- file: a.html -->", "-- x.sql".
// Returns the name and whether the line is only a marker (to be dropped).
std::optional<std::pair<std::string, bool>> first_line_marker(std::string_view line) {
  std::string_view s = trim(line);
  bool comment = false;
  for (std::string_view p : {"<!--", "/*", "//", "#", "--", ";", "%"})
    if (s.starts_with(p)) {
      s.remove_prefix(p.size());
      comment = true;
      break;
    }
  for (std::string_view p : {"-->", "*/"})
    if (s.ends_with(p)) s.remove_suffix(p.size());
  s = trim(s);
  bool keyword = false;
  for (std::string_view k : {"file:", "filename:", "File:", "Filename:", "path:", "Path:", "FILE:"})
    if (s.starts_with(k)) {
      s.remove_prefix(k.size());
      keyword = true;
      break;
    }
  s = trim(s);
  if (!comment && !keyword) return std::nullopt;
  if (s.find(' ') != std::string_view::npos) return std::nullopt;
  auto f = as_filename(s);
  if (!f) return std::nullopt;
  return std::make_pair(*f, keyword);
}

bool languages_match(std::string_view block_lang, std::string_view file) {
  const std::string fl = language_for_file(file);
  if (block_lang.empty() || fl.empty()) return true;
  if (block_lang == fl) return true;
  if (extension_of(file) == "h" && (block_lang == "c" || block_lang == "cpp")) return true;
  return false;
}

bool code_like_line(std::string_view l) {
  l = trim(l);
  if (l.empty()) return false;
  static constexpr std::string_view kStarts[] = {
      "def ",     "class ",  "import ",  "from ",   "#include", "#define", "#!",      "return",   "if ",
      "if(",      "for ",    "for(",     "while ",  "while(",   "else",    "elif ",   "try:",     "except",
      "finally:", "with ",   "async ",   "await ",  "function", "const ",  "let ",    "var ",     "export ",
      "int ",     "void ",   "char ",    "double ", "float ",   "bool ",   "auto ",   "static ",  "struct ",
      "public ",  "private ", "package ", "fn ",    "pub ",     "use ",    "namespace", "template", "#",
      "//",       "/*",      "*",        "@",       "}",        "{",       ")",       "]",        "print(",
      "console.", "std::",   "using ",   "echo ",   "raise ",   "assert ", "pass",    "break",    "continue",
      "yield ",   "lambda",  "switch",   "case ",   "default:", "do ",     "SELECT ", "CREATE ", "INSERT "};
  for (auto p : kStarts)
    if (l.starts_with(p)) return true;
  const char last = l.back();
  if (last == ';' || last == '{' || last == '}' || last == ':' || last == ')' || last == ',' || last == '(') return true;
  // assignments and calls: "x = 1", "foo(bar)"
  if (l.find(" = ") != std::string_view::npos || l.find("==") != std::string_view::npos) return true;
  const auto paren = l.find('(');
  if (paren != std::string_view::npos && paren > 0 && l.find(' ') > paren) return true;
  return false;
}

bool prose_line(std::string_view l) {
  l = trim(l);
  const auto ws = words(l);
  if (ws.size() < 6) return false;
  if (!std::isupper(static_cast<unsigned char>(l.front()))) return false;
  size_t alpha_words = 0;
  for (auto w : ws)
    if (std::all_of(w.begin(), w.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == ',' || c == '.'; }))
      ++alpha_words;
  return alpha_words * 10 >= ws.size() * 8;
}

}  // namespace

std::string language_for_file(std::string_view filename) {
  const auto slash = filename.find_last_of('/');
  const auto base = slash == std::string_view::npos ? filename : filename.substr(slash + 1);
  if (base == "Makefile") return "make";
  if (base == "Dockerfile") return "dockerfile";
  if (base == "CMakeLists.txt") return "cmake";
  const std::string ext = lower(extension_of(filename));
  for (const auto& e : kExtensions)
    if (e.ext == ext) return std::string(e.lang);
  return "";
}

std::string normalize_language(std::string_view lang) {
  std::string l = lower(trim(lang));
  static constexpr std::pair<std::string_view, std::string_view> kAliases[] = {
      {"py", "python"},     {"python3", "python"}, {"py3", "python"},      {"c++", "cpp"},
      {"cxx", "cpp"},       {"cc", "cpp"},         {"hpp", "cpp"},         {"js", "javascript"},
      {"node", "javascript"}, {"nodejs", "javascript"}, {"jsx", "javascript"}, {"mjs", "javascript"},
      {"ts", "typescript"}, {"tsx", "typescript"}, {"sh", "bash"},         {"shell", "bash"},
      {"zsh", "bash"},      {"console", "bash"},   {"rs", "rust"},         {"golang", "go"},
      {"rb", "ruby"},       {"c#", "csharp"},      {"cs", "csharp"},       {"yml", "yaml"},
      {"md", "markdown"},   {"h", "c"},            {"kt", "kotlin"},       {"plaintext", "text"},
      {"txt", "text"},
  };
  for (const auto& [a, n] : kAliases)
    if (l == a) return std::string(n);
  return l;
}

std::vector<std::string> files_named_in(std::string_view text) {
  std::vector<std::string> out;
  for (auto w : words(text)) {
    auto f = as_filename(w);
    if (!f) continue;
    if (std::find(out.begin(), out.end(), *f) == out.end()) out.push_back(*f);
  }
  return out;
}

bool looks_like_code(std::string_view text) {
  size_t code = 0, prose = 0, total = 0;
  for (auto l : split_lines(text)) {
    if (trim(l).empty()) continue;
    ++total;
    if (code_like_line(l)) ++code;
    else if (prose_line(l)) ++prose;
  }
  return total > 0 && code * 10 >= total * 6 && prose * 10 <= total;
}

std::vector<CodeBlock> extract_code(std::string_view answer_in, std::span<const std::string> task_files) {
  const std::string answer = without_thinking(answer_in);
  const auto lines = split_lines(answer);
  std::vector<CodeBlock> blocks;
  bool any_fence = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    const auto ind = l.find_first_not_of(" \t");
    if (ind == std::string_view::npos) continue;
    const std::string_view t = l.substr(ind);
    const char fc = t.empty() ? 0 : t[0];
    if (fc != '`' && fc != '~') continue;
    size_t n = 0;
    while (n < t.size() && t[n] == fc) ++n;
    if (n < 3) continue;
    const std::string_view info = trim(t.substr(n));
    if (fc == '`' && info.find('`') != std::string_view::npos) continue;  // inline code, not a fence
    any_fence = true;
    CodeBlock b;
    parse_info(info, b.language, b.filename);
    if (!b.filename.empty()) b.filename_source = "fence";
    // Body: until a closing fence of the same character, at least as long.
    size_t j = i + 1;
    std::string code;
    for (; j < lines.size(); ++j) {
      std::string_view c = lines[j];
      const auto ci = c.find_first_not_of(" \t");
      if (ci != std::string_view::npos) {
        std::string_view ct = trim(c.substr(ci));
        size_t m = 0;
        while (m < ct.size() && ct[m] == fc) ++m;
        if (m >= n && m == ct.size()) break;
      }
      // Strip the fence's own indentation from body lines (fences inside lists).
      size_t strip = 0;
      while (strip < ind && strip < c.size() && (c[strip] == ' ' || c[strip] == '\t')) ++strip;
      code.append(c.substr(strip));
      code.push_back('\n');
    }
    // A first-line marker names the file (and is dropped when it is only a marker).
    if (const auto nl = code.find('\n'); nl != std::string::npos) {
      if (auto m = first_line_marker(std::string_view(code).substr(0, nl))) {
        if (b.filename.empty()) {
          b.filename = m->first;
          b.filename_source = "first line";
        }
        if (m->second && m->first == b.filename) code.erase(0, nl + 1);
      }
    }
    // The line before: "**calc.py**", "`calc.py`:", "### calc.py", "File: calc.py".
    if (b.filename.empty()) {
      for (size_t k = i, seen = 0; k > 0 && seen < 2; --k) {
        std::string_view prev = trim(lines[k - 1]);
        if (prev.empty()) continue;
        ++seen;
        if (prev.size() > 120) break;
        std::vector<std::string> names;
        for (auto w : words(prev))
          if (auto f = as_filename(w)) names.push_back(*f);
        if (names.size() == 1 && languages_match(b.language, names[0])) {
          b.filename = names[0];
          b.filename_source = "line before";
        }
        break;
      }
    }
    if (b.language.empty() && !b.filename.empty()) b.language = language_for_file(b.filename);
    b.code = std::move(code);
    if (!trim(b.code).empty()) blocks.push_back(std::move(b));
    i = j;  // past the closing fence (or the end)
  }
  if (!any_fence && looks_like_code(answer)) {
    CodeBlock b;
    std::string code(trim(answer));
    code.push_back('\n');
    if (const auto nl = code.find('\n'); nl != std::string::npos)
      if (auto m = first_line_marker(std::string_view(code).substr(0, nl))) {
        b.filename = m->first;
        b.filename_source = "first line";
        if (m->second) code.erase(0, nl + 1);
      }
    b.code = std::move(code);
    if (!b.filename.empty()) b.language = language_for_file(b.filename);
    b.filename_source = b.filename.empty() ? "" : b.filename_source;
    blocks.push_back(std::move(b));
  }
  // Unnamed blocks get the task's files: for each file no block claimed yet,
  // the longest unnamed block of a matching language.
  for (const auto& f : task_files) {
    const bool claimed = std::any_of(blocks.begin(), blocks.end(), [&](const CodeBlock& b) { return b.filename == f; });
    if (claimed) continue;
    CodeBlock* best = nullptr;
    for (auto& b : blocks) {
      if (!b.filename.empty() || !languages_match(b.language, f)) continue;
      if (!best || b.code.size() > best->code.size()) best = &b;
    }
    if (best) {
      best->filename = f;
      best->filename_source = "task";
      if (best->language.empty()) best->language = language_for_file(f);
    }
  }
  return blocks;
}

}  // namespace codey
