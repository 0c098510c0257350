// Tests of model references (src/store/reference.cc) and of choosing a model
// among a repo's files (src/store/files.cc): every reference form, hostile
// names, quantization labels, the default choice and its messages.
#include <gtest/gtest.h>

#include "codey/store.h"
#include "store/internal.h"

namespace codey {
namespace {

ModelRef ok(std::string_view text) {
  auto r = parse_model_ref(text);
  EXPECT_TRUE(r.has_value()) << text << ": " << (r ? "" : r.error().message);
  return r ? *r : ModelRef{};
}

TEST(ModelRef, HubForms) {
  auto r = ok("hf.co/Qwen/Qwen2.5-Coder-7B-Instruct-GGUF:Q4_K_M");
  EXPECT_EQ(r.kind, RefKind::kHub);
  EXPECT_EQ(r.repo, "Qwen/Qwen2.5-Coder-7B-Instruct-GGUF");
  EXPECT_EQ(r.quant, "Q4_K_M");
  EXPECT_EQ(r.str(), "hf.co/Qwen/Qwen2.5-Coder-7B-Instruct-GGUF:Q4_K_M");
  EXPECT_EQ(ok("huggingface.co/Qwen/R:q8_0").str(), "hf.co/Qwen/R:q8_0");
  EXPECT_EQ(ok("https://huggingface.co/Qwen/R").str(), "hf.co/Qwen/R");
  EXPECT_EQ(ok("HF.CO/bartowski/x-GGUF").quant, "");
  EXPECT_EQ(ok("hf.co/o/r:latest").quant, "") << "Ollama's default tag is the default";
  auto f = ok("hf.co/unsloth/Qwen3-GGUF/Q4_K_M/Qwen3-Q4_K_M-00001-of-00002.gguf");
  EXPECT_EQ(f.kind, RefKind::kHubFile);
  EXPECT_EQ(f.repo, "unsloth/Qwen3-GGUF");
  EXPECT_EQ(f.file, "Q4_K_M/Qwen3-Q4_K_M-00001-of-00002.gguf");
  EXPECT_EQ(ok("https://huggingface.co/o/r/blob/main/m-Q8_0.gguf").file, "m-Q8_0.gguf");
  EXPECT_EQ(ok("https://huggingface.co/o/r/resolve/main/m.gguf").file, "m.gguf");
  auto bare = ok("lmstudio-community/Qwen-GGUF/qwen-Q4_K_M.gguf");
  EXPECT_EQ(bare.kind, RefKind::kHubFile);
  EXPECT_EQ(bare.str(), "hf.co/lmstudio-community/Qwen-GGUF/qwen-Q4_K_M.gguf");
}

TEST(ModelRef, OllamaForms) {
  auto r = ok("ollama:qwen2.5-coder:7b");
  EXPECT_EQ(r.kind, RefKind::kOllama);
  EXPECT_EQ(r.ollama_name, "qwen2.5-coder");
  EXPECT_EQ(r.ollama_tag, "7b");
  EXPECT_EQ(ok("ollama:Llama3").str(), "ollama:llama3:latest");
  auto h = ok("ollama:hf.co/bartowski/Qwen-GGUF:Q4_K_M");
  EXPECT_EQ(h.ollama_name, "hf.co/bartowski/qwen-gguf");
  EXPECT_EQ(h.ollama_tag, "Q4_K_M");
}

TEST(ModelRef, PathsStayPaths) {
  for (const char* p : {"model.gguf", "/abs/m.gguf", "./a/b/c.gguf", "~/models/a/b.gguf", "../x/y/z.gguf",
                        "models/qwen.gguf", "a/b/c.bin"}) {
    auto r = ok(p);
    EXPECT_EQ(r.kind, RefKind::kPath) << p;
    EXPECT_EQ(r.path, p);
  }
}

TEST(ModelRef, HostileReferencesAreRefusedWithThePart) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"hf.co/owner", "expected hf.co/OWNER/REPO"},
           {"hf.co/../etc:Q4", "not a valid owner"},
           {"hf.co/o/..", "not a valid repository"},
           {"hf.co/o/r/../../../etc/passwd.gguf", "not a file path inside a repository"},
           {"hf.co/o/r//x.gguf", "not a file path"},
           {"hf.co/o/r/notes.txt", "not a .gguf file"},
           {"hf.co/o/r:Q4 K", "characters a tag cannot have"},
           {"hf.co/-o/r", "not a valid owner"},
           {"hf.co/o/r;rm -rf:Q4", "not a valid repository"},
           {"ollama:", "expected ollama:NAME"},
           {"ollama:a/../b:7b", "expected ollama:NAME"},
           {"ollama:x:t/../..", "characters a tag cannot have"},
       }) {
    auto r = parse_model_ref(c.text);
    ASSERT_FALSE(r.has_value()) << c.text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << c.text << ": " << r.error().message;
  }
}

