// codey.yaml: the runtime's configuration (memory budget, threads, models,
// routes, server), read with yaml-cpp so every error names the key and line.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "codey/runtime.h"
#include "codey/store.h"

namespace codey {

// ------------------------------------------------------------ durations --

Result<Millis> parse_duration(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  auto bad = [&] {
    return make_error(ErrorCode::kInvalidArgument,
                      "expected a duration like 30s, 5m, 1h30m, 250ms or a number of seconds (negative = forever), "
                      "got '{}'",
                      text);
  };
  if (s.empty()) return bad();
  bool negative = false;
  if (s.front() == '-' || s.front() == '+') {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return bad();
  double total_ms = 0;
  bool any = false;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == 0) return bad();
    double value = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + i, value);
    if (ec != std::errc() || p != s.data() + i || !std::isfinite(value)) return bad();
    s.remove_prefix(i);
    size_t j = 0;
    while (j < s.size() && std::isalpha(static_cast<unsigned char>(s[j]))) ++j;
    const std::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    double scale = 0;
    if (unit.empty()) {
      if (any || !s.empty()) return bad();  // a bare number is seconds, and only alone
      scale = 1000;
    } else if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60e3;
    } else if (unit == "h") {
      scale = 3600e3;
    } else if (unit == "d") {
      scale = 86400e3;
    } else {
      return bad();
    }
    total_ms += value * scale;
    any = true;
  }
  if (total_ms > 1e15) return bad();
  const auto ms = static_cast<int64_t>(std::llround(total_ms));
  return Millis(negative ? -ms : ms);
}

std::string format_duration(Millis d) {
  if (d.count() < 0) return "forever";
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 1000 != 0) return fmt::format("{}ms", ms);
  int64_t s = ms / 1000;
  std::string out;
  if (s >= 3600) {
    out += fmt::format("{}h", s / 3600);
    s %= 3600;
  }
  if (s >= 60) {
    out += fmt::format("{}m", s / 60);
    s %= 60;
  }
  if (s > 0) out += fmt::format("{}s", s);
  return out;
}

void SamplingOptions::merge_from(const SamplingOptions& o) {
  if (o.temperature) temperature = o.temperature;
  if (o.top_k) top_k = o.top_k;
  if (o.top_p) top_p = o.top_p;
  if (o.min_p) min_p = o.min_p;
  if (o.repeat_penalty) repeat_penalty = o.repeat_penalty;
  if (o.repeat_last_n) repeat_last_n = o.repeat_last_n;
  if (o.presence_penalty) presence_penalty = o.presence_penalty;
  if (o.frequency_penalty) frequency_penalty = o.frequency_penalty;
  if (o.seed) seed = o.seed;
}

const ModelConfig* RuntimeConfig::find_model(std::string_view name) const {
  for (const auto& m : models)
    if (m.name == name) return &m;
  return nullptr;
}

const RouteConfig* RuntimeConfig::find_route(std::string_view name) const {
  for (const auto& r : routes)
    if (r.name == name) return &r;
  return nullptr;
}

std::string default_config_path() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("CODEY_CONFIG"); env && *env) return env;
  std::error_code ec;
  if (fs::exists("codey.yaml", ec)) return "codey.yaml";
  if (const char* home = std::getenv("HOME"); home && *home) {
    const std::string p = std::string(home) + "/.config/codey/codey.yaml";
    if (fs::exists(p, ec)) return p;
  }
  return "codey.yaml";
}

uint64_t auto_memory_budget() {
  const uint64_t avail = usable_memory_bytes();
  // Leave room for the OS, the page cache of other work and this process's
  // own heap: 10% of what is available, at least 256 MiB, at most 2 GiB.
  const uint64_t margin = std::clamp<uint64_t>(avail / 10, 256ull << 20, 2ull << 30);
  return avail > margin ? avail - margin : avail / 2;
}

namespace {

// Everything a parse needs for its messages.
struct Parser {
  std::string file;
  std::string base_dir;

  int line_of(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    return m.line >= 0 ? m.line + 1 : 0;
  }

