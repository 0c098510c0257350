// OpenAI / Ollama request bodies -> ParsedRequest (see requests.h). Unknown
// top-level fields are ignored (clients send many); known fields with a wrong
// type or value, and features codey does not have, are 400s that say so.
#include "server/requests.h"

#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace codey::server {
namespace {

constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

const Json* field(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

ApiResult<std::string> required_model(const Json& body) {
  CODEY_TRY_ASSIGN(auto model, read_string(body, "model", "model"));
  if (!model || model->empty()) return bad_field("model", "required: the name of a configured model");
  return *model;
}

// content: a string, or OpenAI content parts of type "text" (joined with newlines).
ApiResult<std::string> read_content(const Json& msg, const std::string& path, bool allow_missing) {
  const Json* c = field(msg, "content");
  if (!c) {
    if (allow_missing) return std::string();
    return bad_field(path + ".content", "required for this role");
  }
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array())
    return bad_field(path + ".content",
                     fmt::format("expected a string or an array of content parts, got {}", json_type_name(*c)));
  std::string out;
  for (size_t j = 0; j < c->size(); ++j) {
    const Json& part = (*c)[j];
    const std::string pp = fmt::format("{}.content[{}]", path, j);
    if (!part.is_object()) return bad_field(pp, fmt::format("expected a content part object, got {}", json_type_name(part)));
    CODEY_TRY_ASSIGN(auto type, read_string(part, "type", pp + ".type"));
    if (!type) return bad_field(pp + ".type", "required (\"text\")");
    if (*type != "text")
      return bad_field(pp + ".type", fmt::format("only text content is supported, got \"{}\"", *type));
    CODEY_TRY_ASSIGN(auto text, read_string(part, "text", pp + ".text"));
    if (!text) return bad_field(pp + ".text", "required for a text part");
    if (!out.empty()) out += '\n';
    out += *text;
  }
  return out;
}

// A JSON string of arguments becomes an object for the chat template (the
// templates iterate or tojson them); anything else is kept as it came. The
// string is a document of its own: parsed within the body's limits, and a
// 400 naming the field beyond them.
ApiResult<Json> arguments_for_template(const Json& args, const std::string& path) {
  if (args.is_string()) {
    auto parsed = parse_json<Json>(args.get_ref<const std::string&>(), kRequestJsonLimits);
    if (parsed && parsed->is_object()) return std::move(*parsed);
    if (!parsed && parsed.error().code == ErrorCode::kResourceExhausted)
      return bad_field(path, fmt::format("the arguments string {}", parsed.error().message));
  }
  return args;
}

// tool_calls of an assistant message (OpenAI: arguments is a JSON string;
// Ollama: an object) -> the template's {type, function: {name, arguments}}.
ApiResult<Json> read_tool_calls(const Json& msg, const std::string& path) {
  const Json* tc = field(msg, "tool_calls");
  if (!tc) return Json(nullptr);
  if (!tc->is_array()) return bad_field(path + ".tool_calls", fmt::format("expected an array, got {}", json_type_name(*tc)));
  Json out = Json::array();
  for (size_t j = 0; j < tc->size(); ++j) {
    const Json& call = (*tc)[j];
    const std::string cp = fmt::format("{}.tool_calls[{}]", path, j);
    if (!call.is_object()) return bad_field(cp, fmt::format("expected an object, got {}", json_type_name(call)));
    const Json* fn = field(call, "function");
    if (!fn || !fn->is_object()) return bad_field(cp + ".function", "required: an object with name and arguments");
    CODEY_TRY_ASSIGN(auto name, read_string(*fn, "name", cp + ".function.name"));
    if (!name || name->empty()) return bad_field(cp + ".function.name", "required: the function's name");
    Json item = Json::object();
    CODEY_TRY_ASSIGN(auto id, read_string(call, "id", cp + ".id"));
    if (id) item["id"] = *id;
    item["type"] = "function";
    Json f = Json::object();
    f["name"] = *name;
    const Json* args = field(*fn, "arguments");
    if (args) {
      CODEY_TRY_ASSIGN(auto converted, arguments_for_template(*args, cp + ".function.arguments"));
      f["arguments"] = std::move(converted);
    } else {
      f["arguments"] = Json::object();
    }
    item["function"] = std::move(f);
    out.push_back(std::move(item));
  }
  return out;
}

ApiResult<Json> read_tools(const Json& body) {
  const Json* t = field(body, "tools");
  if (!t) return Json(nullptr);
  if (!t->is_array()) return bad_field("tools", fmt::format("expected an array of tools, got {}", json_type_name(*t)));
  if (t->empty()) return Json(nullptr);
  Json out = Json::array();
  for (size_t i = 0; i < t->size(); ++i) {
    const Json& tool = (*t)[i];
    const std::string p = fmt::format("tools[{}]", i);
    if (!tool.is_object()) return bad_field(p, fmt::format("expected a tool object, got {}", json_type_name(tool)));
    CODEY_TRY_ASSIGN(auto type, read_string(tool, "type", p + ".type"));
    if (type && *type != "function")
      return bad_field(p + ".type", fmt::format("only \"function\" tools are supported, got \"{}\"", *type));
    const Json* fn = field(tool, "function");
    if (!fn || !fn->is_object()) return bad_field(p + ".function", "required: an object with name, description, parameters");
    CODEY_TRY_ASSIGN(auto name, read_string(*fn, "name", p + ".function.name"));
    if (!name || name->empty()) return bad_field(p + ".function.name", "required: the function's name");
    CODEY_TRY_ASSIGN(auto desc, read_string(*fn, "description", p + ".function.description"));
    Json f = Json::object();
    f["name"] = *name;
    if (desc) f["description"] = *desc;
    if (const Json* params = field(*fn, "parameters")) {
      if (!params->is_object())
        return bad_field(p + ".function.parameters", fmt::format("expected a JSON schema object, got {}", json_type_name(*params)));
      f["parameters"] = *params;
    }
    out.push_back(Json{{"type", "function"}, {"function", std::move(f)}});
  }
  return out;
}

// OpenAI messages -> the template's messages.
ApiResult<Json> read_openai_messages(const Json& body) {
  const Json* m = field(body, "messages");
  if (!m) return bad_field("messages", "required: a non-empty array of messages");
  if (!m->is_array() || m->empty())
    return bad_field("messages", fmt::format("expected a non-empty array of messages, got {}",
                                             m->is_array() ? "an empty array" : json_type_name(*m)));
  Json out = Json::array();
  for (size_t i = 0; i < m->size(); ++i) {
    const Json& msg = (*m)[i];
    const std::string p = fmt::format("messages[{}]", i);
    if (!msg.is_object()) return bad_field(p, fmt::format("expected a message object, got {}", json_type_name(msg)));
    CODEY_TRY_ASSIGN(auto role, read_string(msg, "role", p + ".role"));
    if (!role) return bad_field(p + ".role", "required: system, user, assistant or tool");
    if (*role == "developer") role = "system";  // OpenAI's newer name for system; templates know "system"
    if (*role != "system" && *role != "user" && *role != "assistant" && *role != "tool")
      return bad_field(p + ".role", fmt::format("expected system, developer, user, assistant or tool, got \"{}\"", *role));
    Json out_msg = Json::object();
    out_msg["role"] = *role;
    CODEY_TRY_ASSIGN(auto content, read_content(msg, p, *role == "assistant"));
    out_msg["content"] = std::move(content);
    CODEY_TRY_ASSIGN(auto name, read_string(msg, "name", p + ".name"));
    if (name) out_msg["name"] = *name;
    if (*role == "assistant") {
      CODEY_TRY_ASSIGN(auto calls, read_tool_calls(msg, p));
      if (!calls.is_null()) out_msg["tool_calls"] = std::move(calls);
    }
    if (*role == "tool") {
      CODEY_TRY_ASSIGN(auto id, read_string(msg, "tool_call_id", p + ".tool_call_id"));
      if (id) out_msg["tool_call_id"] = *id;
    }
    out.push_back(std::move(out_msg));
  }
  return out;
}

// Sampling fields OpenAI has, plus the llama.cpp extensions clients send to
// local servers (top_k, min_p, repeat_penalty).
ApiResult<void> read_openai_sampling(const Json& body, GenerateRequest& g) {
  CODEY_TRY_ASSIGN(auto temperature, read_number(body, "temperature", "temperature", 0, 2));
  CODEY_TRY_ASSIGN(auto top_p, read_number(body, "top_p", "top_p", 0, 1));
  CODEY_TRY_ASSIGN(auto presence, read_number(body, "presence_penalty", "presence_penalty", -2, 2));
  CODEY_TRY_ASSIGN(auto frequency, read_number(body, "frequency_penalty", "frequency_penalty", -2, 2));
  CODEY_TRY_ASSIGN(auto seed, read_int(body, "seed", "seed", kI64Min, kI64Max));
  CODEY_TRY_ASSIGN(auto top_k, read_int(body, "top_k", "top_k", 0, 1 << 30));
  CODEY_TRY_ASSIGN(auto min_p, read_number(body, "min_p", "min_p", 0, 1));
  CODEY_TRY_ASSIGN(auto repeat_penalty, read_number(body, "repeat_penalty", "repeat_penalty", 0, 100));
  if (temperature) g.sampling.temperature = static_cast<float>(*temperature);
  if (top_p) g.sampling.top_p = static_cast<float>(*top_p);
  if (presence) g.sampling.presence_penalty = static_cast<float>(*presence);
  if (frequency) g.sampling.frequency_penalty = static_cast<float>(*frequency);
  if (seed) g.sampling.seed = static_cast<uint64_t>(*seed);
  if (top_k) g.sampling.top_k = static_cast<int>(*top_k);
  if (min_p) g.sampling.min_p = static_cast<float>(*min_p);
  if (repeat_penalty) g.sampling.repeat_penalty = static_cast<float>(*repeat_penalty);

  CODEY_TRY_ASSIGN(auto stop, read_string_list(body, "stop", "stop", kMaxStopStrings));
  g.stop = std::move(stop);

  if (const Json* bias = field(body, "logit_bias")) {
    if (!bias->is_object())
      return bad_field("logit_bias", fmt::format("expected an object of token id -> bias, got {}", json_type_name(*bias)));
    for (const auto& [key, value] : bias->items()) {
      const std::string p = fmt::format("logit_bias.{}", key);
      int64_t id = -1;
      auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || ptr != key.data() + key.size() || id < 0 || id > std::numeric_limits<int32_t>::max())
        return bad_field(p, "keys must be token ids (non-negative integers)");
      if (!value.is_number()) return bad_field(p, fmt::format("expected a number in [-100, 100], got {}", json_type_name(value)));
      const double b = value.get<double>();
      if (!std::isfinite(b) || b < -100 || b > 100) return bad_field(p, fmt::format("expected a number in [-100, 100], got {}", b));
      g.logit_bias[static_cast<TokenId>(id)] = static_cast<float>(b);
    }
  }
  return {};
}

