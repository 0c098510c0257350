// Tests of src/assistant/workspace.cc and check.cc: writes stay inside the
// workspace (absolute, "..", symlink escapes refused), overwrites need force
// or a yes and keep backups, dry runs write nothing; checkers pass and fail.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "codey/assistant.h"
#include "testing/testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) { return testing::read_file_text(p.string()); }
void put(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

struct WorkspaceTest : ::testing::Test {
  void SetUp() override {
    base = testing::temp_dir();
    root = fs::path(base) / "ws";
    fs::create_directories(root);
    auto w = Workspace::open(root.string());
    ASSERT_TRUE(w.has_value());
    ws.emplace(std::move(*w));
  }
  std::string base;
  fs::path root;
  std::optional<Workspace> ws;
};

TEST_F(WorkspaceTest, CreatesFilesAndDirectories) {
  auto r = ws->write("calculator.py", "x = 1\n", {});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->action, WriteAction::kCreated);
  EXPECT_EQ(r->path, "calculator.py");
  EXPECT_EQ(slurp(root / "calculator.py"), "x = 1\n");
  r = ws->write("./pkg/sub/mod.py", "y = 2\n", {});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->action, WriteAction::kCreated);
  EXPECT_EQ(r->path, "pkg/sub/mod.py");
  EXPECT_EQ(slurp(root / "pkg/sub/mod.py"), "y = 2\n");
  // No temporary files are left behind.
  for (const auto& e : fs::recursive_directory_iterator(root))
    EXPECT_EQ(e.path().filename().string().find("codey-tmp"), std::string::npos) << e.path();
}

// #16 finding 9: a model's file under .git/ (a hook, the config) would run
// at the user's next git command.
TEST_F(WorkspaceTest, RefusesWritesUnderGit) {
  fs::create_directories(root / ".git/hooks");
  fs::create_directories(root / "sub/.git");
  for (const char* bad : {".git/hooks/pre-commit", ".git/config", "./.git/x", "sub/.git/hooks/post-checkout",
                          ".GIT/hooks/pre-commit", ".Git/new", "a/./.git/b"}) {
    auto r = ws->write(bad, "#!/bin/sh\ntouch /tmp/pwned\n", {.force = true});
    ASSERT_TRUE(r.has_value()) << bad;
    EXPECT_EQ(r->action, WriteAction::kRefused) << bad;
    EXPECT_NE(r->message.find(".git"), std::string::npos) << r->message;
  }
  EXPECT_FALSE(fs::exists(root / ".git/hooks/pre-commit"));
  EXPECT_FALSE(fs::exists(root / ".git/config"));
  // Through a symlink that leads into .git.
  fs::create_directory_symlink(root / ".git/hooks", root / "hooks");
  auto r = ws->write("hooks/pre-push", "x\n", {.force = true});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->action, WriteAction::kRefused) << r->message;
  EXPECT_FALSE(fs::exists(root / ".git/hooks/pre-push"));
  // Names that only look alike are files like any other.
  for (const char* ok : {".gitignore", "git/x.py", ".github/workflows/ci.yml", "a.git"}) {
    auto w = ws->write(ok, "x\n", {});
    ASSERT_TRUE(w.has_value()) << ok;
    EXPECT_EQ(w->action, WriteAction::kCreated) << ok << ": " << w->message;
  }
}

TEST_F(WorkspaceTest, RefusesEscapes) {
  for (const char* bad : {"/etc/passwd", "/tmp/x.py", "../x.py", "a/../../x.py", "a/../b.py", "~/x.py", "", "."}) {
    auto r = ws->write(bad, "boom\n", {.force = true});
    ASSERT_TRUE(r.has_value()) << bad;
    EXPECT_EQ(r->action, WriteAction::kRefused) << bad;
    EXPECT_FALSE(r->message.empty());
  }
  EXPECT_FALSE(fs::exists(fs::path(base) / "x.py"));
  // A symlinked directory that leads outside.
  fs::create_directories(fs::path(base) / "outside");
  fs::create_directory_symlink(fs::path(base) / "outside", root / "link");
  auto r = ws->write("link/evil.py", "boom\n", {.force = true});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->action, WriteAction::kRefused);
  EXPECT_NE(r->message.find("outside the workspace"), std::string::npos) << r->message;
  EXPECT_FALSE(fs::exists(fs::path(base) / "outside/evil.py"));
  // A symlink as the file itself (even to a file inside) is not written through.
  put(root / "real.py", "real\n");
  fs::create_symlink(root / "real.py", root / "alias.py");
  r = ws->write("alias.py", "new\n", {.force = true});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->action, WriteAction::kRefused);
  EXPECT_EQ(slurp(root / "real.py"), "real\n");
  // A symlink to a file outside, likewise.
  put(fs::path(base) / "secret.txt", "secret\n");
  fs::create_symlink(fs::path(base) / "secret.txt", root / "secret.py");
  r = ws->write("secret.py", "new\n", {.force = true});
  EXPECT_EQ(r->action, WriteAction::kRefused);
  EXPECT_EQ(slurp(fs::path(base) / "secret.txt"), "secret\n");
  // A symlinked directory inside the workspace is fine.
  fs::create_directories(root / "src");
  fs::create_directory_symlink(root / "src", root / "srclink");
  r = ws->write("srclink/ok.py", "ok\n", {});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->action, WriteAction::kCreated) << r->message;
  EXPECT_EQ(slurp(root / "src/ok.py"), "ok\n");
  // A file where a directory is needed.
  r = ws->write("real.py/x.py", "x\n", {});
  EXPECT_EQ(r->action, WriteAction::kRefused);
  // Resolve says why.
  auto p = ws->resolve("../x");
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message.find(".."), std::string::npos);
}