  template <class... Args>
  std::unexpected<Error> err(const YAML::Node& n, std::string_view key, fmt::format_string<Args...> f,
                             Args&&... args) const {
    return std::unexpected(Error{ErrorCode::kInvalidArgument,
                                 fmt::format("{}:{}: {}: {}", file, line_of(n), key,
                                             fmt::format(f, std::forward<Args>(args)...))});
  }

  static std::string describe(const YAML::Node& n) {
    if (!n || n.IsNull()) return "nothing";
    if (n.IsScalar()) return fmt::format("'{}'", n.Scalar());
    if (n.IsSequence()) return "a list";
    if (n.IsMap()) return "a map";
    return "an undefined value";
  }

  Result<std::string> str(const YAML::Node& n, std::string_view key, bool allow_empty = false) const {
    if (!n.IsScalar()) return err(n, key, "expected a string, got {}", describe(n));
    if (!allow_empty && n.Scalar().empty()) return err(n, key, "expected a non-empty string, got ''");
    return n.Scalar();
  }

  Result<bool> boolean(const YAML::Node& n, std::string_view key) const {
    if (n.IsScalar()) {
      std::string v = n.Scalar();
      std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
      if (v == "true" || v == "yes" || v == "on") return true;
      if (v == "false" || v == "no" || v == "off") return false;
    }
    return err(n, key, "expected true or false, got {}", describe(n));
  }

