// Routes without a router model: the deterministic keyword fallback, the
// built-in routes and prompts, and the assistant's runtime configuration
// (codey.yaml plus the quick-mode --model / --router files).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "codey/assistant.h"
#include "codey/store.h"

namespace codey {

namespace {

enum class Kind { kCode, kAlgorithm, kChat, kOther };

std::string lower(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

// Lower-case words of letters, digits, '+' and '#' (c++, c#), with a plural
// 's' dropped so "functions" meets "function".
std::vector<std::string> word_list(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (cur.size() > 3 && cur.back() == 's' && cur[cur.size() - 2] != 's') cur.pop_back();
    if (!cur.empty()) out.push_back(cur);
    cur.clear();
  };
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '+' || c == '#' || c == '_') cur.push_back(static_cast<char>(std::tolower(c)));
    else flush();
  }
  flush();
  return out;
}

const std::set<std::string>& stop_words() {
  static const std::set<std::string> s = {
      "the", "and", "for", "with", "that", "this", "from", "into", "are", "was", "you", "your", "use", "used",
      "all", "any", "its", "one", "can", "will", "not", "but", "has", "have", "task", "route", "model", "when",
      "which", "what", "how", "about", "other", "such", "like", "them", "they", "their", "than", "then", "also",
      "more", "most", "some", "each", "send", "where", "there", "these", "those", "just", "only", "very"};
  return s;
}

// Built-in vocabularies of the usual kinds of route, weighted over the
// route's own words because they were chosen for this purpose.
const std::set<std::string>& vocabulary(Kind k) {
  static const std::set<std::string> code = {
      "create", "write", "implement", "add", "function", "class", "method", "file", "script", "program",
      "fix", "bug", "refactor", "test", "module", "api", "cli", "rename", "update", "edit", "modify",
      "code", "build", "make", "generate", "parse", "parser", "library", "endpoint", "server", "app",
      "calculator", "crud", "helper", "utility", "convert", "read", "save", "print", "output", "input"};
  static const std::set<std::string> algorithm = {
      "algorithm", "complexity", "optimal", "efficient", "efficiently", "dynamic", "programming", "dp",
      "recursion", "recursive", "graph", "tree", "shortest", "path", "sort", "sorting", "search", "binary",
      "prime", "fibonacci", "knapsack", "permutation", "combination", "subsequence", "substring",
      "palindrome", "leetcode", "matrix", "bfs", "dfs", "dijkstra", "heap", "greedy", "o(n)", "big",
      "longest", "minimum", "maximum", "subarray", "array", "linked", "list", "hash", "queue", "stack",
      "backtracking", "memoization", "factorial", "gcd", "lcm", "sieve", "n-queen", "queen", "puzzle"};
  static const std::set<std::string> chat = {
      "explain", "why", "difference", "compare", "meaning", "describe", "question", "help", "how",
      "what", "when", "understand", "concept", "mean", "versu", "vs", "advice", "recommend", "opinion",
      "tell", "overview", "summary", "summarize", "best", "practice", "pro", "con"};
  static const std::set<std::string> none;
  switch (k) {
    case Kind::kCode: return code;
    case Kind::kAlgorithm: return algorithm;
    case Kind::kChat: return chat;
    case Kind::kOther: return none;
  }
  return none;
}

Kind route_kind(const RouteConfig& r) {
  const std::string n = lower(r.name);
  for (const char* k : {"algo", "leetcode", "puzzle", "math"})
    if (n.find(k) != std::string::npos) return Kind::kAlgorithm;
  for (const char* k : {"code", "coder", "edit", "write", "program", "dev", "impl"})
    if (n.find(k) != std::string::npos) return Kind::kCode;
  for (const char* k : {"chat", "question", "qa", "explain", "general", "talk", "ask", "help"})
    if (n.find(k) != std::string::npos) return Kind::kChat;
  return Kind::kOther;
}

