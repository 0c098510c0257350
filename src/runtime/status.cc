// Names of the runtime's enums and the JSON form of its status (`codey ps
// --json`, the server's status endpoints).
#include "codey/runtime.h"

namespace codey {

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kDeadline: return "deadline";
  }
  return "?";
}

std::string_view request_error_name(RequestErrorCode code) {
  switch (code) {
    case RequestErrorCode::kInvalidRequest: return "invalid_request";
    case RequestErrorCode::kModelNotFound: return "model_not_found";
    case RequestErrorCode::kPromptTooLong: return "prompt_too_long";
    case RequestErrorCode::kBusy: return "busy";
    case RequestErrorCode::kInsufficientMemory: return "insufficient_memory";
    case RequestErrorCode::kLoadFailed: return "load_failed";
    case RequestErrorCode::kShuttingDown: return "shutting_down";
    case RequestErrorCode::kInternal: return "internal";
  }
  return "?";
}

int suggested_http_status(RequestErrorCode code) {
  switch (code) {
    case RequestErrorCode::kInvalidRequest: return 400;
    case RequestErrorCode::kModelNotFound: return 404;
    case RequestErrorCode::kPromptTooLong: return 413;
    case RequestErrorCode::kBusy: return 429;
    case RequestErrorCode::kInsufficientMemory: return 503;
    case RequestErrorCode::kShuttingDown: return 503;
    case RequestErrorCode::kLoadFailed: return 500;
    case RequestErrorCode::kInternal: return 500;
  }
  return 500;
}

std::string_view event_type_name(EventType t) {
  switch (t) {
    case EventType::kQueued: return "queued";
    case EventType::kLoading: return "loading";
    case EventType::kStarted: return "started";
    case EventType::kToken: return "token";
    case EventType::kDone: return "done";
    case EventType::kError: return "error";
  }
  return "?";
}

std::string_view model_state_name(ModelState s) {
  switch (s) {
    case ModelState::kUnloaded: return "unloaded";
    case ModelState::kLoading: return "loading";
    case ModelState::kLoaded: return "loaded";
    case ModelState::kBusy: return "busy";
    case ModelState::kUnloading: return "unloading";
  }
  return "?";
}

nlohmann::json to_json(const ModelStatus& s) {
  nlohmann::json j;
  j["name"] = s.name;
  j["path"] = s.path;
  j["state"] = std::string(model_state_name(s.state));
  j["pinned"] = s.pinned;
  if (!s.error.empty()) j["error"] = s.error;
  j["memory"] = {{"needed", s.needed_bytes},
                 {"reserved", s.reserved_bytes},
                 {"used", s.used_bytes},
                 {"allocated", s.allocated_bytes},
                 {"mapped_resident", s.mapped_resident_bytes}};
  j["slots"] = {{"total", s.slots}, {"active", s.active}, {"queued", s.queued}, {"queue_limit", s.queue_limit}};
  j["ctx"] = {{"n_ctx", s.n_ctx}, {"max", s.n_ctx_max}};
  if (s.state == ModelState::kLoading) j["load_progress"] = s.load_progress;
  if (s.state == ModelState::kLoaded) j["idle_s"] = s.idle_s;
  j["expires_in_s"] = s.expires_in_s ? nlohmann::json(*s.expires_in_s) : nlohmann::json(nullptr);
  j["counters"] = {{"loads", s.loads},
                   {"unloads", s.unloads},
                   {"evictions", s.evictions},
                   {"last_load_s", s.last_load_s},
                   {"requests_done", s.requests_done},
                   {"requests_failed", s.requests_failed},
                   {"requests_rejected", s.requests_rejected},
                   {"prompt_tokens", s.prompt_tokens},
                   {"generated_tokens", s.generated_tokens},
                   {"draft_tokens", s.draft_tokens},
                   {"draft_accepted", s.draft_accepted}};
  if (!s.draft.empty()) j["speculative"] = s.draft;
  return j;
}

nlohmann::json to_json(const RuntimeStatus& s) {
  nlohmann::json j;
  j["memory"] = {{"budget", s.memory_budget}, {"reserved", s.reserved_bytes}, {"used", s.used_bytes}};
  j["threads"] = s.threads;
  j["models"] = nlohmann::json::array();
  for (const auto& m : s.models) j["models"].push_back(to_json(m));
  return j;
}

}  // namespace codey
