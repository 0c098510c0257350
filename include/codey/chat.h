// Chat templates: a Jinja2 renderer for the templates models publish
// (GGUF `tokenizer.chat_template`), rendering the way Hugging Face's
// apply_chat_template does (sandboxed Jinja, trim_blocks, lstrip_blocks,
// raise_exception, strftime_now, tojson with indent).
#pragma once

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "codey/base.h"

namespace codey {

// Jinja environment options; the defaults are Hugging Face's.
struct JinjaOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// A template inside a GGUF file is untrusted code. Every render runs in a
// sandbox with these limits; past one, the render fails with an error
// (code kResourceExhausted, or kCancelled), never the process.
struct TemplateLimits {
  uint64_t max_steps = 50'000'000;             // statements, expressions and value operations
  std::chrono::milliseconds max_time{10'000};  // wall time of one render
  size_t max_string = size_t(64) << 20;        // bytes of any one string (and of the output)
  size_t max_items = size_t(1) << 20;          // items of any one list or dict
  int max_depth = 100;                         // nesting of lists/dicts/objects, and of macro calls
  size_t max_memory = size_t(512) << 20;       // live bytes of the strings, lists and dicts the render made
};

// What a chat template is rendered with. JSON objects must be
// nlohmann::ordered_json: key order is visible in the output (tojson).
struct ChatTemplateInputs {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  // Tool schemas (OpenAI style). null = no tools: `tools` stays undefined.
  nlohmann::ordered_json tools;
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
  // More template variables (enable_thinking, documents, ...): an object or
  // null. They are set after the ones above and may override them.
  nlohmann::ordered_json extra_context;
  // The clock strftime_now() reads; unset = the current local time.
  std::optional<std::tm> now;
  TemplateLimits limits;
  // Set (from any thread) to stop the render: it fails with kCancelled.
  const std::atomic<bool>* cancel = nullptr;
};

// A parsed template: parse once, render many times. Copies share the parsed
// tree; render() is const and thread-safe.
//
// Errors are codey::Error values whose message reads like the reference's
// Python exception, "<ExceptionType>: <message>":
//   - raise_exception("msg") in the template -> "TemplateError: msg"
//     (code kInvalidArgument: the conversation is what the template rejects)
//   - runtime errors -> "UndefinedError: 'dict object' has no attribute 'x'",
//     "TypeError: ...", ... (kInvalidArgument)
//   - syntax errors at parse -> "TemplateSyntaxError: ... (line N)"
//     (kInvalidArgument; kUnsupported for Jinja features codey lacks)
class ChatTemplate {
 public:
  static Result<ChatTemplate> parse(std::string_view source, const JinjaOptions& options = {});
  // The template a model without one gets: ChatML (<|im_start|>role ...).
  static const ChatTemplate& chatml();
  // `source` when present and non-empty, else ChatML with a logged warning
  // naming `model_name`.
  static Result<ChatTemplate> parse_or_default(std::optional<std::string_view> source,
                                               std::string_view model_name = "the model");

  Result<std::string> render(const ChatTemplateInputs& inputs) const;
  // Renders with exactly these variables (a JSON object), for templates that
  // are not chat templates and for tests.
  Result<std::string> render_with(const nlohmann::ordered_json& variables,
                                  std::optional<std::tm> now = std::nullopt, const TemplateLimits& limits = {}) const;

  const std::string& source() const;

 private:
  struct Impl;
  explicit ChatTemplate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// The ChatML template text (what chatml() parses).
extern const std::string_view kChatMlTemplate;

// JSON from outside - request bodies, strings parsed again (tool-call
// arguments), what a model writes - is parsed with limits checked while
// parsing: the code that walks a document (copies, dump, templates) recurses
// per level, and a document of tiny values ("[],[],...") costs ~70 bytes of
// memory per input byte.
struct JsonLimits {
  int max_depth = 64;                     // nesting levels
  size_t max_values = size_t(1) << 18;   // values of any kind, containers included
};
// Errors: kInvalidArgument "is not valid JSON: <where and why>";
// kResourceExhausted "nests deeper than N levels" / "has more than N values".
// J is nlohmann::ordered_json or nlohmann::json.
template <class J = nlohmann::ordered_json>
Result<J> parse_json(std::string_view text, const JsonLimits& limits = {});

}  // namespace codey