  Result<int64_t> integer(const YAML::Node& n, std::string_view key, int64_t lo, int64_t hi) const {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      int64_t v = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) {
        if (v < lo || v > hi) return err(n, key, "expected an integer in [{}, {}], got {}", lo, hi, v);
        return v;
      }
    }
    return err(n, key, "expected an integer in [{}, {}], got {}", lo, hi, describe(n));
  }

  Result<float> real(const YAML::Node& n, std::string_view key, double lo, double hi) const {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      double v = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc() && p == s.data() + s.size() && !s.empty() && std::isfinite(v)) {
        if (v < lo || v > hi) return err(n, key, "expected a number in [{}, {}], got {}", lo, hi, s);
        return static_cast<float>(v);
      }
    }
    return err(n, key, "expected a number in [{}, {}], got {}", lo, hi, describe(n));
  }

  Result<Millis> duration(const YAML::Node& n, std::string_view key, bool allow_negative) const {
    if (!n.IsScalar()) return err(n, key, "expected a duration (30s, 5m, 1h), got {}", describe(n));
    auto d = parse_duration(n.Scalar());
    if (!d) return err(n, key, "{}", d.error().message);
    if (!allow_negative && d->count() < 0) return err(n, key, "expected a duration >= 0, got '{}'", n.Scalar());
    return *d;
  }

  Result<std::vector<std::string>> string_list(const YAML::Node& n, std::string_view key) const {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      if (n.Scalar().empty()) return err(n, key, "expected a non-empty string or a list of them, got ''");
      out.push_back(n.Scalar());
      return out;
    }
    if (!n.IsSequence()) return err(n, key, "expected a string or a list of strings, got {}", describe(n));
    for (const auto& item : n) {
      if (!item.IsScalar() || item.Scalar().empty())
        return err(item, key, "expected a non-empty string in the list, got {}", describe(item));
      out.push_back(item.Scalar());
    }
    return out;
  }

  std::string resolve_path(const std::string& p) const {
    namespace fs = std::filesystem;
    std::string path = p;
    if (path.starts_with("~/"))
      if (const char* home = std::getenv("HOME")) path = std::string(home) + path.substr(1);
    fs::path fp(path);
    if (fp.is_relative() && !base_dir.empty()) fp = fs::path(base_dir) / fp;
    return fp.lexically_normal().string();
  }

  // A model's `path:`: a file (relative to the config's folder), or a model
  // reference (hf.co/OWNER/REPO:QUANT, OWNER/REPO/FILE.gguf, ollama:NAME:TAG)
  // resolved through the model store now if it is on disk, else when used.
  Status set_model_path(const YAML::Node& v, std::string_view where, const std::string& text, ModelConfig& m) const {
    namespace fs = std::filesystem;
    m.ref.clear();
    const std::string as_path = resolve_path(text);
    std::error_code ec;
    auto ref = parse_model_ref(text);
    if (!ref) return err(v, where, "{}", ref.error().message);
    if (ref->kind == RefKind::kPath || fs::is_regular_file(as_path, ec)) {
      m.path = as_path;
      return {};
    }
    m.ref = ref->str();
    auto file = resolve_model_path(m.ref);
    m.path = file ? *file : m.ref;
    return {};
  }

  // Iterates a map, checking every key against `known`; fn(key, value).
  template <class Fn>
  Status each_key(const YAML::Node& map, std::string_view where, std::span<const std::string_view> known,
                  Fn&& fn) const {
    if (!map.IsMap()) return err(map, where, "expected a map of settings, got {}", describe(map));
    std::set<std::string, std::less<>> seen;
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) return err(kv.first, where, "expected a key name, got {}", describe(kv.first));
      const std::string& k = kv.first.Scalar();
      const std::string path = where.empty() ? k : fmt::format("{}.{}", where, k);
      if (std::find(known.begin(), known.end(), k) == known.end()) {
        std::string list;
        for (auto kn : known) list += (list.empty() ? "" : ", ") + std::string(kn);
        return err(kv.first, path, "unknown key (known keys: {})", list);
      }
      if (!seen.insert(k).second) return err(kv.first, path, "key given twice");
      CODEY_TRY(fn(k, kv.second, path));
    }
    return {};
  }

  // Sampling keys, shared by models, defaults and routes. Returns false if `k` is not one.
  Result<bool> sampling_key(std::string_view k, const YAML::Node& v, std::string_view path,
                            SamplingOptions& s) const {
    auto set_f = [&](std::optional<float>& dst, double lo, double hi) -> Result<bool> {
      auto r = real(v, path, lo, hi);
      if (!r) return std::unexpected(r.error());
      dst = *r;
      return true;
    };
    auto set_i = [&](std::optional<int>& dst, int64_t lo, int64_t hi) -> Result<bool> {
      auto r = integer(v, path, lo, hi);
      if (!r) return std::unexpected(r.error());
      dst = static_cast<int>(*r);
      return true;
    };
    if (k == "temperature") return set_f(s.temperature, 0, 100);
    if (k == "top_k") return set_i(s.top_k, 0, 1 << 30);
    if (k == "top_p") return set_f(s.top_p, 0, 1);
    if (k == "min_p") return set_f(s.min_p, 0, 1);
    if (k == "repeat_penalty") return set_f(s.repeat_penalty, 0.01, 100);
    if (k == "repeat_last_n") return set_i(s.repeat_last_n, 0, 1 << 20);
    if (k == "presence_penalty") return set_f(s.presence_penalty, -100, 100);
    if (k == "frequency_penalty") return set_f(s.frequency_penalty, -100, 100);
    if (k == "seed") {
      auto r = integer(v, path, 0, INT64_MAX);
      if (!r) return std::unexpected(r.error());
      s.seed = static_cast<uint64_t>(*r);
      return true;
    }
    return false;
  }

  // Model keys (all but path are allowed in `defaults`).
  Status model_key(std::string_view k, const YAML::Node& v, std::string_view path, ModelConfig& m) const {
    auto sk = sampling_key(k, v, path, m.sampling);
    if (!sk) return std::unexpected(sk.error());
    if (*sk) return {};
    if (k == "path") {
      auto s = str(v, path);
      if (!s) return std::unexpected(s.error());
      CODEY_TRY(set_model_path(v, path, *s, m));
    } else if (k == "ctx") {
      if (v.IsScalar() && v.Scalar() == "auto") {
        m.ctx_auto = true;
        m.ctx = 0;
      } else {
        auto r = integer(v, path, 16, int64_t(1) << 24);
        if (!r) return err(v, path, "expected 'auto' or a number of positions in [16, {}], got {}", int64_t(1) << 24,
                           describe(v));
        m.ctx = *r;
        m.ctx_auto = false;
      }
    } else if (k == "ctx_max") {
      auto r = integer(v, path, 16, int64_t(1) << 24);
      if (!r) return std::unexpected(r.error());
      m.ctx_max = *r;
    } else if (k == "kv_type") {
      auto s = str(v, path);
      if (!s) return std::unexpected(s.error());
      auto t = type_from_name(*s);
      if (!t || (*t != TensorType::kF16 && *t != TensorType::kBF16 && *t != TensorType::kQ8_0 &&
                 *t != TensorType::kF32))
        return err(v, path, "expected f16, bf16, q8_0 or f32, got '{}'", *s);
      m.kv_type = *t;
    } else if (k == "batch") {
      auto r = integer(v, path, 1, 1 << 16);
      if (!r) return std::unexpected(r.error());
      m.batch = *r;
    } else if (k == "prompt_chunk") {
      auto r = integer(v, path, 1, 1 << 16);
      if (!r) return std::unexpected(r.error());
      m.prompt_chunk = *r;
    } else if (k == "threads") {
      if (v.IsScalar() && v.Scalar() == "auto") {
        m.threads = 0;
      } else {
        auto r = integer(v, path, 1, 1024);
        if (!r) return err(v, path, "expected 'auto' or a thread count in [1, 1024], got {}", describe(v));
        m.threads = static_cast<int>(*r);
      }
    } else if (k == "parallel") {
      auto r = integer(v, path, 1, 256);
      if (!r) return std::unexpected(r.error());
      m.parallel = static_cast<int>(*r);
    } else if (k == "mmap") {
      auto r = boolean(v, path);
      if (!r) return std::unexpected(r.error());
      m.mmap = *r;
    } else if (k == "mlock") {
      auto r = boolean(v, path);
      if (!r) return std::unexpected(r.error());
      m.mlock = *r;
    } else if (k == "repack") {
      auto r = boolean(v, path);
      if (!r) return std::unexpected(r.error());
      m.repack = *r;
    } else if (k == "pinned") {
      auto r = boolean(v, path);
      if (!r) return std::unexpected(r.error());
      m.pinned = *r;
    } else if (k == "stop") {
      auto r = string_list(v, path);
      if (!r) return std::unexpected(r.error());
      m.stop = std::move(*r);
    } else if (k == "keep_alive") {
      auto r = duration(v, path, true);
      if (!r) return std::unexpected(r.error());
      m.keep_alive = *r;
    } else if (k == "deadline") {
      auto r = duration(v, path, false);
      if (!r) return std::unexpected(r.error());
      m.deadline = *r;
    } else if (k == "max_tokens") {
      auto r = integer(v, path, 0, 1 << 24);
      if (!r) return std::unexpected(r.error());
      m.max_tokens = static_cast<int>(*r);
    } else if (k == "queue") {
      auto r = integer(v, path, 0, 1 << 16);
      if (!r) return std::unexpected(r.error());
      m.queue = static_cast<int>(*r);
    } else if (k == "draft") {
      auto s = str(v, path);
      if (!s) return std::unexpected(s.error());
      m.draft = *s;
    } else if (k == "draft_max" || k == "lookup") {
      auto r = integer(v, path, k == "lookup" ? 0 : 1, 64);
      if (!r) return std::unexpected(r.error());
      (k == "lookup" ? m.lookup : m.draft_max) = static_cast<int>(*r);
    } else if (k == "draft_p_min") {
      auto r = real(v, path, 0.0, 1.0);
      if (!r) return std::unexpected(r.error());
      m.draft_p_min = *r;
    } else {
      CODEY_ASSERT(false && "a known model key without a parser");
    }
    return {};
  }
};