ApiResult<void> read_openai_common(const Json& body, ParsedRequest& r) {
  CODEY_TRY_ASSIGN(auto model, required_model(body));
  r.gen.model = std::move(model);
  CODEY_TRY_ASSIGN(auto stream, read_bool(body, "stream", "stream"));
  r.stream = stream.value_or(false);
  if (const Json* so = field(body, "stream_options")) {
    if (!so->is_object()) return bad_field("stream_options", fmt::format("expected an object, got {}", json_type_name(*so)));
    CODEY_TRY_ASSIGN(auto usage, read_bool(*so, "include_usage", "stream_options.include_usage"));
    r.include_usage = usage.value_or(false);
  }
  CODEY_TRY_ASSIGN(auto n, read_int(body, "n", "n", 1, 128));
  if (n && *n != 1) return bad_field("n", fmt::format("only 1 choice per request is supported, got {}", *n));
  CODEY_TRY_ASSIGN(auto max_tokens, read_int(body, "max_tokens", "max_tokens", 1, kMaxRequestTokens));
  CODEY_TRY_ASSIGN(auto max_completion, read_int(body, "max_completion_tokens", "max_completion_tokens", 1, kMaxRequestTokens));
  if (max_completion) r.gen.max_tokens = static_cast<int>(*max_completion);
  else if (max_tokens) r.gen.max_tokens = static_cast<int>(*max_tokens);
  CODEY_TRY(read_openai_sampling(body, r.gen));
  return {};
}

