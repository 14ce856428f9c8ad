// The Jinja engine's lexer, parser and statements: whitespace control as transformers configures
// it, errors that name the line, unsupported features, and the render limits that keep hostile
// templates from crashing or hanging.
#include <gtest/gtest.h>

#include "template_test_render.h"

namespace llmsync::text::jinja {
namespace {

using testing::RenderJinja;

std::string Ok(const std::string& source, const std::string& vars = "{}") {
  auto r = RenderJinja(source, vars);
  EXPECT_TRUE(r.IsOk()) << source << " -> " << r.GetStatus().ToString();
  return r.IsOk() ? *r : "<error>";
}

Status Err(const std::string& source, const std::string& vars = "{}", const RenderLimits& limits = {}) {
  auto r = RenderJinja(source, vars, limits);
  EXPECT_FALSE(r.IsOk()) << source << " rendered " << (r.IsOk() ? *r : "");
  return r.GetStatus();
}

bool Mentions(const Status& s, const std::string& text) {
  return s.Message().find(text) != std::string::npos;
}

TEST(JinjaEngineTest, RendersTextAndExpressions) {
  EXPECT_EQ(Ok("Hello {{ name }}! {{ 1 + 2 * 3 }}", R"({"name": "world"})"), "Hello world! 7");
}

TEST(JinjaEngineTest, TrimBlocksAndLstripBlocksLikeTransformers) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before it.
  EXPECT_EQ(Ok("{% for x in [1, 2] %}\n  {% if x %}\n{{ x }}\n  {% endif %}\n{% endfor %}"), "1\n2\n");
  // Neither applies to {{ }}.
  EXPECT_EQ(Ok("  {{ 1 }}\n{{ 2 }}"), "  1\n2");
  // '+' opts out of both; '-' strips all whitespace on its side.
  EXPECT_EQ(Ok("a\n  {%+ if true +%}\nb{% endif %}"), "a\n  \nb");
  EXPECT_EQ(Ok("a \n {%- if true -%} \n b {%- endif %}"), "ab");
  // Comments follow the block rules; one trailing newline of the source is dropped.
  EXPECT_EQ(Ok("x\n   {# note #}\ny\n"), "x\ny");
}

TEST(JinjaEngineTest, SyntaxErrorsNameTheLine) {
  Status s = Err("line 1\nline 2 {{ 1 + }}");
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Mentions(s, "(line 2)")) << s.ToString();
  EXPECT_TRUE(Mentions(Err("{% for x in y %}\n\nno end"), "expected 'endfor' or 'else'"));
  EXPECT_TRUE(Mentions(Err("\n\n{% frobnicate %}"), "unknown tag 'frobnicate' (line 3)"));
  EXPECT_TRUE(Mentions(Err("{{ 'unterminated }}"), "unexpected char"));
  EXPECT_TRUE(Mentions(Err("{# never closed"), "missing end of comment tag"));
  EXPECT_TRUE(Mentions(Err(std::string("{{ '\xff' }}")), "not valid UTF-8"));
}

TEST(JinjaEngineTest, UnsupportedFeaturesAreNamedWithTheirLine) {
  struct Case {
    std::string source;
    std::string feature;
  };
  for (const Case& c : std::vector<Case>{
           {"a\n{% include 'x.jinja' %}", "'{% include %}' statement (line 2)"},
           {"{% extends 'base' %}", "'{% extends %}' statement (line 1)"},
           {"{% block body %}{% endblock %}", "'{% block %}' statement (line 1)"},
           {"{% import 'm' as m %}", "'{% import %}' statement"},
           {"\n\n{% for x in y recursive %}{% endfor %}", "recursive for loops (line 3)"},
           {"{{ f(*args) }}", "*args/**kwargs in a call (line 1)"},
           {"\n{{ 'x' | xmlattr }}", "the 'xmlattr' filter (line 2)"},
           {"{{ '%s' % 1 }}", "printf-style string formatting"},
           {"{{ '\\N{BULLET}' }}", "\\N{...} escapes"},
           {"{{ x[::, 1] }}", "slices inside multi-part subscripts (line 1)"},  // found by fuzzing
       }) {
    Status s = Err(c.source);
    EXPECT_EQ(s.Code(), StatusCode::kUnimplemented) << c.source << ": " << s.ToString();
    EXPECT_TRUE(Mentions(s, c.feature)) << c.source << ": " << s.ToString();
  }
}

