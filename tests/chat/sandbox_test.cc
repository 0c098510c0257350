// The template sandbox (src/chat/sandbox.cc and its checks in values,
// operators and builtins): hostile templates from issue #16 and variants.
// Each fails the render with a clear error - never the process - and the
// render's memory stays bounded. Limits are lowered where that keeps a test
// quick; the defaults are tested where they are the point.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "chat/interpreter.h"
#include "chat/lexer.h"
#include "chat/parser.h"
#include "chat/scopes.h"
#include "codey/chat.h"

namespace codey {
namespace {

Result<std::string> render(const std::string& source, const TemplateLimits& limits = {},
                           const std::atomic<bool>* cancel = nullptr) {
  auto t = ChatTemplate::parse(source);
  if (!t) return std::unexpected(t.error());
  ChatTemplateInputs in;
  in.messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "hi"}}});
  in.limits = limits;
  in.cancel = cancel;
  return t->render(in);
}

// The error of a render expected to fail, with its code.
Error failure(const Result<std::string>& r) {
  EXPECT_FALSE(r.has_value()) << (r ? r->substr(0, 200) : "");
  return r ? Error{} : r.error();
}

void expect_exhausted(const std::string& source, std::string_view message, const TemplateLimits& limits = {}) {
  const Error e = failure(render(source, limits));
  EXPECT_EQ(e.code, ErrorCode::kResourceExhausted) << source << "\n" << e.message;
  EXPECT_NE(e.message.find(message), std::string::npos) << source << "\n" << e.message;
}

TEST(Sandbox, ANamespaceHoldingItselfPrintsLikePython) {
  // Issue #16: this recursed until the stack ran out.
  auto r = render("{% set ns = namespace(x=0) %}{% set ns.x = ns %}{{ ns }}|{{ [ns] }}");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, "<Namespace {'x': <Namespace {...}>}>|[<Namespace {'x': <Namespace {...}>}>]");
}

TEST(Sandbox, DeepValuesAreRefusedWhenMade) {
  // Issue #16: a 2M-deep nested list crashed the process (its destruction
  // alone recurses as deep). Values stop at max_depth.
  expect_exhausted(
      "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% for j in range(20) %}"
      "{% set ns.l = [ns.l] %}{% endfor %}{% endfor %}{{ ns.l|length }}",
      "nest deeper than the template limit of 100 levels");
  expect_exhausted("{% set ns = namespace(d={}) %}{% for i in range(1000) %}{% set ns.d = {'a': ns.d} %}{% endfor %}",
                   "nest deeper");
  expect_exhausted("{% set ns = namespace(c=cycler(1)) %}{% for i in range(1000) %}{% set ns.c = cycler(ns.c) %}"
                   "{% endfor %}",
                   "nest deeper");
  // Within the limit, nesting works as before.
  auto ok = render("{% set ns = namespace(l=[]) %}{% for i in range(50) %}{% set ns.l = [ns.l] %}{% endfor %}"
                   "{{ ns.l|tojson|length }}");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(*ok, "102");
}

TEST(Sandbox, EndlessLoopsStopAtTheStepLimitWithFlatMemory) {
  // Issue #16: nested range(100000) loops never ended and grew ~165 MB/s
  // (every inner loop's frame and items lived until the render's end).
  const std::string source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
  TemplateLimits small;
  small.max_steps = 2'000'000;
  expect_exhausted(source, "the template ran more than 2000000 steps", small);
  // What the render held at its peak: the outer and one inner list, not one per iteration.
  jinja::RenderOptions options;
  options.limits = small;
  jinja::Interpreter interp(options);
  jinja::Body body = jinja::parse(jinja::tokenize(source, {}));
  EXPECT_THROW(interp.render(body, jinja::Dict(), jinja::analyze_scopes(body)), jinja::JinjaError);
  EXPECT_GT(interp.sandbox().steps(), small.max_steps);
  EXPECT_LT(interp.sandbox().peak_live_bytes(), size_t(16) << 20) << "peak " << interp.sandbox().peak_live_bytes();
}

TEST(Sandbox, TheTimeLimitAndCancelStopARender) {
  const std::string endless = "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}";
  TemplateLimits quick;
  quick.max_time = std::chrono::milliseconds(50);
  expect_exhausted(endless, "the template ran longer than 50 ms", quick);
  // Cancelled from another thread while it runs (or before it starts).
  std::atomic<bool> cancel{false};
  Result<std::string> r;
  std::thread t([&] { r = render(endless, {}, &cancel); });
  cancel = true;
  t.join();
  const Error e = failure(r);
  EXPECT_EQ(e.code, ErrorCode::kCancelled) << e.message;
  EXPECT_NE(e.message.find("cancelled"), std::string::npos);
}