ApiResult<void> reject_logprobs(const Json& body) {
  if (const Json* lp = field(body, "logprobs")) {
    const bool wants = (lp->is_boolean() && lp->get<bool>()) || (lp->is_number() && lp->get<double>() != 0);
    if (wants) return bad_field("logprobs", "log probabilities are not supported");
    if (!lp->is_boolean() && !lp->is_number())
      return bad_field("logprobs", fmt::format("expected a boolean or a number, got {}", json_type_name(*lp)));
  }
  if (const Json* tl = field(body, "top_logprobs")) {
    if (!tl->is_number() || tl->get<double>() != 0) return bad_field("top_logprobs", "log probabilities are not supported");
  }
  return {};
}

// ---- Ollama ----

// Ollama options: the sampling ones codey has; hardware knobs are accepted and
// ignored (the config decides them); sampling methods codey lacks are 400s
// unless set to their "off" value.
ApiResult<void> read_ollama_options(const Json& body, GenerateRequest& g) {
  const Json* o = field(body, "options");
  if (!o) return {};
  if (!o->is_object()) return bad_field("options", fmt::format("expected an object, got {}", json_type_name(*o)));
  const Json& opt = *o;
  CODEY_TRY_ASSIGN(auto num_ctx, read_int(opt, "num_ctx", "options.num_ctx", 1, kMaxRequestTokens));
  (void)num_ctx;  // the context is the model's configured one (codey.yaml ctx); a too-long prompt is a 413
  CODEY_TRY_ASSIGN(auto num_predict, read_int(opt, "num_predict", "options.num_predict", -2, kMaxRequestTokens));
  if (num_predict && *num_predict > 0) g.max_tokens = static_cast<int>(*num_predict);  // -1, -2, 0: no limit but the context
  CODEY_TRY_ASSIGN(auto temperature, read_number(opt, "temperature", "options.temperature", 0, 100));
  CODEY_TRY_ASSIGN(auto top_k, read_int(opt, "top_k", "options.top_k", 0, 1 << 30));
  CODEY_TRY_ASSIGN(auto top_p, read_number(opt, "top_p", "options.top_p", 0, 1));
  CODEY_TRY_ASSIGN(auto min_p, read_number(opt, "min_p", "options.min_p", 0, 1));
  CODEY_TRY_ASSIGN(auto seed, read_int(opt, "seed", "options.seed", kI64Min, kI64Max));
  CODEY_TRY_ASSIGN(auto repeat_penalty, read_number(opt, "repeat_penalty", "options.repeat_penalty", 0, 100));
  CODEY_TRY_ASSIGN(auto repeat_last_n, read_int(opt, "repeat_last_n", "options.repeat_last_n", -1, 1 << 20));
  CODEY_TRY_ASSIGN(auto presence, read_number(opt, "presence_penalty", "options.presence_penalty", -100, 100));
  CODEY_TRY_ASSIGN(auto frequency, read_number(opt, "frequency_penalty", "options.frequency_penalty", -100, 100));
  if (temperature) g.sampling.temperature = static_cast<float>(*temperature);
  if (top_k) g.sampling.top_k = static_cast<int>(*top_k);
  if (top_p) g.sampling.top_p = static_cast<float>(*top_p);
  if (min_p) g.sampling.min_p = static_cast<float>(*min_p);
  if (seed && *seed >= 0) g.sampling.seed = static_cast<uint64_t>(*seed);  // Ollama: negative = random
  if (repeat_penalty) g.sampling.repeat_penalty = static_cast<float>(*repeat_penalty);
  if (repeat_last_n) g.sampling.repeat_last_n = *repeat_last_n < 0 ? (1 << 20) : static_cast<int>(*repeat_last_n);
  if (presence) g.sampling.presence_penalty = static_cast<float>(*presence);
  if (frequency) g.sampling.frequency_penalty = static_cast<float>(*frequency);
  CODEY_TRY_ASSIGN(auto stop, read_string_list(opt, "stop", "options.stop", kMaxStopStrings));
  g.stop = std::move(stop);

  // Sampling methods codey does not implement: fine when off.
  CODEY_TRY_ASSIGN(auto mirostat, read_int(opt, "mirostat", "options.mirostat", 0, 2));
  if (mirostat && *mirostat != 0) return bad_field("options.mirostat", "mirostat sampling is not supported (use 0)");
  CODEY_TRY_ASSIGN(auto typical_p, read_number(opt, "typical_p", "options.typical_p", 0, 1));
  if (typical_p && *typical_p != 1) return bad_field("options.typical_p", "typical sampling is not supported (use 1)");
  CODEY_TRY_ASSIGN(auto tfs_z, read_number(opt, "tfs_z", "options.tfs_z", 0, 1e9));
  if (tfs_z && *tfs_z != 1) return bad_field("options.tfs_z", "tail-free sampling is not supported (use 1)");
  // Hardware and loading knobs (num_thread, num_gpu, num_batch, use_mmap, ...)
  // belong to codey.yaml and are ignored here, as are unknown keys (Ollama too ignores them).
  return {};
}