TEST(JinjaEngineTest, RuntimeErrorsNameTheLine) {
  Status s = Err("ok\n\n{{ messages[0].content + 1 }}", R"({"messages": [{"content": "x"}]})");
  EXPECT_TRUE(Mentions(s, "can only concatenate str (not \"int\") to str (line 3)")) << s.ToString();
  Status raised = Err("{% if true %}\n{{ raise_exception('System role not supported') }}{% endif %}");
  EXPECT_TRUE(Mentions(raised, "template raised an exception: System role not supported (line 2)"))
      << raised.ToString();
  EXPECT_TRUE(Mentions(Err("{{ missing.attr }}"), "'missing' is undefined"));
}

TEST(JinjaEngineTest, ScopesFollowJinja) {
  // A loop body's assignments are local to each iteration; if-blocks do not open a scope.
  EXPECT_EQ(Ok("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}"), "221");
  EXPECT_EQ(Ok("{% if true %}{% set y = 3 %}{% endif %}{{ y }}"), "3");
  // namespace() carries state out of loops; macros see variables assigned after their definition.
  EXPECT_EQ(Ok("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ "
               "ns.n }}"),
            "6");
  EXPECT_EQ(Ok("{% macro m() %}{{ late }}{% endmacro %}{% set late = 'ok' %}{{ m() }}"), "ok");
}

TEST(JinjaEngineTest, RecursionIsBounded) {
  Status s = Err("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_EQ(s.Code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_TRUE(Mentions(s, "recursion is too deep")) << s.ToString();
}

TEST(JinjaEngineTest, LoopsAreBounded) {
  RenderLimits limits;
  limits.max_steps = 100000;
  Status s =
      Err("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}", "{}", limits);
  EXPECT_EQ(s.Code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Mentions(s, "evaluation budget")) << s.ToString();
  EXPECT_TRUE(Mentions(Err("{{ range(100001) | length }}"), "MAX_RANGE"));
}

TEST(JinjaEngineTest, OutputAndStringsAreBounded) {
  RenderLimits limits;
  limits.max_output_bytes = 1 << 16;
  Status doubling =
      Err("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
          "{}", limits);
  EXPECT_EQ(doubling.Code(), StatusCode::kResourceExhausted) << doubling.ToString();
  Status repeat = Err("{{ 'abc' * 100000000 }}", "{}", limits);
  EXPECT_EQ(repeat.Code(), StatusCode::kResourceExhausted) << repeat.ToString();
  Status output = Err("{% for i in range(100000) %}0123456789{% endfor %}", "{}", limits);
  EXPECT_EQ(output.Code(), StatusCode::kResourceExhausted) << output.ToString();
}

TEST(JinjaEngineTest, DeepNestingIsRejectedNotOverflowed) {
  std::string parens = std::string(5000, '(') + "1" + std::string(5000, ')');
  EXPECT_EQ(Err("{{ " + parens + " }}").Code(), StatusCode::kResourceExhausted);
  std::string chain = "{{ 1";
  for (int i = 0; i < 20000; ++i) chain += " + 1";
  EXPECT_EQ(Err(chain + " }}").Code(), StatusCode::kResourceExhausted);
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if true %}";
  EXPECT_EQ(Err(ifs).Code(), StatusCode::kResourceExhausted);
  std::string nots = "{{ " + std::string(20000, '-') + "1 }}";
  EXPECT_EQ(Err(nots).Code(), StatusCode::kResourceExhausted);
  // Values nested by a loop hit the value-depth bound.
  Status deep =
      Err("{% set ns = namespace(v=[]) %}{% for i in range(100000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ "
          "ns.v }}");
  EXPECT_EQ(deep.Code(), StatusCode::kResourceExhausted) << deep.ToString();
}

TEST(JinjaEngineTest, ManyElifsAreNotNesting) {
  std::string source = "{% if x == 0 %}zero";
  for (int i = 1; i < 500; ++i) source += "{% elif x == " + std::to_string(i) + " %}" + std::to_string(i);
  source += "{% else %}many{% endif %}";
  EXPECT_EQ(Ok(source, R"({"x": 321})"), "321");
}

TEST(JinjaEngineTest, NamespacesCannotHoldObjects) {
  Status s = Err("{% set a = namespace() %}{% set b = namespace() %}{% set a.b = b %}");
  EXPECT_EQ(s.Code(), StatusCode::kUnimplemented) << s.ToString();
}

}  // namespace
}  // namespace llmsync::text::jinja
