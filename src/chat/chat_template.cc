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

Result<std::string> ChatTemplate::render_with(const nlohmann::ordered_json& variables,
                                              std::optional<std::tm> now) const {
  if (!variables.is_object() && !variables.is_null())
    return make_error(ErrorCode::kInvalidArgument, "template variables must be a JSON object, got {}",
                      variables.type_name());
  try {
    jinja::Value vars = jinja::from_json(variables.is_null() ? nlohmann::ordered_json::object() : variables);
    jinja::Interpreter interp(jinja::RenderOptions{now});
    return interp.render(impl_->body, vars.dict(), impl_->root_undefined);
  } catch (const jinja::JinjaError& e) {
    return std::unexpected(to_error(e, false));
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "out of memory rendering the chat template");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, "rendering the chat template: {}", e.what());
  }
}

Result<std::string> ChatTemplate::render(const ChatTemplateInputs& in) const {
  if (!in.messages.is_array())
    return make_error(ErrorCode::kInvalidArgument, "messages must be a JSON array, got {}", in.messages.type_name());
  if (!in.extra_context.is_null() && !in.extra_context.is_object())
    return make_error(ErrorCode::kInvalidArgument, "extra template variables must be a JSON object, got {}",
                      in.extra_context.type_name());
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  vars["messages"] = in.messages;
  if (!in.tools.is_null()) vars["tools"] = in.tools;
  vars["add_generation_prompt"] = in.add_generation_prompt;
  vars["bos_token"] = in.bos_token;
  vars["eos_token"] = in.eos_token;
  if (in.extra_context.is_object())
    for (const auto& [k, v] : in.extra_context.items()) vars[k] = v;
  return render_with(vars, in.now);
}

}  // namespace codey