ApiResult<void> read_ollama_common(const Json& body, ParsedRequest& r) {
  CODEY_TRY_ASSIGN(auto model, required_model(body));
  r.gen.model = std::move(model);
  CODEY_TRY_ASSIGN(auto stream, read_bool(body, "stream", "stream"));
  r.stream = stream.value_or(true);  // Ollama streams unless told not to
  CODEY_TRY_ASSIGN(auto keep_alive, read_keep_alive(body, "keep_alive"));
  r.gen.keep_alive = keep_alive;
  if (const Json* f = field(body, "format")) {
    if (f->is_string()) {
      const auto& s = f->get_ref<const std::string&>();
      if (s == "json") r.json_mode = true;
      else if (!s.empty()) return bad_field("format", fmt::format("expected \"json\" or a JSON schema, got \"{}\"", s));
    } else if (f->is_object()) {
      return bad_field("format", "JSON schema output is not supported; use \"json\"");
    } else {
      return bad_field("format", fmt::format("expected \"json\", got {}", json_type_name(*f)));
    }
  }
  CODEY_TRY_ASSIGN(auto think, read_bool(body, "think", "think"));
  if (think) r.gen.template_context = Json{{"enable_thinking", *think}};
  CODEY_TRY(read_ollama_options(body, r.gen));
  return {};
}