TEST(QuantLabel, FromFileNames) {
  EXPECT_EQ(quant_label("qwen2.5-coder-7b-instruct-q4_k_m.gguf"), "q4_k_m");
  EXPECT_EQ(quant_label("Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf"), "Q4_K_M");
  EXPECT_EQ(quant_label("codellama-7b.Q5_K_S.gguf"), "Q5_K_S");
  EXPECT_EQ(quant_label("sub/dir/Model-IQ4_XS.gguf"), "IQ4_XS");
  EXPECT_EQ(quant_label("Qwen3-30B-A3B-UD-Q4_K_XL-00001-of-00002.gguf"), "UD-Q4_K_XL");
  EXPECT_EQ(quant_label("model-Q8_0-00002-of-00003.gguf"), "Q8_0");
  EXPECT_EQ(quant_label("ggml-model-f16.gguf"), "f16");
  EXPECT_EQ(quant_label("gemma-3-1b-it-BF16.gguf"), "BF16");
  EXPECT_EQ(quant_label("Llama-3.2-1B-Instruct-Q4_K_M-imat.gguf"), "Q4_K_M");
  EXPECT_EQ(quant_label("gpt-oss-20b-MXFP4.gguf"), "MXFP4");
  EXPECT_EQ(quant_label("model.gguf"), "");
  EXPECT_EQ(quant_label("Qwen2.5-Coder-7B.gguf"), "") << "a version or size is not a quant";
  EXPECT_EQ(quant_label("model-Q4_K_M.bin"), "");
  EXPECT_GT(quant_bits("q4_k_m"), 4.0);
  EXPECT_LT(quant_bits("IQ4_XS"), quant_bits("Q4_K_S"));
  EXPECT_EQ(quant_bits("UD-Q4_K_XL"), quant_bits("Q4_K_XL"));
  EXPECT_EQ(quant_bits("Q9_Z"), 0.0);
}

std::vector<std::string> names(std::initializer_list<const char*> q) {
  std::vector<std::string> out;
  for (const char* s : q) out.push_back(fmt::format("Model-{}.gguf", s));
  return out;
}

std::string chosen(const std::vector<std::string>& files, std::string_view ref = "hf.co/o/r") {
  const auto groups = store::group_gguf_files(files);
  auto c = store::choose_group(groups, *parse_model_ref(ref), "hf.co/o/r");
  return c ? c->group->files.front() : "error: " + c.error().message;
}

TEST(ChooseModel, DefaultIsQ4KMElseSmallestOfFourBitsElseLargest) {
  EXPECT_EQ(chosen(names({"Q2_K", "Q4_K_M", "Q8_0", "IQ4_XS"})), "Model-Q4_K_M.gguf");
  EXPECT_EQ(chosen(names({"Q3_K_L", "Q5_K_M", "IQ4_XS", "Q8_0"})), "Model-IQ4_XS.gguf")
      << "Q3_K_L has more than 4 bits per weight but is a 3-bit quantization";
  EXPECT_EQ(chosen(names({"Q8_0", "Q6_K", "F16"})), "Model-Q6_K.gguf");
  EXPECT_EQ(chosen(names({"Q2_K", "Q3_K_M", "IQ3_M"})), "Model-Q3_K_M.gguf") << "the largest codey runs";
  EXPECT_EQ(chosen({"only.gguf"}), "only.gguf");
  EXPECT_EQ(chosen({"a.gguf", "b.gguf"}).substr(0, 6), "error:");
  EXPECT_EQ(chosen(names({"q4_k_m", "Q8_0"}), "hf.co/o/r:Q4_K_M"), "Model-q4_k_m.gguf") << "case-insensitive";
  EXPECT_EQ(chosen({"mmproj-model-f16.gguf", "Model-Q8_0.gguf"}), "Model-Q8_0.gguf") << "projectors are not models";
  EXPECT_EQ(chosen({"Model-UD-Q4_K_XL.gguf", "Model-Q8_0.gguf"}, "hf.co/o/r:Q4_K_XL"), "Model-UD-Q4_K_XL.gguf");
}

TEST(ChooseModel, MissingQuantListsWhatThereIs) {
  const std::string e = chosen(names({"Q8_0", "Q2_K", "Q4_K_S"}), "hf.co/o/r:Q5_K_M");
  EXPECT_NE(e.find("hf.co/o/r has no Q5_K_M quantization; it has: Q2_K, Q4_K_S, Q8_0"), std::string::npos) << e;
  const auto groups = store::group_gguf_files({});
  auto none = store::choose_group(groups, *parse_model_ref("hf.co/o/r"), "hf.co/o/r");
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message.find("no GGUF model files"), std::string::npos);
}

TEST(ChooseModel, SplitModelsAreOneModelAndIncompleteSetsSaySo) {
  const std::vector<std::string> files = {"Q4_K_M/M-Q4_K_M-00002-of-00002.gguf", "Q4_K_M/M-Q4_K_M-00001-of-00002.gguf",
                                          "M-Q8_0-00001-of-00003.gguf", "M-Q8_0-00003-of-00003.gguf", "README.md"};
  const auto groups = store::group_gguf_files(files);
  ASSERT_EQ(groups.size(), 2u);
  auto c = store::choose_group(groups, *parse_model_ref("hf.co/o/r"), "hf.co/o/r");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->group->files, (std::vector<std::string>{"Q4_K_M/M-Q4_K_M-00001-of-00002.gguf",
                                                       "Q4_K_M/M-Q4_K_M-00002-of-00002.gguf"}));
  EXPECT_TRUE(c->group->complete());
  auto q8 = store::choose_group(groups, *parse_model_ref("hf.co/o/r:q8_0"), "hf.co/o/r");
  ASSERT_TRUE(q8.has_value());
  EXPECT_EQ(q8->group->missing, (std::vector<std::string>{"M-Q8_0-00002-of-00003.gguf"}));
  auto by_part = store::choose_group(groups, *parse_model_ref("hf.co/o/r/Q4_K_M/M-Q4_K_M-00002-of-00002.gguf"), "hf.co/o/r");
  ASSERT_TRUE(by_part.has_value());
  EXPECT_EQ(by_part->group->files.size(), 2u) << "a part names its whole model";
}

}  // namespace
}  // namespace codey