TEST_F(WorkspaceTest, OverwriteNeedsForceOrYesAndKeepsBackups) {
  put(root / "calc.py", "v1\n");
  ::chmod((root / "calc.py").c_str(), 0750);
  auto r = ws->write("calc.py", "v2\n", {});
  EXPECT_EQ(r->action, WriteAction::kRefused);
  EXPECT_NE(r->message.find("--force"), std::string::npos);
  EXPECT_EQ(slurp(root / "calc.py"), "v1\n");
  // Asked, and the answer is no.
  std::vector<std::string> asked;
  r = ws->write("calc.py", "v2\n", {.confirm_overwrite = [&](const std::string& p) { asked.push_back(p); return false; }});
  EXPECT_EQ(r->action, WriteAction::kRefused);
  EXPECT_EQ(asked, std::vector<std::string>{"calc.py"});
  // Yes.
  r = ws->write("calc.py", "v2\n", {.confirm_overwrite = [](const std::string&) { return true; }});
  EXPECT_EQ(r->action, WriteAction::kOverwritten);
  EXPECT_EQ(r->backup, "calc.py.bak");
  EXPECT_EQ(slurp(root / "calc.py"), "v2\n");
  EXPECT_EQ(slurp(root / "calc.py.bak"), "v1\n");
  struct stat st {};
  ASSERT_EQ(::stat((root / "calc.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);  // the file keeps its mode
  // Force; the first backup is kept, the next one gets a new name.
  r = ws->write("calc.py", "v3\n", {.force = true});
  EXPECT_EQ(r->action, WriteAction::kOverwritten);
  EXPECT_EQ(r->backup, "calc.py.bak.1");
  EXPECT_EQ(slurp(root / "calc.py.bak"), "v1\n");
  EXPECT_EQ(slurp(root / "calc.py.bak.1"), "v2\n");
  // Same content: nothing to do, no backup.
  r = ws->write("calc.py", "v3\n", {.force = true});
  EXPECT_EQ(r->action, WriteAction::kUnchanged);
  EXPECT_FALSE(fs::exists(root / "calc.py.bak.2"));
}

TEST_F(WorkspaceTest, DryRunWritesNothing) {
  auto r = ws->write("new.py", "x\n", {.dry_run = true});
  EXPECT_EQ(r->action, WriteAction::kWouldCreate);
  EXPECT_FALSE(fs::exists(root / "new.py"));
  put(root / "old.py", "old\n");
  r = ws->write("old.py", "x\n", {.dry_run = true});
  EXPECT_EQ(r->action, WriteAction::kWouldOverwrite);
  EXPECT_NE(r->message.find("--force"), std::string::npos);
  r = ws->write("old.py", "x\n", {.force = true, .dry_run = true});
  EXPECT_EQ(r->action, WriteAction::kWouldOverwrite);
  EXPECT_TRUE(r->message.empty());
  EXPECT_EQ(slurp(root / "old.py"), "old\n");
  EXPECT_FALSE(fs::exists(root / "old.py.bak"));
  r = ws->write("d/new.py", "x\n", {.dry_run = true});
  EXPECT_EQ(r->action, WriteAction::kWouldCreate);
  EXPECT_FALSE(fs::exists(root / "d"));
}

TEST_F(WorkspaceTest, ReadsExistingFiles) {
  put(root / "a.py", "hello\n");
  EXPECT_EQ(ws->read("a.py"), std::optional<std::string>("hello\n"));
  EXPECT_EQ(ws->read("missing.py"), std::nullopt);
  EXPECT_EQ(ws->read("../a.py"), std::nullopt);
  EXPECT_EQ(ws->read("a.py", 3), std::nullopt);  // too big
}

TEST(Workspace, OpenErrors) {
  EXPECT_FALSE(Workspace::open("/nonexistent/dir/for/codey").has_value());
  const auto f = testing::temp_dir() + "/file";
  put(f, "x");
  EXPECT_FALSE(Workspace::open(f).has_value());
}

TEST(Check, Python) {
  if (find_program("python3").empty()) GTEST_SKIP() << "python3 not on PATH";
  auto ok = check_code("calc.py", "def add(a, b):\n    return a + b\n");
  EXPECT_EQ(ok.status, CheckStatus::kPassed) << ok.output;
  EXPECT_EQ(ok.checker, "python3 -I compile");
  auto bad = check_code("pkg/calc.py", "def add(a, b)\n    return a + b\n");
  EXPECT_EQ(bad.status, CheckStatus::kFailed);
  EXPECT_NE(bad.output.find("SyntaxError"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("pkg/calc.py"), std::string::npos) << bad.output;  // the user's name
  EXPECT_EQ(bad.output.find("/tmp/codey-check"), std::string::npos) << bad.output;
}

// #16 finding 2: `python3 -m py_compile FILE` ran beside the file with the
// folder first on sys.path, so a generated token.py, traceback.py ... was
// imported by py_compile itself and its top-level code ran. The check only
// compiles: the marker file is never written, whatever the file is called.
TEST(Check, PythonNeverRunsTheCode) {
  if (find_program("python3").empty()) GTEST_SKIP() << "python3 not on PATH";
  const fs::path marker = fs::path(testing::temp_dir()) / "ran";
  const std::string code = "import pathlib\npathlib.Path(r'" + marker.string() + "').write_text('ran')\n";
  for (const char* name : {"token.py", "tokenize.py", "traceback.py", "linecache.py", "py_compile.py", "textwrap.py",
                           "argparse.py", "importlib.py", "sitecustomize.py", "usercustomize.py", "site.py", "os.py",
                           "-m.py", "pkg/io.py"}) {
    auto r = check_code(name, code);
    EXPECT_EQ(r.status, CheckStatus::kPassed) << name << ": " << r.output;
    EXPECT_FALSE(fs::exists(marker)) << name << " was executed";
    fs::remove(marker);
  }
  // A syntax error is still reported in py_compile's words, with the user's name.
  auto bad = check_code("token.py", code + "def f(:\n");
  EXPECT_EQ(bad.status, CheckStatus::kFailed);
  EXPECT_NE(bad.output.find("token.py\", line 3"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("SyntaxError"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(marker));
  auto nul = check_code("a.py", std::string("x = 1\0\n", 7));
  EXPECT_EQ(nul.status, CheckStatus::kFailed) << nul.output;
}

// #16 finding 9: a file name starting with '-' is a file, never an option.
TEST(Check, FileNamesAreNeverOptions) {
  if (!find_program("bash").empty()) {
    auto r = check_code("-x.sh", "echo hi\n");
    EXPECT_EQ(r.status, CheckStatus::kPassed) << r.output;
    EXPECT_EQ(check_code("--version.sh", "if then fi\n").status, CheckStatus::kFailed);
  }
  if (!find_program("node").empty()) {
    auto r = check_code("--help.js", "function f(x) { return x + 1; }\n");
    EXPECT_EQ(r.status, CheckStatus::kPassed) << r.output;
    EXPECT_EQ(check_code("-p.js", "function f(x) { return x + ; }\n").status, CheckStatus::kFailed);
  }
  if (!find_program("cc").empty()) {
    auto r = check_code("-v.c", "int x;\n");
    EXPECT_EQ(r.status, CheckStatus::kPassed) << r.output;
    EXPECT_EQ(check_code("--help.c", "int x\n").status, CheckStatus::kFailed);
  }
}

// #16 finding 9: the C and C++ checker never reads a file outside the copy,
// the include directories and the compiler's headers, however it is named
// (absolute, "..", a macro, through a project header); the outside file's
// lines never reach the output.
TEST(Check, CIncludesOutsideAreRefused) {
  if (find_program("cc").empty() || find_program("c++").empty()) GTEST_SKIP() << "no C compiler";
  const fs::path outside = fs::path(testing::temp_dir()) / "secret.h";
  put(outside, "SECRET_TOKEN_codey = 42 oops\n");
  const fs::path project = fs::path(testing::temp_dir());
  put(project / "ok.h", "int twice(int);\n");
  put(project / "leaky.h", "#include \"" + outside.string() + "\"\n");
  std::string dotdot = "../../../../../../../../../..";
  dotdot += outside.string();
  const std::vector<fs::path> dirs{project};
  for (const std::string& code :
       {"#include \"" + outside.string() + "\"\n", "#include <" + outside.string() + ">\n",
        "#include \"" + dotdot + "\"\n", "#define F \"" + outside.string() + "\"\n#include F\n",
        std::string("#include \"leaky.h\"\n"), std::string("#include \"/etc/os-release\"\n")}) {
    for (const char* name : {"a.c", "a.cpp"}) {
      auto r = check_code(name, code, dirs);
      EXPECT_EQ(r.status, CheckStatus::kFailed) << name << ": " << code;
      EXPECT_NE(r.output.find("outside the project"), std::string::npos) << r.output;
      EXPECT_EQ(r.output.find("SECRET_TOKEN"), std::string::npos) << r.output;
      EXPECT_EQ(r.output.find("PRETTY_NAME"), std::string::npos) << r.output;
    }
  }
  // System and project headers are fine.
  auto ok = check_code("a.c", "#include <stdio.h>\n#include \"ok.h\"\nint main(void) { return twice(1); }\n", dirs);
  EXPECT_EQ(ok.status, CheckStatus::kPassed) << ok.output;
  EXPECT_EQ(check_code("a.cpp", "#include <vector>\n#include <string>\nstd::vector<std::string> v;\n").status,
            CheckStatus::kPassed);
}

TEST(Check, CAndCpp) {
  if (find_program("cc").empty() || find_program("c++").empty()) GTEST_SKIP() << "no C compiler";
  EXPECT_EQ(check_code("a.c", "int twice(int x) { return 2 * x; }\n").status, CheckStatus::kPassed);
  auto bad = check_code("a.c", "int twice(int x) { return 2 * x }\n");
  EXPECT_EQ(bad.status, CheckStatus::kFailed);
  EXPECT_NE(bad.output.find("a.c:1"), std::string::npos) << bad.output;
  EXPECT_EQ(check_code("a.cpp", "#include <vector>\nstd::vector<int> v{1, 2};\n").status, CheckStatus::kPassed);
  EXPECT_EQ(check_code("a.cpp", "std::vector<int> v;\n").status, CheckStatus::kFailed);
  // Headers from the workspace are found.
  const auto dir = testing::temp_dir();
  put(fs::path(dir) / "util.h", "int twice(int);\n");
  const std::vector<fs::path> dirs{"/nonexistent-codey", dir};
  EXPECT_EQ(check_code("main.c", "#include \"util.h\"\nint main(void) { return twice(1); }\n", dirs).status,
            CheckStatus::kPassed);
  EXPECT_EQ(check_code("main.c", "#include \"util.h\"\nint main(void) { return twice(1); }\n").status,
            CheckStatus::kFailed);
}

TEST(Check, JavaScriptShellJsonAndUnknown) {
  if (!find_program("node").empty()) {
    EXPECT_EQ(check_code("a.js", "function f(x) { return x + 1; }\n").status, CheckStatus::kPassed);
    EXPECT_EQ(check_code("a.js", "function f(x) { return x + ; }\n").status, CheckStatus::kFailed);
  }
  if (!find_program("bash").empty()) {
    EXPECT_EQ(check_code("a.sh", "echo hi\n").status, CheckStatus::kPassed);
    EXPECT_EQ(check_code("a.sh", "if then fi\n").status, CheckStatus::kFailed);
  }
  EXPECT_EQ(check_code("a.json", "{\"a\": [1, 2]}").status, CheckStatus::kPassed);
  EXPECT_EQ(check_code("a.json", "{\"a\": [1, 2}").status, CheckStatus::kFailed);
  auto none = check_code("a.rs", "fn main() {}\n");
  EXPECT_EQ(none.status, CheckStatus::kNoChecker);
  EXPECT_NE(none.output.find("rust"), std::string::npos);
}

TEST(Check, MissingCheckerIsSaid) {
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  ::setenv("PATH", "/nonexistent-codey", 1);
  auto r = check_code("a.py", "x = 1\n");
  ::setenv("PATH", saved.c_str(), 1);
  EXPECT_EQ(r.status, CheckStatus::kNoChecker);
  EXPECT_NE(r.output.find("python3 not found"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace codey