bool question_form(std::string_view task) {
  auto w = word_list(task);
  while (!task.empty() && std::isspace(static_cast<unsigned char>(task.back()))) task.remove_suffix(1);
  if (!task.empty() && task.back() == '?') return true;
  if (w.empty()) return false;
  static const std::set<std::string> starts = {"what", "why", "how", "when", "which", "who", "is", "are",
                                               "doe", "does", "do", "can", "should", "explain", "describe",
                                               "compare", "could", "would", "whats"};
  return starts.count(w[0]) > 0;
}

}  // namespace

RouteDecision fallback_route(std::string_view task, std::span<const RouteConfig> routes) {
  const auto t0 = Clock::now();
  RouteDecision d;
  CODEY_ASSERT(!routes.empty());
  const auto words = word_list(task);
  const std::set<std::string> task_words(words.begin(), words.end());
  const auto files = files_named_in(task);
  const bool question = question_form(task);
  std::vector<int> scores(routes.size(), 0);
  std::vector<std::vector<std::string>> why(routes.size());
  for (size_t i = 0; i < routes.size(); ++i) {
    const auto& r = routes[i];
    const Kind kind = route_kind(r);
    std::set<std::string> own;
    for (const auto& w : word_list(r.name + " " + r.description))
      if (w.size() >= 3 && !stop_words().count(w)) own.insert(w);
    for (const auto& w : task_words) {
      if (vocabulary(kind).count(w)) {
        scores[i] += 2;
        why[i].push_back(w);
      } else if (own.count(w)) {
        scores[i] += 1;
        why[i].push_back(w);
      }
    }
    if (kind == Kind::kCode && !files.empty()) {
      scores[i] += 3;
      why[i].push_back(fmt::format("file {}", files.front()));
    }
    if (kind == Kind::kChat && question) {
      scores[i] += 3;
      why[i].push_back("a question");
    }
    if (kind == Kind::kChat && !files.empty()) scores[i] -= 2;  // a named file is work to do, not talk
  }
  size_t best = 0;
  for (size_t i = 1; i < routes.size(); ++i)
    if (scores[i] > scores[best]) best = i;
  d.route = routes[best].name;
  d.by_model = false;
  std::string others;
  for (size_t i = 0; i < routes.size(); ++i)
    if (i != best) others += fmt::format("{}{} {}", others.empty() ? "" : ", ", routes[i].name, scores[i]);
  if (scores[best] <= 0) {
    d.reason = fmt::format("keyword fallback: nothing matched, the first route{}", others.empty() ? "" : " (" + others + ")");
  } else {
    std::string matched;
    for (const auto& w : why[best]) matched += fmt::format("{}'{}'", matched.empty() ? "" : " ", w);
    d.reason = fmt::format("keyword fallback: {} (score {}{})", matched, scores[best], others.empty() ? "" : "; " + others);
  }
  d.seconds = seconds_since(t0);
  return d;
}

constexpr int kQuickMaxTokens = 1024;  // quick mode (--model FILE): tokens per answer

std::vector<RouteConfig> default_routes(const std::string& model) {
  std::vector<RouteConfig> r(3);
  r[0].name = "coder";
  r[0].description = "Write, edit or fix code and files: functions, classes, scripts, tests, bug fixes.";
  r[1].name = "algorithm";
  r[1].description = "Algorithmic problems: data structures, complexity, efficient solutions to puzzles.";
  r[2].name = "chat";
  r[2].description = "Questions and explanations about programming that need no new file.";
  for (auto& x : r) x.model = model;
  return r;
}

std::string route_system_prompt(const RouteConfig& route) {
  if (!route.system.empty()) return route.system;
  switch (route_kind(route)) {
    case Kind::kCode:
      return "You are an expert programmer. Write complete, working code. Put each file in one fenced code block "
             "whose info string names the language and the file, like ```python title=calculator.py. Keep any "
             "explanation to a sentence or two.";
    case Kind::kAlgorithm:
      return "You solve algorithmic problems. State the approach and its time and space complexity in a few lines, "
             "then give a complete, efficient implementation in one fenced code block whose info string names the "
             "language and, if the task names one, the file (```python title=solution.py).";
    case Kind::kChat:
      return "You answer programming questions clearly and briefly. Use fenced code blocks for any code.";
    case Kind::kOther: break;
  }
  std::string p = "You are a helpful coding assistant.";
  if (!route.description.empty()) p += " Your job: " + route.description;
  p += " Put code in fenced code blocks whose info string names the language and the file (```python "
       "title=main.py).";
  return p;
}

