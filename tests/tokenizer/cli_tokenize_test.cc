// `codey tokenize`: ids on one line, pieces per line, BOS handling, files,
// and errors - run as the real binary.
#include <gtest/gtest.h>

#include "codey/gguf.h"
#include "codey/tokenizer.h"
#include "testing/testing.h"

namespace codey {
namespace {

const std::string kVocab = testing::testdata("vocab/ggml-vocab-deepseek-coder.gguf");

std::string ids_line(const std::vector<TokenId>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += fmt::format("{}{}", i ? " " : "", ids[i]);
  return s + "\n";
}

TEST(CliTokenize, IdsMatchTheReferenceFile) {
  // "Hello world" is case 12 of the conformance file: " 17535 1835".
  auto r = testing::run_codey({"tokenize", "--model", kVocab, "--no-bos", "--text", "Hello world"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "17535 1835\n");
}

TEST(CliTokenize, BosByDefaultAsTheModelAsks) {
  auto r = testing::run_codey({"tokenize", "--model", kVocab, "--text", "Hello world"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "32013 17535 1835\n");
}

TEST(CliTokenize, FileAndShowPieces) {
  const std::string path = testing::temp_dir() + "/in.py";
  const std::string text = "def f(x):\n\treturn x\xC3\xBC\n";
  testing::write_file_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
  auto ids = testing::run_codey({"tokenize", "-m", kVocab, "--no-bos", "--file", path});
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  auto f = GgufFile::open(kVocab);
  ASSERT_TRUE(f.has_value());
  auto tok = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(tok.has_value());
  const auto expect = tok->tokenize(text, false);
  EXPECT_EQ(ids.out, ids_line(expect));

  auto pieces = testing::run_codey({"tokenize", "-m", kVocab, "--no-bos", "--file", path, "--show-pieces"});
  ASSERT_EQ(pieces.exit_code, 0) << pieces.err;
  std::string want;
  for (TokenId id : expect) {
    std::string p(tok->token_to_piece(id, true));
    std::string esc;
    for (char c : p) esc += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : std::string(1, c);
    want += fmt::format("{} {}\n", id, esc);
  }
  EXPECT_EQ(pieces.out, want);
  EXPECT_NE(pieces.out.find(" \\n\n"), std::string::npos);  // newlines are escaped, one token per line
}

TEST(CliTokenize, ParseSpecialOnRequest) {
  const std::string text = "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>";
  auto plain = testing::run_codey({"tokenize", "-m", kVocab, "--no-bos", "--text", text});
  auto parsed = testing::run_codey({"tokenize", "-m", kVocab, "--no-bos", "--text", text, "--parse-special"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err;
  EXPECT_EQ(parsed.out, "32015\n");
  EXPECT_NE(plain.out, parsed.out);
}

TEST(CliTokenize, Errors) {
  auto missing = testing::run_codey({"tokenize", "--model", "/nonexistent.gguf", "--text", "x"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("/nonexistent.gguf"), std::string::npos) << missing.err;

  auto no_text = testing::run_codey({"tokenize", "--model", kVocab});
  EXPECT_NE(no_text.exit_code, 0);

  auto both = testing::run_codey({"tokenize", "--model", kVocab, "--text", "x", "--file", "/etc/hostname"});
  EXPECT_NE(both.exit_code, 0);

  auto no_file = testing::run_codey({"tokenize", "--model", kVocab, "--file", "/nonexistent.txt"});
  EXPECT_NE(no_file.exit_code, 0);
  EXPECT_NE(no_file.err.find("/nonexistent.txt"), std::string::npos) << no_file.err;
}

}  // namespace
}  // namespace codey
