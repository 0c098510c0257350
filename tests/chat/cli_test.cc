// End-to-end tests of `codey chat-template`: the built binary renders
// conversations from files with a template file or a GGUF model's template.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "testing/testing.h"

namespace codey {
namespace {

using nlohmann::ordered_json;
using testing::run_codey;

std::string tdir() { return testing::testdata("templates"); }

std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = testing::temp_dir() + "/" + name;
  testing::write_file_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
  return path;
}

const ordered_json& case_named(const std::string& name) {
  static const ordered_json cases = ordered_json::parse(testing::read_file_text(tdir() + "/cases.json"));
  for (const auto& c : cases)
    if (c.at("name") == name) return c;
  static const ordered_json none;
  ADD_FAILURE() << "no case " << name;
  return none;
}

// A minimal GGUF v3 file with metadata only, written independently of the
// gguf layer: a vocabulary, BOS/EOS ids and optionally a chat template.
std::string write_gguf(const std::string& name, const std::string* chat_template) {
  std::string b;
  auto u32 = [&](uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); };
  auto str = [&](const std::string& s) {
    u64(s.size());
    b += s;
  };
  const std::vector<std::string> tokens = {"<unk>", "<|begin|>", "<|end|>", "a"};
  b += "GGUF";
  u32(3);
  u64(0);                           // tensors
  u64(chat_template ? 5 : 4);       // metadata entries
  str("general.architecture");
  u32(8);
  str("llama");
  str("tokenizer.ggml.tokens");
  u32(9);
  u32(8);
  u64(tokens.size());
  for (const auto& t : tokens) str(t);
  str("tokenizer.ggml.bos_token_id");
  u32(4);
  u32(1);
  str("tokenizer.ggml.eos_token_id");
  u32(4);
  u32(2);
  if (chat_template) {
    str("tokenizer.chat_template");
    u32(8);
    str(*chat_template);
  }
  while (b.size() % 32) b.push_back('\0');
  return write_temp(name, b);
}

TEST(ChatTemplateCli, RendersTemplateFileLikeTheReference) {
  const ordered_json& c = case_named("tools");
  std::string messages = write_temp("tools.json", c.dump());  // object with messages and tools
  auto r = run_codey({"chat-template", "--template", tdir() + "/Qwen-Qwen2.5-7B-Instruct.jinja", "--messages",
                      messages, "--bos-token", "<s>", "--eos-token", "</s>"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, testing::read_file_text(tdir() + "/expected/Qwen-Qwen2.5-7B-Instruct.tools.txt"));
}

TEST(ChatTemplateCli, SeparateToolsFileAndNoGenerationPrompt) {
  const ordered_json& c = case_named("no_gen_prompt");
  std::string messages = write_temp("m.json", c.at("messages").dump());  // a bare array
  auto r = run_codey({"chat-template", "--template", tdir() + "/meta-llama-Llama-3.1-8B-Instruct.jinja", "--messages",
                      messages, "--no-generation-prompt", "--bos-token", "<s>", "--eos-token", "</s>"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, testing::read_file_text(tdir() + "/expected/meta-llama-Llama-3.1-8B-Instruct.no_gen_prompt.txt"));

  const ordered_json& t = case_named("tools");
  std::string tmsgs = write_temp("tm.json", t.at("messages").dump());
  std::string tools = write_temp("tools.json", t.at("tools").dump());
  auto r2 = run_codey({"chat-template", "--template", tdir() + "/Qwen-Qwen3-0.6B.jinja", "--messages", tmsgs,
                       "--tools", tools});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(r2.out, testing::read_file_text(tdir() + "/expected/Qwen-Qwen3-0.6B.tools.txt"));
}

TEST(ChatTemplateCli, TemplateRaiseIsAClearError) {
  std::string messages = write_temp("s.json", case_named("system").at("messages").dump());
  auto r = run_codey({"chat-template", "--template", tdir() + "/google-gemma-2-2b-it.jinja", "--messages", messages});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("TemplateError: System role not supported"), std::string::npos) << r.err;
}

TEST(ChatTemplateCli, ModelTemplateAndSpecialTokensFromGguf) {
  const std::string tmpl = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}";
  std::string model = write_gguf("with-template.gguf", &tmpl);
  std::string messages = write_temp("m.json", R"([{"role": "user", "content": "hi"}])");
  auto r = run_codey({"chat-template", "--model", model, "--messages", messages});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|begin|>[user] hi<|end|>");

  // --template replaces the model's template; the model still names the tokens.
  std::string other = write_temp("other.jinja", "{{ eos_token }}{{ messages | length }}");
  auto r2 = run_codey({"chat-template", "--model", model, "--template", other, "--messages", messages});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(r2.out, "<|end|>1");
}

TEST(ChatTemplateCli, ModelWithoutTemplateGetsChatMlAndAWarning) {
  std::string model = write_gguf("no-template.gguf", nullptr);
  std::string messages =
      write_temp("m.json", R"([{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}])");
  auto r = run_codey({"chat-template", "--model", model, "--messages", messages});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_NE(r.err.find("ChatML"), std::string::npos) << r.err;
}

TEST(ChatTemplateCli, BadInputsFailWithAMessage) {
  std::string messages = write_temp("m.json", R"([{"role": "user", "content": "hi"}])");
  auto none = run_codey({"chat-template", "--messages", messages});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("--template"), std::string::npos) << none.err;

  std::string bad_json = write_temp("bad.json", "[{");
  auto r = run_codey({"chat-template", "--template", tdir() + "/Qwen-Qwen3-0.6B.jinja", "--messages", bad_json});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;

  std::string broken = write_temp("broken.jinja", "{% if x %}never closed");
  auto r2 = run_codey({"chat-template", "--template", broken, "--messages", messages});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_NE(r2.err.find("TemplateSyntaxError"), std::string::npos) << r2.err;

  auto r3 = run_codey({"chat-template", "--model", "/nonexistent/model.gguf", "--messages", messages});
  EXPECT_EQ(r3.exit_code, 1);
  EXPECT_FALSE(r3.err.empty());
}

}  // namespace
}  // namespace codey