ApiResult<void> reject_images(const Json& obj, const std::string& path) {
  if (const Json* im = field(obj, "images")) {
    if (!im->is_array()) return bad_field(path, fmt::format("expected an array, got {}", json_type_name(*im)));
    if (!im->empty()) return bad_field(path, "images are not supported (codey's models are text-only)");
  }
  return {};
}

}  // namespace

ApiResult<std::optional<Millis>> read_keep_alive(const Json& obj, std::string_view key) {
  const Json* v = field(obj, key);
  if (!v) return std::optional<Millis>();
  std::string text;
  if (v->is_string()) {
    text = v->get<std::string>();
  } else if (v->is_number()) {
    const double s = v->get<double>();
    if (!std::isfinite(s) || std::abs(s) > 1e9) return bad_field(key, fmt::format("expected a duration, got {}", dump(*v)));
    text = fmt::format("{}", s);
  } else {
    return bad_field(key, fmt::format("expected a duration like \"5m\" or a number of seconds, got {}", json_type_name(*v)));
  }
  auto d = parse_duration(text);
  if (!d) return bad_field(key, d.error().message);
  return std::optional<Millis>(*d);
}

ApiResult<ParsedRequest> parse_openai_chat(const Json& body) {
  ParsedRequest r;
  r.api = ApiKind::kOpenAi;
  r.endpoint = Endpoint::kChat;
  CODEY_TRY(read_openai_common(body, r));
  CODEY_TRY(reject_logprobs(body));
  CODEY_TRY_ASSIGN(auto messages, read_openai_messages(body));
  r.gen.messages = std::move(messages);
  CODEY_TRY_ASSIGN(auto tools, read_tools(body));
  if (const Json* tc = field(body, "tool_choice")) {
    if (tc->is_string() && tc->get_ref<const std::string&>() == "none") {
      tools = nullptr;
    } else if (!(tc->is_string() && tc->get_ref<const std::string&>() == "auto")) {
      return bad_field("tool_choice", "only \"auto\" and \"none\" are supported");
    }
  }
  r.has_tools = !tools.is_null();
  r.gen.tools = std::move(tools);
  if (const Json* rf = field(body, "response_format")) {
    if (!rf->is_object())
      return bad_field("response_format", fmt::format("expected an object like {{\"type\": \"json_object\"}}, got {}", json_type_name(*rf)));
    CODEY_TRY_ASSIGN(auto type, read_string(*rf, "type", "response_format.type"));
    if (!type) return bad_field("response_format.type", "required: \"text\" or \"json_object\"");
    if (*type == "json_object") r.json_mode = true;
    else if (*type == "json_schema")
      return bad_field("response_format.type", "json_schema is not supported; use json_object");
    else if (*type != "text")
      return bad_field("response_format.type", fmt::format("expected \"text\" or \"json_object\", got \"{}\"", *type));
  }
  if (r.json_mode && r.has_tools)
    return bad_field("response_format", "json_object cannot be combined with tools");
  return r;
}

