// `codey chat`: the conversation (history, per-message routing or a fixed
// route, a model override) and its /commands; the terminal loop is the CLI's.
#include <algorithm>
#include <ostream>

#include "codey/assistant.h"

namespace codey {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

ChatCommand parse_chat_command(std::string_view line) {
  ChatCommand c;
  std::string_view t = trim(line);
  if (t.empty()) return c;
  if (t.starts_with("//")) {  // a message that starts with '/'
    c.kind = ChatCommand::Kind::kMessage;
    c.arg = std::string(t.substr(1));
    return c;
  }
  if (t.front() != '/') {
    c.kind = ChatCommand::Kind::kMessage;
    c.arg = std::string(t);
    return c;
  }
  const auto sp = t.find_first_of(" \t");
  const std::string_view cmd = t.substr(1, sp == std::string_view::npos ? std::string_view::npos : sp - 1);
  c.arg = sp == std::string_view::npos ? "" : std::string(trim(t.substr(sp)));
  using K = ChatCommand::Kind;
  static constexpr std::pair<std::string_view, K> kNames[] = {
      {"model", K::kModel}, {"route", K::kRoute}, {"routes", K::kRoutes}, {"models", K::kModels},
      {"clear", K::kClear}, {"reset", K::kClear}, {"write", K::kWrite},   {"help", K::kHelp},
      {"?", K::kHelp},      {"h", K::kHelp},      {"quit", K::kQuit},     {"exit", K::kQuit},
      {"q", K::kQuit},      {"bye", K::kQuit}};
  c.kind = K::kUnknown;
  for (const auto& [n, k] : kNames)
    if (cmd == n) c.kind = k;
  if (c.kind == K::kUnknown) c.arg = std::string(cmd);
  return c;
}

std::string chat_help() {
  return "Type a message to send it; the answer streams as it is generated.\n"
         "  /route [NAME|auto]  show or fix the route (auto: the router picks one per message)\n"
         "  /model [NAME|auto]  show or override the model answering (auto: the route's)\n"
         "  /routes, /models    list what is configured\n"
         "  /write [FILE]       write the code of the last answer into the workspace\n"
         "  /clear              forget the conversation\n"
         "  /help               this text\n"
         "  /quit               leave (also Ctrl-D)\n"
         "Ctrl-C stops the answer being generated; it does not quit.\n"
         "Start a message with // to send a leading '/'.\n";
}

ChatSession::ChatSession(Assistant& assistant, std::ostream& out) : assistant_(assistant), out_(out) {}

bool ChatSession::handle(std::string_view line, std::stop_token cancel, const TaskEvents& events) {
  const ChatCommand c = parse_chat_command(line);
  using K = ChatCommand::Kind;
  const auto& routes = assistant_.routes();
  const auto& cfg = assistant_.config();
  switch (c.kind) {
    case K::kEmpty: return true;
    case K::kQuit: return false;
    case K::kHelp: out_ << chat_help(); return true;
    case K::kClear:
      history_ = nlohmann::ordered_json::array();
      last_answer_.clear();
      last_user_.clear();
      out_ << "(conversation cleared)\n";
      return true;
    case K::kRoutes:
      for (const auto& r : routes)
        out_ << fmt::format("  {}{} -> {}: {}\n", r.name, r.name == route_ ? " *" : "", r.model, r.description);
      out_ << fmt::format("  router: {}\n", cfg.router.empty() ? "none (keyword fallback)" : cfg.router);
      return true;
    case K::kModels:
      for (const auto& m : cfg.models)
        out_ << fmt::format("  {}{}: {}\n", m.name, m.name == model_ ? " *" : "", m.path);
      return true;
    case K::kRoute: {
      if (c.arg.empty()) {
        out_ << fmt::format("route: {}\n", route_);
        return true;
      }
      if (c.arg == "auto") {
        route_ = "auto";
        out_ << "route: auto (each message is routed)\n";
        return true;
      }
      if (std::none_of(routes.begin(), routes.end(), [&](const RouteConfig& r) { return r.name == c.arg; })) {
        std::string names;
        for (const auto& r : routes) names += " " + r.name;
        out_ << fmt::format("no route '{}'; routes:{} (or auto)\n", c.arg, names);
        return true;
      }
      route_ = c.arg;
      out_ << fmt::format("route: {}\n", route_);
      return true;
    }
    case K::kModel: {
      if (c.arg.empty()) {
        out_ << fmt::format("model: {}\n", model_.empty() ? "auto (the route's)" : model_);
        return true;
      }
      if (c.arg == "auto" || c.arg == "default") {
        model_.clear();
        out_ << "model: auto (the route's)\n";
        return true;
      }
      if (!cfg.find_model(c.arg)) {
        std::string names;
        for (const auto& m : cfg.models) names += " " + m.name;
        out_ << fmt::format("no model '{}'; models:{} (or auto)\n", c.arg, names);
        return true;
      }
      model_ = c.arg;
      out_ << fmt::format("model: {}\n", model_);
      return true;
    }
    case K::kWrite: {
      if (last_answer_.empty()) {
        out_ << "nothing to write yet\n";
        return true;
      }
      if (!assistant_.workspace()) {
        out_ << assistant_.workspace_error() << "\n";
        return true;
      }
      std::vector<std::string> files = files_named_in(last_user_);
      if (!c.arg.empty()) files.insert(files.begin(), c.arg);
      auto blocks = extract_code(last_answer_, files);
      // "/write FILE" when no block names FILE: the user's name wins, for the
      // first unnamed block, else the first block.
      if (!c.arg.empty() && !blocks.empty()) {
        const bool claimed = std::any_of(blocks.begin(), blocks.end(), [&](const CodeBlock& b) { return b.filename == c.arg; });
        if (!claimed) {
          auto it = std::find_if(blocks.begin(), blocks.end(), [](const CodeBlock& b) { return b.filename.empty(); });
          (it != blocks.end() ? *it : blocks.front()).filename = c.arg;
        }
      }
      WriteOptions wo;
      wo.confirm_overwrite = confirm_overwrite;
      int n = 0;
      for (const auto& b : blocks) {
        if (b.filename.empty() || (!c.arg.empty() && b.filename != c.arg)) continue;
        ++n;
        auto w = assistant_.workspace()->write(b.filename, b.code, wo);
        if (!w) {
          out_ << w.error().message << "\n";
          continue;
        }
        if (w->action == WriteAction::kRefused) out_ << fmt::format("not written {}: {}\n", w->path, w->message);
        else if (w->action == WriteAction::kUnchanged) out_ << fmt::format("unchanged {}\n", w->path);
        else
          out_ << fmt::format("wrote {} ({}{})\n", w->path, format_bytes(w->bytes),
                              w->backup.empty() ? ", new" : ", old version kept as " + w->backup);
        const auto chk = check_code(w->path, b.code, std::vector<std::filesystem::path>{assistant_.workspace()->root()});
        if (chk.status != CheckStatus::kNoChecker)
          out_ << fmt::format("check: {} {} {}{}\n", w->path, check_status_name(chk.status), chk.checker,
                              chk.status == CheckStatus::kFailed ? "\n" + chk.output : "");
      }
      if (n == 0) out_ << "no code block with a file name in the last answer (try /write FILE)\n";
      return true;
    }
    case K::kUnknown: out_ << fmt::format("unknown command /{} (/help lists them)\n", c.arg); return true;
    case K::kMessage: turn(c.arg, cancel, events); return true;
  }
  return true;
}

void ChatSession::turn(const std::string& message, std::stop_token cancel, const TaskEvents& events) {
  const auto& routes = assistant_.routes();
  if (routes.empty()) {
    out_ << "no routes configured\n";
    return;
  }
  std::string route_name = route_;
  if (route_ == "auto") {
    const RouteDecision d = assistant_.route(message, cancel);
    route_name = d.route;
    if (events.on_route) events.on_route(d);
  }
  const RouteConfig* rc = nullptr;
  for (const auto& r : routes)
    if (r.name == route_name) rc = &r;
  if (!rc) rc = &routes.front();
  const std::string model = model_.empty() ? rc->model : model_;
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  messages.push_back({{"role", "system"}, {"content", route_system_prompt(*rc)}});
  for (const auto& m : history_) messages.push_back(m);
  messages.push_back({{"role", "user"}, {"content", message}});
  TaskEvents ev = events;
  if (!ev.on_text) ev.on_text = [&](std::string_view t) { out_ << t << std::flush; };
  auto a = assistant_.generate(model, *rc, messages, cancel, ev, 0);
  if (!a) {
    out_ << "error: " << a.error().message << "\n";
    return;
  }
  if (!a->text.empty() && a->text.back() != '\n') out_ << "\n";
  if (a->finish == FinishReason::kCancelled) out_ << "(stopped)\n";
  // The conversation keeps what was said, a stopped answer too.
  history_.push_back({{"role", "user"}, {"content", message}});
  history_.push_back({{"role", "assistant"}, {"content", a->text}});
  last_user_ = message;
  last_answer_ = a->text;
}

}  // namespace codey
