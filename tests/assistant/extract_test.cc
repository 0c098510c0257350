// Tests of src/assistant/extract.cc: file names in tasks, fenced blocks and
// their target files, plain-code answers.
#include <gtest/gtest.h>

#include "codey/assistant.h"

namespace codey {
namespace {

TEST(FilesNamedIn, Tasks) {
  EXPECT_EQ(files_named_in("Create functions for add, subtract, multiply, and divide in calculator.py."),
            std::vector<std::string>{"calculator.py"});
  EXPECT_EQ(files_named_in("Fix the bug in `src/util.c` and update util.h, then src/util.c again"),
            (std::vector<std::string>{"src/util.c", "util.h"}));
  EXPECT_EQ(files_named_in("Explain Python 3.12 features, e.g. version 2.5 vs 1.0"), std::vector<std::string>{});
  EXPECT_EQ(files_named_in("see https://example.com/a.py and ./main.js"), std::vector<std::string>{"main.js"});
  EXPECT_EQ(files_named_in("write a Makefile and CMakeLists.txt"), (std::vector<std::string>{"Makefile", "CMakeLists.txt"}));
  EXPECT_EQ(files_named_in("save to '../secret.py' or /etc/x.sh"), (std::vector<std::string>{"../secret.py", "/etc/x.sh"}));
}

TEST(Languages, ByFileAndAlias) {
  EXPECT_EQ(language_for_file("a/b/calc.py"), "python");
  EXPECT_EQ(language_for_file("x.hpp"), "cpp");
  EXPECT_EQ(language_for_file("x.mjs"), "javascript");
  EXPECT_EQ(language_for_file("Makefile"), "make");
  EXPECT_EQ(language_for_file("README"), "");
  EXPECT_EQ(normalize_language("Py"), "python");
  EXPECT_EQ(normalize_language("c++"), "cpp");
  EXPECT_EQ(normalize_language("JS"), "javascript");
  EXPECT_EQ(normalize_language("rust"), "rust");
}

TEST(ExtractCode, TitleInTheFence) {
  const std::string answer =
      "Here is the calculator:\n\n```python title=calculator.py\ndef add(a, b):\n    return a + b\n```\n\nDone.";
  auto b = extract_code(answer);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].language, "python");
  EXPECT_EQ(b[0].filename, "calculator.py");
  EXPECT_EQ(b[0].filename_source, "fence");
  EXPECT_EQ(b[0].code, "def add(a, b):\n    return a + b\n");
}

TEST(ExtractCode, InfoStringVariants) {
  struct Case {
    std::string info, lang, file;
  } cases[] = {
      {"python:calc.py", "python", "calc.py"},
      {"calc.py", "python", "calc.py"},
      {"c file=src/main.c", "c", "src/main.c"},
      {"js filename=\"app.js\"", "javascript", "app.js"},
      {"{.python}", "python", ""},
      {"cpp", "cpp", ""},
  };
  for (const auto& c : cases) {
    auto b = extract_code("```" + c.info + "\nx = 1\n```\n");
    ASSERT_EQ(b.size(), 1u) << c.info;
    EXPECT_EQ(b[0].language, c.lang) << c.info;
    EXPECT_EQ(b[0].filename, c.file) << c.info;
  }
}

TEST(ExtractCode, FirstLineMarkers) {
  auto b = extract_code("```python\n# file: calc.py\nimport math\n```\n");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].filename, "calc.py");
  EXPECT_EQ(b[0].filename_source, "first line");
  EXPECT_EQ(b[0].code, "import math\n");  // the marker is dropped
  b = extract_code("```c\n// util.c\nint x;\n```\n");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].filename, "util.c");
  EXPECT_EQ(b[0].code, "// util.c\nint x;\n");  // a plain comment stays
  b = extract_code("```python\n#!/usr/bin/env python3\n# A calculator\nx = 1\n```\n");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].filename, "");
  b = extract_code("```c\n#include <stdio.h>\nint main(void) { return 0; }\n```\n");
  EXPECT_EQ(b[0].filename, "");
}

TEST(ExtractCode, NameOnTheLineBefore) {
  const std::string answer =
      "**calculator.py**\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
      "Run it with `calculator.py`:\n```bash\npython3 calculator.py\n```\n";
  auto b = extract_code(answer);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].filename, "calculator.py");
  EXPECT_EQ(b[0].filename_source, "line before");
  EXPECT_EQ(b[1].filename, "");  // a bash block is not the .py file
}

TEST(ExtractCode, TaskFileGoesToTheLongestMatchingBlock) {
  const std::string answer =
      "```python\ndef add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n```\n"
      "Usage:\n```python\nprint(add(1, 2))\n```\n```bash\npython3 x.py\n```\n";
  std::vector<std::string> task_files{"calculator.py"};
  auto b = extract_code(answer, task_files);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].filename, "calculator.py");
  EXPECT_EQ(b[0].filename_source, "task");
  EXPECT_EQ(b[1].filename, "");
  EXPECT_EQ(b[2].filename, "");
  // A block already naming the file keeps it; the task adds nothing.
  b = extract_code("```python title=calculator.py\nx = 1\n```\n```python\ny = 2\nz = 3\n```\n", task_files);
  EXPECT_EQ(b[0].filename, "calculator.py");
  EXPECT_EQ(b[1].filename, "");
  // Language mismatch: a JS block does not become the .py file.
  b = extract_code("```js\nlet x = 1;\n```\n", task_files);
  EXPECT_EQ(b[0].filename, "");
}

TEST(ExtractCode, SeveralFiles) {
  const std::string answer =
      "```c title=util.h\nint twice(int);\n```\n\n```c title=util.c\n#include \"util.h\"\nint twice(int x) { return 2 * x; }\n```\n";
  auto b = extract_code(answer);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].filename, "util.h");
  EXPECT_EQ(b[1].filename, "util.c");
}

TEST(ExtractCode, TildeFencesIndentationAndUnclosed) {
  auto b = extract_code("~~~python\nx = 1\n~~~\n");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].code, "x = 1\n");
  // Inside a list item: the fence's indentation is removed from the body.
  b = extract_code("1. Save this:\n   ```python\n   def f():\n       return 1\n   ```\n");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].code, "def f():\n    return 1\n");
  // A fence of four backticks can contain three.
  b = extract_code("````markdown\n```python\nx\n```\n````\n");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].code, "```python\nx\n```\n");
  // The model stopped before closing: the rest is the block.
  b = extract_code("```python title=a.py\ndef f():\n    pass\n");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].code, "def f():\n    pass\n");
}

TEST(ExtractCode, ThinkingIsIgnored) {
  auto b = extract_code("<think>maybe\n```python\nwrong = 1\n```\n</think>\n```python title=a.py\nright = 1\n```\n");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].code, "right = 1\n");
}

TEST(ExtractCode, PlainCodeAnswer) {
  const std::string code = "def add(a, b):\n    return a + b\n\n\ndef divide(a, b):\n    if b == 0:\n        raise ValueError(\"b\")\n    return a / b\n";
  std::vector<std::string> files{"calculator.py"};
  auto b = extract_code(code, files);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].filename, "calculator.py");
  EXPECT_EQ(b[0].code, code);
  EXPECT_TRUE(looks_like_code(code));
  const std::string prose =
      "The calculator should handle division by zero carefully. You can raise an exception when the divisor is zero.\n"
      "Most people prefer returning an error value instead of crashing the whole program.\n";
  EXPECT_FALSE(looks_like_code(prose));
  EXPECT_TRUE(extract_code(prose, files).empty());
}

}  // namespace
}  // namespace codey