ApiResult<ParsedRequest> parse_openai_completion(const Json& body) {
  ParsedRequest r;
  r.api = ApiKind::kOpenAi;
  r.endpoint = Endpoint::kCompletion;
  CODEY_TRY(read_openai_common(body, r));
  CODEY_TRY(reject_logprobs(body));
  CODEY_TRY_ASSIGN(auto echo, read_bool(body, "echo", "echo"));
  if (echo && *echo) return bad_field("echo", "echoing the prompt is not supported");
  CODEY_TRY_ASSIGN(auto best_of, read_int(body, "best_of", "best_of", 1, 128));
  if (best_of && *best_of != 1) return bad_field("best_of", fmt::format("only best_of 1 is supported, got {}", *best_of));
  const Json* p = field(body, "prompt");
  if (!p) return bad_field("prompt", "required: a string (or an array of token ids)");
  auto tokens_of = [](const Json& arr, std::string_view path) -> ApiResult<std::vector<TokenId>> {
    std::vector<TokenId> out;
    for (size_t i = 0; i < arr.size(); ++i) {
      const Json& t = arr[i];
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max())
        return bad_field(fmt::format("{}[{}]", path, i), "expected a token id (a non-negative integer)");
      out.push_back(static_cast<TokenId>(t.get<int64_t>()));
    }
    return out;
  };
  if (p->is_string()) {
    r.gen.prompt = p->get<std::string>();
  } else if (p->is_array()) {
    if (p->empty()) return bad_field("prompt", "expected a string or a non-empty array");
    const Json& first = (*p)[0];
    if (first.is_string()) {
      if (p->size() != 1) return bad_field("prompt", fmt::format("only one prompt per request is supported, got {}", p->size()));
      r.gen.prompt = first.get<std::string>();
    } else if (first.is_number()) {
      CODEY_TRY_ASSIGN(auto toks, tokens_of(*p, "prompt"));
      r.gen.tokens = std::move(toks);
    } else if (first.is_array()) {
      if (p->size() != 1) return bad_field("prompt", fmt::format("only one prompt per request is supported, got {}", p->size()));
      if (first.empty()) return bad_field("prompt[0]", "expected a non-empty array of token ids");
      CODEY_TRY_ASSIGN(auto toks, tokens_of(first, "prompt[0]"));
      r.gen.tokens = std::move(toks);
    } else {
      return bad_field("prompt[0]", fmt::format("expected a string or a token id, got {}", json_type_name(first)));
    }
  } else {
    return bad_field("prompt", fmt::format("expected a string or an array of token ids, got {}", json_type_name(*p)));
  }
  CODEY_TRY_ASSIGN(auto suffix, read_string(body, "suffix", "suffix"));
  if (suffix) {
    if (!r.gen.tokens.empty()) return bad_field("suffix", "fill-in-the-middle needs a text prompt, not token ids");
    r.gen.suffix = std::move(*suffix);
  }
  return r;
}

