// The chat layer's public API (include/codey/chat.h): parse a Jinja chat
// template once, render conversations with Hugging Face's variables, and turn
// internal Jinja exceptions into codey::Error values at this boundary.
#include <exception>
#include <new>

#include "chat/interpreter.h"
#include "chat/lexer.h"
#include "chat/parser.h"
#include "chat/scopes.h"
#include "codey/chat.h"

namespace codey {

const std::string_view kChatMlTemplate =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

struct ChatTemplate::Impl {
  std::string source;
  jinja::Body body;
  std::vector<std::string> root_undefined;  // see chat/scopes.h
};

namespace {

Error to_error(const jinja::JinjaError& e, bool at_parse) {
  std::string message = e.type + ": " + e.message;
  if (at_parse && e.line > 0) message += fmt::format(" (line {})", e.line);
  return Error{e.code, std::move(message)};
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source, const JinjaOptions& options) {
  try {
    jinja::LexerOptions lex;
    lex.trim_blocks = options.trim_blocks;
    lex.lstrip_blocks = options.lstrip_blocks;
    lex.keep_trailing_newline = options.keep_trailing_newline;
    auto impl = std::make_shared<Impl>();
    impl->source = std::string(source);
    impl->body = jinja::parse(jinja::tokenize(source, lex));
    impl->root_undefined = jinja::analyze_scopes(impl->body);
    return ChatTemplate(std::move(impl));
  } catch (const jinja::JinjaError& e) {
    return std::unexpected(to_error(e, true));
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "out of memory parsing the chat template");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, "parsing the chat template: {}", e.what());
  }
}

const ChatTemplate& ChatTemplate::chatml() {
  static const ChatTemplate t = [] {
    auto r = parse(kChatMlTemplate);
    CODEY_ASSERT(r.has_value());
    return *r;
  }();
  return t;
}

Result<ChatTemplate> ChatTemplate::parse_or_default(std::optional<std::string_view> source,
                                                    std::string_view model_name) {
  if (source && !source->empty()) return parse(*source);
  log_warn("{} has no chat template (tokenizer.chat_template); using ChatML", model_name);
  return chatml();
}

const std::string& ChatTemplate::source() const { return impl_->source; }

namespace {

// Bytes of text in a JSON value: the rendered prompt is about that long.
// (Only a hint: deeper than any limit, it stops counting.)
size_t text_bytes(const nlohmann::ordered_json& j, int depth = 0) {
  if (j.is_string()) return j.get_ref<const std::string&>().size();
  size_t n = 0;
  if (j.is_structured() && depth < 256)
    for (const auto& e : j) n += text_bytes(e, depth + 1) + 16;
  return n;
}

// Runs `make_vars` (JSON -> values) and the render in one place, so every
// JinjaError - from the inputs, the template or its sandbox - becomes an Error.
template <class MakeVars>
Result<std::string> render_dict(const jinja::Body& body, const std::vector<std::string>& root_undefined,
                                MakeVars&& make_vars, jinja::RenderOptions options, size_t size_hint = 0) {
  try {
    jinja::Dict vars = make_vars();
    jinja::Interpreter interp(std::move(options));
    return interp.render(body, vars, root_undefined, size_hint);
  } catch (const jinja::JinjaError& e) {
    return std::unexpected(to_error(e, false));
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "out of memory rendering the chat template");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, "rendering the chat template: {}", e.what());
  }
}

}  // namespace

Result<std::string> ChatTemplate::render_with(const nlohmann::ordered_json& variables, std::optional<std::tm> now,
                                              const TemplateLimits& limits) const {
  if (!variables.is_object() && !variables.is_null())
    return make_error(ErrorCode::kInvalidArgument, "template variables must be a JSON object, got {}",
                      variables.type_name());
  auto make_vars = [&] {
    jinja::Dict vars;
    if (variables.is_object())
      for (const auto& [k, v] : variables.items()) vars.set(jinja::Value::string(k), jinja::from_json(v));
    return vars;
  };
  return render_dict(impl_->body, impl_->root_undefined, make_vars, jinja::RenderOptions{now, limits, nullptr});
}

Result<std::string> ChatTemplate::render(const ChatTemplateInputs& in) const {
  if (!in.messages.is_array())
    return make_error(ErrorCode::kInvalidArgument, "messages must be a JSON array, got {}", in.messages.type_name());
  if (!in.extra_context.is_null() && !in.extra_context.is_object())
    return make_error(ErrorCode::kInvalidArgument, "extra template variables must be a JSON object, got {}",
                      in.extra_context.type_name());
  // Built straight from the inputs: a conversation can be megabytes, so no
  // intermediate JSON copy.
  auto make_vars = [&] {
    using jinja::Value;
    jinja::Dict vars;
    vars.set(Value::string("messages"), jinja::from_json(in.messages));
    if (!in.tools.is_null()) vars.set(Value::string("tools"), jinja::from_json(in.tools));
    vars.set(Value::string("add_generation_prompt"), Value::boolean(in.add_generation_prompt));
    vars.set(Value::string("bos_token"), Value::string(in.bos_token));
    vars.set(Value::string("eos_token"), Value::string(in.eos_token));
    if (in.extra_context.is_object())
      for (const auto& [k, v] : in.extra_context.items()) vars.set(Value::string(k), jinja::from_json(v));
    return vars;
  };
  const size_t hint = text_bytes(in.messages) + 4096;
  return render_dict(impl_->body, impl_->root_undefined, make_vars, jinja::RenderOptions{in.now, in.limits, in.cancel},
                     hint);
}

}  // namespace codey