constexpr std::string_view kTopKeys[] = {"memory_budget", "threads", "defaults", "models", "router", "routes", "server"};
constexpr std::string_view kSamplingKeys[] = {"temperature",      "top_k",           "top_p",
                                              "min_p",            "repeat_penalty",  "repeat_last_n",
                                              "presence_penalty", "frequency_penalty", "seed"};
constexpr std::string_view kModelOnlyKeys[] = {"path",     "ctx",    "ctx_max", "kv_type", "batch",      "prompt_chunk",
                                               "threads",  "parallel", "mmap",  "mlock",   "repack", "pinned",     "stop",
                                               "keep_alive", "deadline", "max_tokens", "queue", "draft", "draft_max",
                                               "draft_p_min", "lookup"};
constexpr std::string_view kRouteOnlyKeys[] = {"model", "description", "system", "max_tokens", "stop"};
constexpr std::string_view kServerKeys[] = {"host",           "port",           "api_key",        "max_body",
                                            "shutdown_grace", "header_timeout", "body_timeout",   "idle_timeout",
                                            "max_connections", "request_memory", "allowed_origins", "allowed_hosts",
                                            "allow_pull"};

// drop_path: `defaults` name no file and no draft model.
std::vector<std::string_view> joined(std::span<const std::string_view> a, std::span<const std::string_view> b,
                                     bool drop_path = false) {
  std::vector<std::string_view> out;
  for (auto k : a)
    if (!(drop_path && (k == "path" || k == "draft"))) out.push_back(k);
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (unsigned char c : s)
    if (c <= ' ' || c == 0x7f || c == '"' || c == '\\') return false;
  return true;
}

}  // namespace