Result<RuntimeConfig> assistant_config(const AssistantSetup& setup) {
  namespace fs = std::filesystem;
  RuntimeConfig cfg;
  std::string config_path = setup.config_path;
  std::error_code ec;
  // No flags at all: $CODEY_CONFIG, ./codey.yaml, ~/.config/codey/codey.yaml.
  if (config_path.empty() && setup.model_file.empty()) {
    const std::string d = default_config_path();
    if (fs::exists(d, ec)) config_path = d;
  }
  if (!config_path.empty()) {
    auto c = load_config(config_path);
    if (!c) return std::unexpected(c.error());
    cfg = std::move(*c);
  } else {
    cfg.memory_budget = auto_memory_budget();
    cfg.memory_budget_auto = true;
    cfg.threads = usable_cores();
  }
  // A file or a model reference (hf.co/OWNER/REPO:QUANT, ollama:NAME:TAG),
  // resolved through the model store.
  auto add_file_model = [&](const std::string& file, const std::string& fallback_name) -> Result<std::string> {
    auto local = resolve_model(file);
    if (!local) return std::unexpected(std::move(local.error()));
    std::string name = fs::path(local->path).stem().string();
    if (local->source != ModelSource::kFile) name = local->ref;
    for (auto& c : name)
      if (std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\\') c = '-';
    if (name.empty()) name = fallback_name;
    const std::string abs = local->path;
    for (const auto& m : cfg.models)
      if (m.path == abs) return m.name;  // already configured
    while (cfg.find_model(name)) name += "-cli";
    ModelConfig m;
    m.name = name;
    m.path = abs;
    m.ctx_auto = true;  // start small, grow with the conversation
    // A code answer, not a whole context: an unbounded answer of a model
    // that does not stop looks like a hang. A config's max_tokens sets it.
    m.max_tokens = kQuickMaxTokens;
    cfg.models.push_back(std::move(m));
    return name;
  };
  if ((!setup.draft_file.empty() || setup.lookup > 0) && setup.model_file.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "--draft and --lookup go with --model FILE.gguf; for configured models set draft: or lookup: "
                      "in codey.yaml");
  if (!setup.draft_file.empty() && setup.lookup > 0)
    return make_error(ErrorCode::kInvalidArgument, "give one of --draft and --lookup, not both");
  if (!setup.model_file.empty()) {
    auto name = add_file_model(setup.model_file, "model");
    if (!name) return std::unexpected(name.error());
    if (cfg.routes.empty()) cfg.routes = default_routes(*name);
    for (auto& r : cfg.routes) r.model = *name;  // quick mode: this model serves every route
    std::string draft;
    if (!setup.draft_file.empty()) {
      auto d = add_file_model(setup.draft_file, "draft");
      if (!d) return std::unexpected(d.error());
      draft = *d;
    }
    for (auto& m : cfg.models)
      if (m.name == *name) {
        if (!draft.empty()) m.draft = draft;
        if (setup.lookup > 0) m.lookup = setup.lookup;
      }
    CODEY_TRY(link_drafts(cfg));
  }
  if (!setup.router_file.empty()) {
    auto name = add_file_model(setup.router_file, "router");
    if (!name) return std::unexpected(name.error());
    cfg.router = *name;
  }
  if (cfg.models.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "no model: pass --model FILE.gguf (quick mode) or --config codey.yaml "
                      "(no codey.yaml in the current directory)");
  if (cfg.routes.empty()) {
    // Routes default to the first model that is not the router.
    std::string m = cfg.models.front().name;
    for (const auto& x : cfg.models)
      if (x.name != cfg.router) {
        m = x.name;
        break;
      }
    cfg.routes = default_routes(m);
  }
  return cfg;
}

}  // namespace codey
