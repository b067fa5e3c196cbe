// Errors say where (line, column) and why; raise_exception's message reaches the caller; limits stop runaway
// templates instead of hanging or crashing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "reference.h"

namespace tailor::chat_template_test {
namespace {

std::string parse_error(const std::string& src) {
  auto t = ChatTemplate::parse(src);
  if (t.ok()) return "(parsed)";
  return t.status().message();
}

std::string render_error(const std::string& src, const OrderedJson& ctx = OrderedJson::object(),
                         const ChatTemplateOptions& opt = {}) {
  auto t = ChatTemplate::parse(src);
  if (!t.ok()) return "(parse error) " + t.status().message();
  auto r = t->render(ctx, opt);
  if (r.ok()) return "(rendered) " + *r;
  return r.status().message();
}

void expect_has(const std::string& msg, const std::string& part) {
  EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg << "\nexpected to contain: " << part;
}

TEST(ChatTemplateErrors, SyntaxErrorsGiveLineAndColumn) {
  // The offending token is at the stated position (1-based, columns in characters).
  expect_has(parse_error("hello\n{{ 1 + }}"), "line 2, column 8");
  expect_has(parse_error("{% if x %}\n  ok\n{% endfor %}"), "line 3, column 4");
  expect_has(parse_error("{% if x %}\n  ok\n{% endfor %}"), "endfor");
  expect_has(parse_error("{% for x in y %}\nbody"), "unexpected end of template");
  expect_has(parse_error("{% for x in y %}\nbody"), "'endfor'");
  expect_has(parse_error("ab\n  {{ 'unterminated }}"), "line 2, column 6");
  expect_has(parse_error("ab\n  {{ 'unterminated }}"), "unterminated string");
  expect_has(parse_error("{{ [1, 2) }}"), "line 1, column 9");
  expect_has(parse_error("{% frobnicate %}"), "unknown tag 'frobnicate'");
  expect_has(parse_error("é€{{ @ }}"), "line 1, column 6");  // columns count characters, not bytes
  expect_has(parse_error("{# never closed"), "missing end of comment");
  expect_has(parse_error("{% raw %} never closed"), "endraw");
  expect_has(parse_error("{% macro m(a=1, b) %}{% endmacro %}"), "non-default argument 'b'");
  expect_has(parse_error("{% break %}"), "outside a for loop");
  expect_has(parse_error("{% include 'other.jinja' %}"), "not supported");
  expect_has(parse_error("\r\n\r\n{{ ) }}"), "line 3, column 4");  // CRLF counts as one line break
}

TEST(ChatTemplateErrors, UnknownFiltersAndTests) {
  std::string msg = parse_error("x\n  {{ 'a'|frobnicate }}");
  expect_has(msg, "no filter named 'frobnicate'");
  expect_has(msg, "line 2, column 10");
  expect_has(parse_error("{{ 1 is frobnicated }}"), "no test named 'frobnicated'");
  expect_has(parse_error("{{ 1|groupby('x') }}"), "unsupported filter named 'groupby'");
  // As in jinja2, inside an if block the name only fails when reached.
  EXPECT_EQ(render_error("{% if false %}{{ 'a'|frobnicate }}{% endif %}ok"), "(rendered) ok");
  expect_has(render_error("{% if true %}{{ 'a'|frobnicate }}{% endif %}"), "no filter named 'frobnicate'");
}

TEST(ChatTemplateErrors, RenderErrorsGiveLineColumnAndReason) {
  std::string msg = render_error("line one\n{{ messages[0].content + 1 }}",
                                 OrderedJson::parse(R"({"messages": [{"content": "x"}]})"));
  expect_has(msg, "line 2, column 24");
  expect_has(msg, "can only concatenate str (not \"int\") to str");
  expect_has(render_error("{{ user.name }}"), "'user' is undefined");
  expect_has(render_error("{{ user.name }}"), "line 1, column 8");
  expect_has(render_error("{% for m in messages %}{% endfor %}", OrderedJson::parse(R"({"messages": null})")),
             "'NoneType' object is not iterable");
  expect_has(render_error("{{ 1 // 0 }}"), "division or modulo by zero");
  expect_has(render_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"), "takes not more than 1 argument");
  expect_has(render_error("{{ 9223372036854775807 + 1 }}"), "integer overflow");
}

TEST(ChatTemplateErrors, RaiseExceptionMessageIsReturned) {
  std::string src =
      "{% if messages|length > 1 %}\n  {{ raise_exception('Only one message, got ' ~ messages|length) }}\n{% "
      "endif %}";
  std::string msg = render_error(src, OrderedJson::parse(R"({"messages": [1, 2, 3]})"));
  expect_has(msg, "Only one message, got 3");
  expect_has(msg, "raised an exception");
  expect_has(msg, "line 2");
  EXPECT_EQ(render_error(src, OrderedJson::parse(R"({"messages": [1]})")), "(rendered) ");
}

TEST(ChatTemplateErrors, RunawayTemplatesStop) {
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  // 10^15 iterations would never finish: the step budget stops it.
  expect_has(
      render_error("{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
                   "{% endfor %}{% endfor %}{% endfor %}"),
      "steps");
  // Unbounded recursion.
  expect_has(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"), "recursion");
  // Exponential output.
  ChatTemplateOptions small;
  small.max_output_bytes = 1 << 20;
  expect_has(
      render_error("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
                   "{% endfor %}{{ ns.s }}",
                   OrderedJson::object(), small),
      "exceeds the limit");
  expect_has(render_error("{{ 'x' * 100000000000 }}", OrderedJson::object(), small), "exceeds the limit");
  expect_has(render_error("{% for i in range(100000) %}{{ 'abcdefghij' * 10 }}{% endfor %}",
                          OrderedJson::object(), small),
             "exceeds the limit");
  // Self-referencing namespaces print without recursing forever.
  expect_has(render_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}"), "nest");
  // Deep nesting in the source is refused at parse time rather than overflowing the stack.
  expect_has(parse_error("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"), "too deep");
  expect_has(parse_error(std::string(2000, '{') + "%"), "line 1");
  std::string chain = "{{ x";
  for (int i = 0; i < 3000; ++i) chain += "|string";
  expect_has(parse_error(chain + " }}"), "too deep");
  auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(clock::now() - t0).count();
  EXPECT_LT(elapsed, 30) << "limits took too long to trigger";
}

TEST(ChatTemplateErrors, BadContexts) {
  auto t = ChatTemplate::parse("{{ x }}");
  ASSERT_TRUE(t.ok());
  auto r = t->render(OrderedJson::array());
  ASSERT_FALSE(r.ok());
  expect_has(r.status().message(), "must be a JSON object");
  // A context nested deeper than values may be is refused, not a stack overflow.
  OrderedJson deep = OrderedJson::array();
  for (int i = 0; i < 1000; ++i) deep = OrderedJson::array({deep});
  r = t->render(OrderedJson{{"x", deep}});
  ASSERT_FALSE(r.ok());
  expect_has(r.status().message(), "nests deeper");
}

TEST(ChatTemplateApi, JsonAndOrderedJsonContexts) {
  auto t = ChatTemplate::parse("{{ d|tojson }}|{% for k in d %}{{ k }}{% endfor %}");
  ASSERT_TRUE(t.ok());
  // OrderedJson keeps the caller's key order (as Python dicts do); Json sorts keys.
  auto ordered = t->render(OrderedJson::parse(R"({"d": {"b": 1, "a": 2}})"));
  auto sorted = t->render(Json::parse(R"({"d": {"b": 1, "a": 2}})"));
  ASSERT_TRUE(ordered.ok() && sorted.ok());
  EXPECT_EQ(*ordered, "{\"b\": 1, \"a\": 2}|ba");
  EXPECT_EQ(*sorted, "{\"a\": 2, \"b\": 1}|ab");
}

TEST(ChatTemplateApi, StrftimeNowUsesTheGivenClock) {
  auto t = ChatTemplate::parse("{{ strftime_now('%Y') }}");
  ASSERT_TRUE(t.ok());
  ChatTemplateOptions opt;
  opt.now = 0;  // 1970 in every time zone east of UTC-0... and 1969 west of it
  auto r = t->render(OrderedJson::object(), opt);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r == "1970" || *r == "1969") << *r;
  auto live = t->render(OrderedJson::object());
  ASSERT_TRUE(live.ok());
  EXPECT_GE(std::stoi(*live), 2024);
}

TEST(ChatTemplateApi, RendersConcurrently) {
  auto t = ChatTemplate::parse(
      "{% for m in messages %}{% set ns = namespace(n=loop.index) %}{{ m.role }}{{ ns.n }}{% endfor %}");
  ASSERT_TRUE(t.ok());
  OrderedJson ctx = OrderedJson::parse(R"({"messages": [{"role": "user"}, {"role": "assistant"}]})");
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      for (int k = 0; k < 200; ++k) {
        auto r = t->render(ctx);
        if (r.ok() && *r == "user1assistant2") ++good;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 8 * 200);
}

}  // namespace
}  // namespace tailor::chat_template_test
