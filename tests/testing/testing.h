// Shared helpers for codey's tests: where the fixtures are, temp dirs,
// running the codey binary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace codey::testing {

// ../shared/testdata (absolute).
std::string testdata_dir();
std::string testdata(const std::string& relative);
// A fresh temporary directory, removed at process exit.
std::string temp_dir();
std::vector<uint8_t> read_file_bytes(const std::string& path);
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);
std::string read_file_text(const std::string& path);

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs the built codey binary with `args` (shell-quoted by the caller is not
// needed: each arg is quoted here). stdin from /dev/null.
CommandResult run_codey(const std::vector<std::string>& args);
// `s` in single quotes for /bin/sh.
std::string shell_quote(const std::string& s);
// Runs a shell command; stdout and stderr together in `out` (`err` empty).
CommandResult run_shell(const std::string& cmd);

}  // namespace codey::testing