TEST(Sandbox, StringsHaveASizeLimit) {
  // Issue #16: ljust(3e9) and repeated + had no size cap.
  expect_exhausted("{{ 'a'.ljust(3000000000) }}", "larger than the template limit");
  expect_exhausted("{{ 'a'.rjust(3000000000, '\xc3\xa9') }}", "larger than the template limit");
  expect_exhausted("{{ 'a'.center(300000000) }}", "larger than the template limit");
  expect_exhausted("{{ '5'.zfill(300000000) }}", "larger than the template limit");
  expect_exhausted("{{ '%300000000d' % 5 }}", "larger than the template limit");
  expect_exhausted("{{ '{:>300000000}'.format(5) }}", "larger than the template limit");
  expect_exhausted("{{ 'x'|indent(300000000, true) }}", "larger than the template limit");
  expect_exhausted("{{ 'x'|center(300000000) }}", "larger than the template limit");
  expect_exhausted("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                   "larger than the template limit");
  expect_exhausted("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                   "larger than the template limit");
  expect_exhausted("{{ 'x' * 100000000 }}", "larger than the template limit");
  expect_exhausted("{{ ('x' * 1000000).replace('x', 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy') }}",
                   "larger than the template limit");
  // One shared big string a million times: the text is checked as it grows.
  const std::string many = "([ 'x' * 1000000 ] * 1000000)";
  expect_exhausted("{{ " + many + "|join }}", "larger than the template limit");
  expect_exhausted("{{ ''.join(" + many + ") }}", "larger than the template limit");
  expect_exhausted("{{ " + many + "|string }}", "larger than the template limit");
  expect_exhausted("{{ " + many + "|tojson }}", "larger than the template limit");
  expect_exhausted("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "larger than the template limit");
  expect_exhausted("{% set big %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}",
                   "larger than the template limit");
  expect_exhausted("{{ strftime_now('%Y' * 20000000) }}", "larger than the template limit");
}

TEST(Sandbox, ContainersAndMemoryHaveLimits) {
  expect_exhausted("{{ (range(100000)|list * 20)|length }}", "items is larger than the template limit");
  expect_exhausted("{{ ['a']|batch(100000000, 'x')|list }}", "items is larger than the template limit");
  expect_exhausted("{{ 'abc'|slice(100000000)|list }}", "items is larger than the template limit");
  expect_exhausted("{% for c in 'x' * 2000000 %}{% endfor %}", "items is larger than the template limit");
  // Many distinct strings: the live memory is counted.
  expect_exhausted("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
                   "{% set ns.l = ns.l + [('x' * 100000) ~ i] %}{% endfor %}",
                   "the template holds more than");
  // The O(n^2) way of growing a list is work too.
  TemplateLimits small;
  small.max_steps = 5'000'000;
  expect_exhausted("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}",
                   "steps", small);
}

TEST(Sandbox, RecursionStopsAtTheDepthLimit) {
  auto e = failure(render("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}"));
  EXPECT_EQ(e.code, ErrorCode::kResourceExhausted);
  EXPECT_NE(e.message.find("RecursionError"), std::string::npos) << e.message;
  auto loop = failure(render("{% for x in [[1]] recursive %}{{ loop([x]) }}{% endfor %}"));
  EXPECT_NE(loop.message.find("RecursionError"), std::string::npos) << loop.message;
}

TEST(Sandbox, MacrosDefinedInLoopsStillWork) {
  // Frames an iteration made are freed after it, unless something points at them.
  auto r = render(
      "{% set ns = namespace(m=none) %}{% for x in ['a', 'b'] %}{% macro show() %}[{{ x }}]{% endmacro %}"
      "{% if loop.first %}{% set ns.m = show %}{% endif %}{% endfor %}{{ ns.m() }}"
      "{% for item in [[1, [2, 3]], 4] recursive %}{% if item is iterable %}({{ loop(item) }}){% else %}{{ item }}{% endif %}"
      "{% endfor %}");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  // As in Jinja's compiled Python: the macro's closure sees the loop variable's last value.
  EXPECT_EQ(*r, "[b](1(23))4");
}

TEST(Sandbox, InputsDeeperThanAnyLimitAreAnError) {
  // A caller that skipped parse_json's limits: the conversion stops, no crash.
  nlohmann::ordered_json deep = nlohmann::ordered_json::array();
  for (int i = 0; i < 5000; ++i) deep = nlohmann::ordered_json::array({std::move(deep)});
  auto t = ChatTemplate::parse("{{ messages|length }}");
  ASSERT_TRUE(t.has_value());
  ChatTemplateInputs in;
  in.messages = nlohmann::ordered_json::array({deep});
  auto r = t->render(in);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("RecursionError"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace codey
