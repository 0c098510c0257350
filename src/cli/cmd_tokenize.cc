// `codey tokenize --model FILE [--no-bos] (--text T | --file F) [--show-pieces]
// [--parse-special]`: the token ids of a text, as the model's tokenizer sees it.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "codey/gguf.h"
#include "codey/tokenizer.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  bool no_bos = false;
  bool show_pieces = false;
  bool parse_special = false;
};

// One line per piece: control characters, backslashes and bytes that are
// not valid UTF-8 on their own are escaped.
std::string escape_piece(std::string_view piece) {
  std::string out;
  size_t i = 0;
  while (i < piece.size()) {
    const uint8_t c = uint8_t(piece[i]);
    if (c < 0x80) {
      switch (c) {
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
          if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
          else out += char(c);
      }
      ++i;
      continue;
    }
    // A complete UTF-8 sequence is printed as is, anything else byte by byte.
    size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    bool ok = len > 0 && i + len <= piece.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (uint8_t(piece[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(piece.substr(i, len));
      i += len;
    } else {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    }
  }
  return out;
}

int run_tokenize(const TokenizeOptions& o) {
  std::string text = o.text;
  if (!o.file.empty()) {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) return fail(fmt::format("cannot read --file {}", o.file));
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  auto path = resolve_model_path(o.model);
  if (!path) return fail(path.error().message);
  auto file = GgufFile::open(*path);
  if (!file) return fail(file.error().message);
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok) return fail(tok.error().message);

  const std::vector<TokenId> ids = tok->tokenize(text, /*add_special=*/!o.no_bos, o.parse_special);
  std::string out;
  if (o.show_pieces) {
    for (TokenId id : ids) out += fmt::format("{} {}\n", id, escape_piece(tok->token_to_piece(id, true)));
  } else {
    for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? " " : "", ids[i]);
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* cmd = root.add_subcommand("tokenize", "Print the token ids of a text under a model's tokenizer");
  cmd->add_option("--model,-m", o->model, "GGUF file (a vocabulary-only file is enough)")->required();
  auto* text = cmd->add_option("--text,-t", o->text, "The text");
  auto* file = cmd->add_option("--file,-f", o->file, "Read the text from a file (bytes as they are)");
  text->excludes(file);
  file->excludes(text);
  cmd->add_flag("--no-bos", o->no_bos, "Add no special tokens (BOS/EOS), whatever the model asks");
  cmd->add_flag("--show-pieces", o->show_pieces, "Print 'id piece' per line (pieces escaped: \\n, \\t, \\xNN)");
  cmd->add_flag("--parse-special", o->parse_special,
                "Read control tokens written in the text (e.g. <|im_start|>) as single tokens");
  cmd->callback([cmd] {
    if (cmd->count("--text") + cmd->count("--file") != 1)
      throw CLI::ValidationError("give the text with exactly one of --text or --file");
  });
  return [o] { return run_tokenize(*o); };
}

CODEY_REGISTER_COMMAND(tokenize, setup);

}  // namespace
}  // namespace codey::cli
