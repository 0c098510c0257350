// The task pipeline on a Runtime: route (router model constrained to one
// valid call, else the keyword fallback), prompt the route's model with its
// chat template, stream the answer, extract code, check it with a bounded
// repair loop, write it into the workspace.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "codey/assistant.h"
#include "codey/chat.h"

namespace codey {

namespace fs = std::filesystem;

namespace {

Error request_error(const std::string& model, const RequestError& e) {
  ErrorCode code = ErrorCode::kInternal;
  switch (e.code) {
    case RequestErrorCode::kInvalidRequest: code = ErrorCode::kInvalidArgument; break;
    case RequestErrorCode::kModelNotFound: code = ErrorCode::kNotFound; break;
    case RequestErrorCode::kPromptTooLong:
    case RequestErrorCode::kBusy:
    case RequestErrorCode::kInsufficientMemory: code = ErrorCode::kResourceExhausted; break;
    case RequestErrorCode::kLoadFailed: code = ErrorCode::kIo; break;
    case RequestErrorCode::kShuttingDown: code = ErrorCode::kCancelled; break;
    case RequestErrorCode::kInternal: code = ErrorCode::kInternal; break;
  }
  return Error{code, fmt::format("model '{}': {}", model, e.message)};
}

std::string fence_lang(std::string_view file) {
  std::string l = language_for_file(file);
  return l == "text" ? "" : l;
}

std::string first_line(std::string_view s) {
  const auto nl = s.find('\n');
  return std::string(s.substr(0, nl));
}

}  // namespace

Assistant::Assistant(Runtime& runtime, std::string workspace_dir) : runtime_(runtime) {
  routes_ = runtime_.config().routes;
  if (routes_.empty() && !runtime_.config().models.empty()) {
    std::string m = runtime_.config().models.front().name;
    for (const auto& x : runtime_.config().models)
      if (x.name != runtime_.config().router) {
        m = x.name;
        break;
      }
    routes_ = default_routes(m);
  }
  auto ws = Workspace::open(workspace_dir.empty() ? "." : workspace_dir);
  if (ws) workspace_.emplace(std::move(*ws));
  else workspace_error_ = ws.error().message;
}

Result<std::shared_ptr<const ModelText>> Assistant::model_text(std::string_view model) {
  if (auto it = text_cache_.find(std::string(model)); it != text_cache_.end()) return it->second;
  const ModelConfig* m = config().find_model(model);
  if (!m) return make_error(ErrorCode::kNotFound, "no model named '{}'", model);
  auto path = model_file(*m);
  if (!path) return std::unexpected(path.error());
  auto mt = load_model_text(*path);
  if (!mt) return std::unexpected(mt.error());
  auto p = std::make_shared<const ModelText>(std::move(*mt));
  text_cache_.emplace(std::string(model), p);
  return p;
}

RouteDecision Assistant::route(std::string_view task, std::stop_token cancel) {
  const auto t0 = Clock::now();
  if (routes_.size() == 1) {
    RouteDecision d;
    d.route = routes_[0].name;
    d.reason = "the only route";
    return d;
  }
  const std::string& router = config().router;
  auto fallback = [&](std::string why) {
    RouteDecision d = fallback_route(task, routes_);
    if (!why.empty()) d.reason = why + "; " + d.reason;
    d.seconds = seconds_since(t0);
    log_info("assistant: route '{}' ({}; {:.0f} ms)", d.route, d.reason, 1e3 * d.seconds);
    return d;
  };
  if (router.empty()) return fallback("");
  auto mt = model_text(router);
  if (!mt) return fallback(fmt::format("router '{}' unusable ({})", router, mt.error().message));
  const std::string tmpl = (*mt)->chat_template.value_or(std::string(kChatMlTemplate));
  const ToolCallFormat format = router_call_format(tmpl);
  const bool native_tools = detect_tool_call_format(tmpl) != ToolCallFormat::kNone;
  std::vector<std::string> names;
  for (const auto& r : routes_) names.push_back(r.name);

  // A short instruction; templates without tool support get the routes and
  // the answer's shape in the prompt instead.
  std::string system =
      "You route coding tasks to the assistant best suited for them. Call exactly one function: the one whose "
      "description fits the user's task.";
  if (!native_tools) {
    system += "\nFunctions:";
    for (const auto& r : routes_)
      system += fmt::format("\n- {}: {}", r.name, r.description.empty() ? "(no description)" : r.description);
    system += "\nAnswer with JSON only, like {\"name\": \"" + names[0] + "\", \"arguments\": {}}.";
  }
  GenerateRequest q;
  q.model = router;
  q.messages = nlohmann::ordered_json::array();
  q.messages.push_back({{"role", "system"}, {"content", system}});
  q.messages.push_back({{"role", "user"}, {"content", std::string(task)}});
  if (native_tools) q.tools = route_tools(routes_);
  q.sampling.temperature = 0.0f;  // the same task routes the same way
  q.max_tokens = 256;             // the grammar ends the call well before
  q.cancel = cancel;
  auto constraint = std::make_shared<GrammarConstraint>((*mt)->index, tool_choice_grammar(format, names));
  q.constraint = constraint;
  auto done = runtime_.generate(std::move(q));
  if (!done) return fallback(fmt::format("router '{}' failed ({})", router, done.error().message));
  auto name = parse_tool_choice(format, constraint->text(), names);
  if (!name) return fallback(fmt::format("router '{}' gave no complete call ('{}')", router, constraint->text()));
  RouteDecision d;
  d.route = *name;
  d.by_model = true;
  d.router_model = router;
  d.raw = constraint->text();
  d.load_seconds = done->timings.load_s;
  d.prompt_tokens = done->timings.prompt_tokens;
  d.generated_tokens = done->timings.generated_tokens;
  d.seconds = seconds_since(t0);
  d.reason = fmt::format("router {} called {} ({} tool call, {} tokens, masking {:.1f} ms)", router, *name,
                         tool_call_format_name(format), d.generated_tokens, 1e3 * constraint->mask_seconds());
  log_info("assistant: route '{}' ({}; {:.0f} ms of which load {:.0f} ms)", d.route, d.reason, 1e3 * d.seconds,
           1e3 * d.load_seconds);
  return d;
}

nlohmann::ordered_json Assistant::task_messages(const RouteConfig& route, std::string_view task,
                                                std::span<const std::string> files) const {
  std::string user(task);
  for (const auto& f : files) {
    if (!workspace_) break;
    if (auto cur = workspace_->read(f)) {
      user += fmt::format("\n\nCurrent contents of {}:\n```{}\n{}{}```", f, fence_lang(f), *cur,
                          cur->empty() || cur->back() == '\n' ? "" : "\n");
    }
  }
  if (files.size() == 1) {
    user += fmt::format("\n\nReply with the complete file {} in one fenced code block: ```{} title={}", files[0],
                        fence_lang(files[0]), files[0]);
  } else if (files.size() > 1) {
    user += "\n\nReply with each complete file in its own fenced code block whose info string names it, like ```" +
            fence_lang(files[0]) + " title=" + files[0];
  }
  nlohmann::ordered_json m = nlohmann::ordered_json::array();
  m.push_back({{"role", "system"}, {"content", route_system_prompt(route)}});
  m.push_back({{"role", "user"}, {"content", user}});
  return m;
}

Result<Assistant::Answer> Assistant::generate(const std::string& model, const RouteConfig& route,
                                              const nlohmann::ordered_json& messages, std::stop_token cancel,
                                              const TaskEvents& events, int attempt) {
  GenerateRequest q;
  q.model = model;
  q.messages = messages;
  q.sampling = route.sampling;
  if (route.max_tokens > 0) q.max_tokens = route.max_tokens;
  q.stop = route.stop;
  q.cancel = cancel;
  if (events.on_generation_start) events.on_generation_start(attempt, model);
  const auto t0 = Clock::now();
  auto stream = runtime_.submit(std::move(q));
  Answer a;
  GenerationProgress p;
  p.model = model;
  p.phase = "queued";
  std::optional<Clock::time_point> first_token;
  auto progress = [&] {
    p.elapsed_s = seconds_since(t0);
    if (first_token && p.tokens > 1) {
      const double g = seconds_since(*first_token);
      p.tokens_per_s = g > 0 ? double(p.tokens - 1) / g : 0;
    }
    if (events.on_progress) events.on_progress(p);
  };
  while (true) {
    auto ev = stream->next(Millis(100));
    if (cancel.stop_requested()) stream->cancel();
    if (!ev) {
      if (stream->finished()) break;
      progress();  // the clock moves on while loading or processing the prompt
      continue;
    }
    switch (ev->type) {
      case EventType::kQueued: p.phase = "queued"; break;
      case EventType::kLoading:
        p.phase = "loading";
        p.load_progress = ev->progress;
        break;
      case EventType::kStarted:
        p.phase = "prompt";
        p.prompt_tokens = ev->timings.prompt_tokens;
        break;
      case EventType::kToken:
        if (ev->token != kNoToken) {
          if (!first_token) first_token = Clock::now();
          ++p.tokens;
          p.phase = "generating";
        }
        a.text += ev->text;
        if (!ev->text.empty() && events.on_text) events.on_text(ev->text);
        break;
      case EventType::kDone:
        a.finish = ev->finish;
        a.timings = ev->timings;
        break;
      case EventType::kError: return std::unexpected(request_error(model, ev->error));
    }
    progress();
    if (ev->terminal()) break;
  }
  a.seconds = seconds_since(t0);
  if (events.on_generation_end) events.on_generation_end(attempt, a.timings);
  return a;
}

std::string repair_prompt(std::span<const CheckOutcome> failed) {
  std::string s = "The code does not pass its check.";
  for (const auto& c : failed)
    s += fmt::format("\n\n`{} {}` reports:\n```\n{}\n```", c.checker, c.file, c.output);
  s += "\n\nFix the problem. Reply with the corrected complete file";
  s += failed.size() > 1 ? "s, each in its own fenced code block named as before." : " in one fenced code block named as before.";
  return s;
}

Result<TaskResult> Assistant::run_task(std::string_view task, const TaskOptions& o, const TaskEvents& events) {
  const auto t0 = Clock::now();
  TaskResult res;
  if (!workspace_) return make_error(ErrorCode::kInvalidArgument, "{}", workspace_error_);
  if (routes_.empty()) return make_error(ErrorCode::kInvalidArgument, "no routes configured");
  const RouteConfig* rc = nullptr;
  if (!o.route.empty()) {
    for (const auto& r : routes_)
      if (r.name == o.route) rc = &r;
    if (!rc) {
      std::string names;
      for (const auto& r : routes_) names += (names.empty() ? "" : ", ") + r.name;
      return make_error(ErrorCode::kInvalidArgument, "no route named '{}' (routes: {})", o.route, names);
    }
    res.route.route = rc->name;
    res.route.forced = true;
    res.route.reason = "chosen with --route";
  } else {
    res.route = route(task, o.cancel);
    for (const auto& r : routes_)
      if (r.name == res.route.route) rc = &r;
    CODEY_ASSERT(rc != nullptr);
  }
  if (events.on_route) events.on_route(res.route);
  res.model = o.model.empty() ? rc->model : o.model;
  if (!config().find_model(res.model))
    return make_error(ErrorCode::kInvalidArgument, "no model named '{}' in the configuration", res.model);

  const std::vector<std::string> files = files_named_in(task);
  nlohmann::ordered_json messages = task_messages(*rc, task, files);
  std::map<std::string, const CodeBlock*> targets;  // by file: the last block naming it
  const int max_repairs = std::max(0, o.max_repairs);
  for (int attempt = 0;; ++attempt) {
    auto a = generate(res.model, *rc, messages, o.cancel, events, attempt);
    if (!a) return std::unexpected(a.error());
    res.answer = a->text;
    res.generation_s += a->seconds;
    res.generated_tokens += a->timings.generated_tokens;
    if (a->finish == FinishReason::kCancelled || o.cancel.stop_requested()) {
      res.cancelled = true;
      res.total_s = seconds_since(t0);
      return res;
    }
    if (a->finish == FinishReason::kDeadline && events.on_note) events.on_note("the answer hit its deadline and may be incomplete");
    if (a->finish == FinishReason::kLength && events.on_note) events.on_note("the answer hit max_tokens and may be incomplete");
    messages.push_back({{"role", "assistant"}, {"content", a->text}});
    res.blocks = extract_code(a->text, files);
    targets.clear();
    res.unwritten.clear();
    for (const auto& b : res.blocks) {
      if (b.filename.empty()) res.unwritten.push_back(b.language.empty() ? "code" : b.language);
      else targets[b.filename] = &b;
    }
    // Check every target, with the answer's other files beside it (headers
    // it includes) and the workspace as include directories.
    std::error_code ec;
    std::string stage_tmpl = (fs::temp_directory_path(ec) / "codey-stage-XXXXXX").string();
    std::vector<fs::path> inc;
    if (::mkdtemp(stage_tmpl.data())) {
      const fs::path stage(stage_tmpl);
      for (const auto& [f, b] : targets) {
        if (!workspace_->resolve(f)) continue;  // refused later; never staged outside
        fs::create_directories((stage / f).parent_path(), ec);
        std::ofstream(stage / f, std::ios::binary) << b->code;
      }
      res.checks.clear();
      for (const auto& [f, b] : targets) {
        inc = {stage / fs::path(f).parent_path(), stage, workspace_->root() / fs::path(f).parent_path(), workspace_->root()};
        res.checks.push_back(check_code(f, b->code, inc));
      }
      fs::remove_all(stage, ec);
    } else {
      res.checks.clear();
      for (const auto& [f, b] : targets) res.checks.push_back(check_code(f, b->code));
    }
    std::vector<CheckOutcome> failed;
    for (const auto& c : res.checks)
      if (c.status == CheckStatus::kFailed) failed.push_back(c);
    if (failed.empty() || attempt >= max_repairs) break;
    ++res.repairs;
    if (events.on_note)
      events.on_note(fmt::format("{} failed {}: {} - repair {}/{}", failed[0].file, failed[0].checker,
                                 first_line(failed[0].output), res.repairs, max_repairs));
    messages.push_back({{"role", "user"}, {"content", repair_prompt(failed)}});
  }
  WriteOptions wo;
  wo.force = o.force;
  wo.dry_run = o.dry_run;
  wo.confirm_overwrite = o.confirm_overwrite;
  for (const auto& [f, b] : targets) {
    auto w = workspace_->write(f, b->code, wo);
    if (!w) return std::unexpected(std::move(w.error()).with_context(fmt::format("writing {}", f)));
    res.writes.push_back(std::move(*w));
  }
  res.total_s = seconds_since(t0);
  return res;
}

bool TaskResult::checks_passed() const {
  return std::none_of(checks.begin(), checks.end(), [](const CheckOutcome& c) { return c.status == CheckStatus::kFailed; });
}

std::string TaskResult::summary(bool with_route) const {
  std::string s;
  if (with_route) {
    if (route.forced) s += fmt::format("route: {} (chosen)\n", route.route);
    else s += fmt::format("route: {} ({}, {:.2f} s)\n", route.route, route.reason, route.seconds);
  }
  const double tps = generation_s > 0 ? double(generated_tokens) / generation_s : 0;
  s += fmt::format("{}{} tokens in {:.1f} s ({:.1f} tok/s overall{})\n", with_route ? "model: " + model + " - " : "answer: ",
                   generated_tokens, generation_s, tps, repairs > 0 ? fmt::format(", {} answers", repairs + 1) : "");
  if (cancelled) {
    s += "cancelled: nothing written\n";
    return s;
  }
  for (const auto& w : writes) {
    switch (w.action) {
      case WriteAction::kCreated: s += fmt::format("wrote {} ({}, new)\n", w.path, format_bytes(w.bytes)); break;
      case WriteAction::kOverwritten:
        s += fmt::format("wrote {} ({}, old version kept as {})\n", w.path, format_bytes(w.bytes), w.backup);
        break;
      case WriteAction::kUnchanged: s += fmt::format("unchanged {} (same contents)\n", w.path); break;
      case WriteAction::kRefused: s += fmt::format("not written {}: {}\n", w.path, w.message); break;
      case WriteAction::kWouldCreate: s += fmt::format("dry run: would create {} ({})\n", w.path, format_bytes(w.bytes)); break;
      case WriteAction::kWouldOverwrite:
        s += fmt::format("dry run: would overwrite {} ({}{})\n", w.path, format_bytes(w.bytes),
                         w.message.empty() ? ", keeping a backup" : "; " + w.message);
        break;
    }
  }
  if (writes.empty()) s += blocks.empty() ? "no code in the answer: nothing written\n"
                                          : "no file named for the code (name one in the task): nothing written\n";
  else if (!unwritten.empty())
    s += fmt::format("{} more code block{} without a file name not written\n", unwritten.size(),
                     unwritten.size() > 1 ? "s" : "");
  for (const auto& c : checks) {
    const std::string after = repairs > 0 ? fmt::format(" after {} repair{}", repairs, repairs > 1 ? "s" : "") : "";
    switch (c.status) {
      case CheckStatus::kPassed: s += fmt::format("check: {} passed {}{}\n", c.file, c.checker, after); break;
      case CheckStatus::kFailed:
        s += fmt::format("check: {} FAILED {}{}: {}\n", c.file, c.checker, after, first_line(c.output));
        break;
      case CheckStatus::kNoChecker: s += fmt::format("check: {} not checked ({})\n", c.file, c.output); break;
    }
  }
  if (route.by_model && total_s > 0)
    s += fmt::format("router: {:.2f} s of {:.2f} s ({:.1f}%)\n", route.seconds, total_s, 100.0 * route.seconds / total_s);
  else s += fmt::format("total: {:.2f} s\n", total_s);
  return s;
}

}  // namespace codey
