// Chat-template conformance: every template in ../shared/testdata/templates
// rendered with every conversation in cases.json must equal the reference
// (Hugging Face) rendering in expected/, or fail with the expected error.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "codey/chat.h"
#include "testing/testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

std::string templates_dir() { return testing::testdata("templates"); }

// The fixed clock of the reference renderings: 2026-01-15 10:30.
std::tm reference_now() {
  std::tm tm{};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 0;
  tm.tm_mday = 15;
  tm.tm_hour = 10;
  tm.tm_min = 30;
  std::time_t t = timegm(&tm);
  gmtime_r(&t, &tm);
  return tm;
}

struct Case {
  std::string template_name;  // file stem
  std::string case_name;
};

const ordered_json& cases_json() {
  static const ordered_json cases =
      ordered_json::parse(testing::read_file_text(templates_dir() + "/cases.json"));
  return cases;
}

std::vector<Case> all_cases() {
  std::vector<std::string> templates;
  for (const auto& entry : fs::directory_iterator(templates_dir()))
    if (entry.path().extension() == ".jinja") templates.push_back(entry.path().stem().string());
  std::sort(templates.begin(), templates.end());
  std::vector<Case> out;
  for (const auto& t : templates)
    for (const auto& c : cases_json()) out.push_back({t, c.at("name").get<std::string>()});
  return out;
}

ChatTemplateInputs inputs_for(const std::string& case_name) {
  for (const auto& c : cases_json()) {
    if (c.at("name") != case_name) continue;
    ChatTemplateInputs in;
    in.messages = c.at("messages");
    if (c.contains("tools")) in.tools = c.at("tools");
    in.add_generation_prompt = c.value("add_generation_prompt", true);
    in.bos_token = "<s>";
    in.eos_token = "</s>";
    in.now = reference_now();
    return in;
  }
  ADD_FAILURE() << "no case " << case_name;
  return {};
}

class TemplateConformance : public ::testing::TestWithParam<Case> {};

TEST_P(TemplateConformance, MatchesReference) {
  const Case& c = GetParam();
  std::string source = testing::read_file_text(templates_dir() + "/" + c.template_name + ".jinja");
  ASSERT_FALSE(source.empty());
  auto tmpl = ChatTemplate::parse(source);
  ASSERT_TRUE(tmpl.has_value()) << tmpl.error().message;

  std::string expected_path = templates_dir() + "/expected/" + c.template_name + "." + c.case_name + ".txt";
  auto rendered = tmpl->render(inputs_for(c.case_name));
  if (fs::exists(expected_path + ".error")) {
    std::string expected = testing::read_file_text(expected_path + ".error");
    while (!expected.empty() && expected.back() == '\n') expected.pop_back();
    ASSERT_FALSE(rendered.has_value()) << "expected the error \"" << expected << "\", rendered:\n" << *rendered;
    EXPECT_EQ(rendered.error().message, expected);
    EXPECT_EQ(rendered.error().code, ErrorCode::kInvalidArgument);
    return;
  }
  ASSERT_TRUE(fs::exists(expected_path)) << expected_path;
  ASSERT_TRUE(rendered.has_value()) << rendered.error().message;
  EXPECT_EQ(*rendered, testing::read_file_text(expected_path));
}

INSTANTIATE_TEST_SUITE_P(Templates, TemplateConformance, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = info.param.template_name + "_" + info.param.case_name;
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

// The suite must not pass vacuously: every template and case was found.
TEST(TemplateConformanceSuite, FindsAllTemplatesAndCases) {
  EXPECT_GE(cases_json().size(), 5u);
  size_t n_templates = 0;
  for (const auto& entry : fs::directory_iterator(templates_dir()))
    n_templates += entry.path().extension() == ".jinja";
  EXPECT_GE(n_templates, 12u);
  EXPECT_EQ(all_cases().size(), n_templates * cases_json().size());
}

}  // namespace
}  // namespace codey