Result<RuntimeConfig> parse_config(std::string_view text, std::string_view name, const std::string& base_dir) {
  Parser P{std::string(name), base_dir};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::kInvalidArgument, "{}:{}: not valid YAML or JSON: {}", name,
                      e.mark.line >= 0 ? e.mark.line + 1 : 0, e.msg);
  }
  RuntimeConfig cfg;
  cfg.path = std::string(name);
  if (!root || root.IsNull()) return make_error(ErrorCode::kInvalidArgument, "{}: the file is empty", name);
  if (!root.IsMap())
    return make_error(ErrorCode::kInvalidArgument, "{}:{}: expected a map with keys like memory_budget and models",
                      name, P.line_of(root));

  try {
    // `defaults` first: they apply to every model whatever their order in the file.
    ModelConfig defaults;
    const std::vector<std::string_view> default_keys = joined(kModelOnlyKeys, kSamplingKeys, true);
    if (const YAML::Node d = root["defaults"]) {
      CODEY_TRY(P.each_key(d, "defaults", default_keys,
                           [&](std::string_view k, const YAML::Node& v, const std::string& path) -> Status {
                             return P.model_key(k, v, path, defaults);
                           }));
    }
    std::optional<YAML::Node> router_node, routes_node;
    CODEY_TRY(P.each_key(root, "", kTopKeys, [&](std::string_view k, const YAML::Node& v, const std::string& path) -> Status {
      if (k == "memory_budget") {
        if (v.IsScalar() && v.Scalar() == "auto") {
          cfg.memory_budget_auto = true;
          cfg.memory_budget = auto_memory_budget();
        } else {
          if (!v.IsScalar()) return P.err(v, path, "expected 'auto' or a size like 8GiB, got {}", Parser::describe(v));
          auto b = parse_bytes(v.Scalar());
          if (!b || *b == 0) return P.err(v, path, "expected 'auto' or a size like 8GiB, got '{}'", v.Scalar());
          cfg.memory_budget = *b;
        }
      } else if (k == "threads") {
        if (v.IsScalar() && v.Scalar() == "auto") {
          cfg.threads = 0;
        } else {
          auto r = P.integer(v, path, 1, 1024);
          if (!r) return P.err(v, path, "expected 'auto' or a thread count in [1, 1024], got {}", Parser::describe(v));
          cfg.threads = static_cast<int>(*r);
        }
      } else if (k == "models") {
        if (!v.IsMap()) return P.err(v, path, "expected a map of model name -> settings, got {}", Parser::describe(v));
        const std::vector<std::string_view> keys = joined(kModelOnlyKeys, kSamplingKeys);
        for (const auto& kv : v) {
          const std::string mname = kv.first.IsScalar() ? kv.first.Scalar() : "";
          if (!valid_name(mname))
            return P.err(kv.first, path, "expected a model name without spaces or quotes, got {}",
                         Parser::describe(kv.first));
          if (cfg.find_model(mname)) return P.err(kv.first, fmt::format("models.{}", mname), "model defined twice");
          ModelConfig m = defaults;
          m.name = mname;
          m.path.clear();
          m.ref.clear();
          m.line = P.line_of(kv.first);
          const std::string where = fmt::format("models.{}", mname);
          if (kv.second.IsScalar() && !kv.second.Scalar().empty()) {
            CODEY_TRY(P.set_model_path(kv.second, where, kv.second.Scalar(), m));  // `name: path/to/model.gguf`
          } else {
            CODEY_TRY(P.each_key(kv.second, where, keys,
                                 [&](std::string_view mk, const YAML::Node& mv, const std::string& mpath) -> Status {
                                   return P.model_key(mk, mv, mpath, m);
                                 }));
          }
          if (m.path.empty()) return P.err(kv.first, where, "missing 'path' (the model's GGUF file)");
          if (m.ctx_max > 0 && !m.ctx_auto)
            return P.err(kv.first, where, "ctx_max applies only with ctx: auto (ctx is {})", m.ctx);
          cfg.models.push_back(std::move(m));
        }
      } else if (k == "defaults") {
        // parsed above
      } else if (k == "router") {
        router_node = v;
      } else if (k == "routes") {
        routes_node = v;
      } else if (k == "server") {
        ServerConfig& s = cfg.server;
        CODEY_TRY(P.each_key(v, "server", kServerKeys,
                             [&](std::string_view sk, const YAML::Node& sv, const std::string& spath) -> Status {
                               if (sk == "host") {
                                 auto r = P.str(sv, spath);
                                 if (!r) return std::unexpected(r.error());
                                 s.host = *r;
                               } else if (sk == "port") {
                                 auto r = P.integer(sv, spath, 0, 65535);
                                 if (!r) return std::unexpected(r.error());
                                 s.port = static_cast<int>(*r);
                               } else if (sk == "api_key") {
                                 auto r = P.str(sv, spath);
                                 if (!r) return std::unexpected(r.error());
                                 s.api_key = *r;
                               } else if (sk == "max_body" || sk == "request_memory") {
                                 auto b = sv.IsScalar() ? parse_bytes(sv.Scalar()) : Result<uint64_t>(0);
                                 if (!b || *b == 0)
                                   return P.err(sv, spath, "expected a size like 8MiB, got {}", Parser::describe(sv));
                                 (sk == "max_body" ? s.max_body : s.request_memory) = *b;
                               } else if (sk == "allow_pull") {
                                 auto r = P.boolean(sv, spath);
                                 if (!r) return std::unexpected(r.error());
                                 s.allow_pull = *r;
                               } else if (sk == "max_connections") {
                                 auto r = P.integer(sv, spath, 1, 65536);
                                 if (!r) return std::unexpected(r.error());
                                 s.max_connections = static_cast<int>(*r);
                               } else if (sk == "allowed_origins" || sk == "allowed_hosts") {
                                 auto r = P.string_list(sv, spath);
                                 if (!r) return std::unexpected(r.error());
                                 (sk == "allowed_origins" ? s.allowed_origins : s.allowed_hosts) = std::move(*r);
                               } else {
                                 auto r = P.duration(sv, spath, false);
                                 if (!r) return std::unexpected(r.error());
                                 if (sk != "shutdown_grace" && r->count() <= 0)
                                   return P.err(sv, spath, "expected a duration > 0, got '{}'", sv.Scalar());
                                 if (sk == "shutdown_grace") s.shutdown_grace = *r;
                                 else if (sk == "header_timeout") s.header_timeout = *r;
                                 else if (sk == "body_timeout") s.body_timeout = *r;
                                 else s.idle_timeout = *r;
                               }
                               return {};
                             }));
      }
      return {};
    }));

    if (routes_node) {
      const YAML::Node& v = *routes_node;
      if (!v.IsMap()) return P.err(v, "routes", "expected a map of route name -> settings, got {}", Parser::describe(v));
      const std::vector<std::string_view> keys = joined(kRouteOnlyKeys, kSamplingKeys);
      for (const auto& kv : v) {
        const std::string rname = kv.first.IsScalar() ? kv.first.Scalar() : "";
        if (!valid_name(rname))
          return P.err(kv.first, "routes", "expected a route name without spaces or quotes, got {}",
                       Parser::describe(kv.first));
        if (cfg.find_route(rname)) return P.err(kv.first, fmt::format("routes.{}", rname), "route defined twice");
        RouteConfig r;
        r.name = rname;
        r.line = P.line_of(kv.first);
        const std::string where = fmt::format("routes.{}", rname);
        CODEY_TRY(P.each_key(kv.second, where, keys,
                             [&](std::string_view rk, const YAML::Node& rv, const std::string& rpath) -> Status {
                               auto sk = P.sampling_key(rk, rv, rpath, r.sampling);
                               if (!sk) return std::unexpected(sk.error());
                               if (*sk) return {};
                               if (rk == "model" || rk == "description" || rk == "system") {
                                 auto s = P.str(rv, rpath, rk != "model");
                                 if (!s) return std::unexpected(s.error());
                                 if (rk == "model") {
                                   if (!cfg.find_model(*s))
                                     return P.err(rv, rpath, "no model named '{}' in models", *s);
                                   r.model = *s;
                                 } else if (rk == "description") {
                                   r.description = *s;
                                 } else {
                                   r.system = *s;
                                 }
                               } else if (rk == "max_tokens") {
                                 auto n = P.integer(rv, rpath, 0, 1 << 24);
                                 if (!n) return std::unexpected(n.error());
                                 r.max_tokens = static_cast<int>(*n);
                               } else {
                                 auto l = P.string_list(rv, rpath);
                                 if (!l) return std::unexpected(l.error());
                                 r.stop = std::move(*l);
                               }
                               return {};
                             }));
        if (r.model.empty()) return P.err(kv.first, where, "missing 'model' (which configured model serves it)");
        cfg.routes.push_back(std::move(r));
      }
    }
    if (router_node) {
      const YAML::Node& v = *router_node;
      auto s = P.str(v, "router");
      if (!s) return std::unexpected(s.error());
      if (!cfg.find_model(*s)) return P.err(v, "router", "no model named '{}' in models", *s);
      cfg.router = *s;
    }
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::kInvalidArgument, "{}:{}: {}", name, e.mark.line >= 0 ? e.mark.line + 1 : 0, e.msg);
  }

  CODEY_TRY(link_drafts(cfg));
  if (cfg.memory_budget == 0) {
    cfg.memory_budget_auto = true;
    cfg.memory_budget = auto_memory_budget();
  }
  if (cfg.threads <= 0) cfg.threads = usable_cores();
  return cfg;
}

