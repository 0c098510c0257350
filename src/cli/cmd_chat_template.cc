// `codey chat-template (--model FILE | --template FILE.jinja) --messages FILE.json
// [--tools FILE.json] [--vars FILE.json] [--no-generation-prompt]`: the prompt a
// model's chat template (GGUF tokenizer.chat_template) builds from a conversation.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "codey/chat.h"
#include "codey/gguf.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

using nlohmann::ordered_json;

struct ChatTemplateOptions {
  std::string model;
  std::string template_file;
  std::string messages_file;
  std::string tools_file;
  std::string vars_file;
  std::string bos_token;
  std::string eos_token;
  bool no_generation_prompt = false;
};

Result<std::string> read_text(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read {} {}", what, path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// JSON with key order kept (tojson output depends on it).
Result<ordered_json> read_json(const std::string& path, std::string_view what) {
  auto text = read_text(path, what);
  if (!text) return std::unexpected(text.error());
  auto j = parse_json<ordered_json>(*text);  // within codey's JSON limits: the renderer recurses per level
  if (!j) return make_error(j.error().code, "{} {} {}", what, path, j.error().message);
  return std::move(*j);
}

// The text of special token `key` (a token id) in the model's vocabulary.
std::string special_token(const GgufFile& file, std::string_view key) {
  if (!file.has(key)) return "";
  auto id = file.get_u64(key);
  auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (!id || !tokens || *id >= tokens->size()) return "";
  return std::string((*tokens)[*id]);
}

int run_chat_template(const ChatTemplateOptions& o) {
  ChatTemplateInputs in;
  auto messages = read_json(o.messages_file, "--messages");
  if (!messages) return fail(messages.error().message);
  // A bare array, or an object with "messages" (and maybe "tools").
  if (messages->is_object() && messages->contains("messages")) {
    in.messages = (*messages)["messages"];
    if (messages->contains("tools")) in.tools = (*messages)["tools"];
  } else {
    in.messages = std::move(*messages);
  }
  if (!in.messages.is_array()) return fail("--messages must hold a JSON array of messages");
  if (!o.tools_file.empty()) {
    auto tools = read_json(o.tools_file, "--tools");
    if (!tools) return fail(tools.error().message);
    if (!tools->is_array()) return fail("--tools must hold a JSON array of tool schemas");
    in.tools = std::move(*tools);
  }
  if (!o.vars_file.empty()) {
    auto vars = read_json(o.vars_file, "--vars");
    if (!vars) return fail(vars.error().message);
    if (!vars->is_object()) return fail("--vars must hold a JSON object");
    in.extra_context = std::move(*vars);
  }
  in.add_generation_prompt = !o.no_generation_prompt;
  in.bos_token = o.bos_token;
  in.eos_token = o.eos_token;

  std::optional<std::string> source;
  std::string model_name = o.template_file;
  if (!o.model.empty()) {
    auto path = resolve_model_path(o.model);
    if (!path) return fail(path.error().message);
    auto file = GgufFile::open(*path);
    if (!file) return fail(file.error().message);
    model_name = o.model;
    if (o.bos_token.empty()) in.bos_token = special_token(*file, "tokenizer.ggml.bos_token_id");
    if (o.eos_token.empty()) in.eos_token = special_token(*file, "tokenizer.ggml.eos_token_id");
    if (file->has("tokenizer.chat_template")) {
      auto t = file->get_string("tokenizer.chat_template");
      if (!t) return fail(t.error().message);
      source = std::string(*t);
    }
  }
  if (!o.template_file.empty()) {
    auto t = read_text(o.template_file, "--template");
    if (!t) return fail(t.error().message);
    source = std::move(*t);
  }
  auto tmpl = ChatTemplate::parse_or_default(source, model_name);
  if (!tmpl) return fail(fmt::format("chat template of {}: {}", model_name, tmpl.error().message));
  auto prompt = tmpl->render(in);
  if (!prompt) return fail(prompt.error().message);
  std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto o = std::make_shared<ChatTemplateOptions>();
  auto* cmd = root.add_subcommand("chat-template", "Print the prompt a chat template builds from a conversation");
  auto* model = cmd->add_option("--model,-m", o->model,
                                "GGUF file: its tokenizer.chat_template (ChatML if it has none) and BOS/EOS tokens");
  auto* tmpl = cmd->add_option("--template", o->template_file, "A Jinja template file (overrides the model's)");
  cmd->add_option("--messages", o->messages_file,
                  "JSON file: an array of {role, content, ...} messages, or an object with \"messages\" "
                  "(and \"tools\")")
      ->required();
  cmd->add_option("--tools", o->tools_file, "JSON file: an array of tool schemas (OpenAI style)");
  cmd->add_option("--vars", o->vars_file, "JSON file: an object of extra template variables (enable_thinking, ...)");
  cmd->add_option("--bos-token", o->bos_token, "The bos_token text (default: the model's)");
  cmd->add_option("--eos-token", o->eos_token, "The eos_token text (default: the model's)");
  cmd->add_flag("--no-generation-prompt", o->no_generation_prompt,
                "Render with add_generation_prompt=false (no opening assistant turn)");
  cmd->callback([model, tmpl] {
    if (model->count() + tmpl->count() == 0) throw CLI::ValidationError("give --model FILE or --template FILE");
  });
  return [o] { return run_chat_template(*o); };
}

CODEY_REGISTER_COMMAND(chat_template, setup);

}  // namespace
}  // namespace codey::cli