ApiResult<ParsedRequest> parse_ollama_generate(const Json& body) {
  ParsedRequest r;
  r.api = ApiKind::kOllama;
  r.endpoint = Endpoint::kCompletion;
  CODEY_TRY(read_ollama_common(body, r));
  CODEY_TRY(reject_images(body, "images"));
  CODEY_TRY_ASSIGN(auto prompt, read_string(body, "prompt", "prompt"));
  CODEY_TRY_ASSIGN(auto suffix, read_string(body, "suffix", "suffix"));
  CODEY_TRY_ASSIGN(auto system, read_string(body, "system", "system"));
  CODEY_TRY_ASSIGN(auto raw, read_bool(body, "raw", "raw"));
  CODEY_TRY_ASSIGN(auto templ, read_string(body, "template", "template"));
  if (templ && !templ->empty())
    return bad_field("template", "custom prompt templates are not supported; codey uses the model's chat template (or raw: true)");
  if (const Json* ctx = field(body, "context")) {
    if (!ctx->is_array()) return bad_field("context", fmt::format("expected an array, got {}", json_type_name(*ctx)));
    if (!ctx->empty()) return bad_field("context", "context token arrays are not supported; send the conversation to /api/chat");
  }
  const std::string text = prompt.value_or("");
  if (text.empty() && !suffix) {
    r.special = (r.gen.keep_alive && r.gen.keep_alive->count() == 0) ? Special::kUnload : Special::kLoad;
    return r;
  }
  if (suffix) {
    r.gen.prompt = text;
    r.gen.suffix = std::move(*suffix);
  } else if (raw.value_or(false)) {
    r.gen.prompt = text;
  } else {
    Json messages = Json::array();
    if (system && !system->empty()) messages.push_back(Json{{"role", "system"}, {"content", *system}});
    messages.push_back(Json{{"role", "user"}, {"content", text}});
    r.gen.messages = std::move(messages);
  }
  return r;
}

ApiResult<ParsedRequest> parse_ollama_chat(const Json& body) {
  ParsedRequest r;
  r.api = ApiKind::kOllama;
  r.endpoint = Endpoint::kChat;
  CODEY_TRY(read_ollama_common(body, r));
  const Json* m = field(body, "messages");
  if (m && !m->is_array()) return bad_field("messages", fmt::format("expected an array of messages, got {}", json_type_name(*m)));
  if (!m || m->empty()) {
    r.special = (r.gen.keep_alive && r.gen.keep_alive->count() == 0) ? Special::kUnload : Special::kLoad;
    return r;
  }
  Json out = Json::array();
  for (size_t i = 0; i < m->size(); ++i) {
    const Json& msg = (*m)[i];
    const std::string p = fmt::format("messages[{}]", i);
    if (!msg.is_object()) return bad_field(p, fmt::format("expected a message object, got {}", json_type_name(msg)));
    CODEY_TRY_ASSIGN(auto role, read_string(msg, "role", p + ".role"));
    if (!role) return bad_field(p + ".role", "required: system, user, assistant or tool");
    if (*role != "system" && *role != "user" && *role != "assistant" && *role != "tool")
      return bad_field(p + ".role", fmt::format("expected system, user, assistant or tool, got \"{}\"", *role));
    CODEY_TRY(reject_images(msg, p + ".images"));
    CODEY_TRY_ASSIGN(auto content, read_string(msg, "content", p + ".content"));
    Json out_msg = Json::object();
    out_msg["role"] = *role;
    out_msg["content"] = content.value_or("");
    if (*role == "assistant") {
      CODEY_TRY_ASSIGN(auto calls, read_tool_calls(msg, p));
      if (!calls.is_null()) out_msg["tool_calls"] = std::move(calls);
    }
    CODEY_TRY_ASSIGN(auto tool_name, read_string(msg, "tool_name", p + ".tool_name"));
    if (tool_name) out_msg["name"] = *tool_name;
    out.push_back(std::move(out_msg));
  }
  r.gen.messages = std::move(out);
  CODEY_TRY_ASSIGN(auto tools, read_tools(body));
  r.has_tools = !tools.is_null();
  r.gen.tools = std::move(tools);
  if (r.json_mode && r.has_tools) return bad_field("format", "\"json\" cannot be combined with tools");
  return r;
}

}  // namespace codey::server