Status link_drafts(RuntimeConfig& cfg) {
  for (ModelConfig& m : cfg.models) {
    m.draft_model.reset();
    if (m.draft.empty()) continue;
    const std::string where = m.line > 0 && !cfg.path.empty()
                                  ? fmt::format("{}:{}: models.{}.draft", cfg.path, m.line, m.name)
                                  : fmt::format("model '{}': draft", m.name);
    if (m.lookup > 0)
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: give one of draft and lookup, not both (lookup is {}, draft '{}')", where, m.lookup,
                        m.draft);
    if (m.draft == m.name)
      return make_error(ErrorCode::kInvalidArgument, "{}: a model cannot draft for itself", where);
    const ModelConfig* d = cfg.find_model(m.draft);
    if (!d) {
      std::string names;
      for (const auto& x : cfg.models) names += (names.empty() ? "" : ", ") + x.name;
      return make_error(ErrorCode::kInvalidArgument, "{}: no model named '{}' in models (configured: {})", where,
                        m.draft, names);
    }
    ModelConfig copy = *d;
    copy.draft.clear();  // a draft drafts alone
    copy.lookup = 0;
    copy.draft_model.reset();
    m.draft_model = std::make_shared<const ModelConfig>(std::move(copy));
  }
  return {};
}

Result<RuntimeConfig> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open config file '{}'", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::kIo, "cannot read config file '{}'", path);
  const std::filesystem::path p(path);
  std::string base = p.has_parent_path() ? p.parent_path().string() : std::string(".");
  std::error_code ec;
  auto abs = std::filesystem::absolute(base, ec);
  if (!ec) base = abs.lexically_normal().string();
  return parse_config(ss.str(), path, base);
}

Result<std::string> model_file(const ModelConfig& model) {
  if (model.ref.empty()) return model.path;
  return resolve_model_path(model.ref);
}

}  // namespace codey
