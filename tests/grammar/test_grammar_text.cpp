// The GBNF-like text format: what a grammar accepts, printing and re-parsing, and the errors users see.
#include <gtest/gtest.h>

#include "grammar/grammar_text.h"
#include "grammar_test_util.h"

namespace tailor::grammar::testing {
namespace {

std::shared_ptr<const CompiledGrammar> compile_text(const std::string& text) {
  auto g = parse_grammar_text(text);
  EXPECT_TRUE(g.ok()) << g.status().message();
  if (!g.ok()) return nullptr;
  auto cg = compile_bytes(*g);
  EXPECT_TRUE(cg.ok()) << cg.status().message();
  return cg.ok() ? *cg : nullptr;
}

std::string parse_error(const std::string& text) {
  auto g = parse_grammar_text(text);
  if (g.ok()) return "(parsed)";
  return g.status().message();
}

TEST(GrammarText, JsonLikeGrammarAcceptsAndRejects) {
  auto g = compile_text(R"(
# a tiny JSON-ish object
root   ::= "{" ws pair ("," ws pair)* "}"
pair   ::= string ws ":" ws value ws
value  ::= string | number | "true" | "false" | "null" | root
string ::= "\"" ([^"\\\x00-\x1f] | "\\" ["\\/bfnrt])* "\""
number ::= "-"? ([0-9] | [1-9] [0-9]+)
ws     ::= [ \t\n]*
)");
  ASSERT_TRUE(g);
  for (const char* ok : {R"({"a":1})", R"({ "a" : "x\"y" , "b":{"c":true}})", R"({"é":-12})"}) {
    EXPECT_TRUE(matches(g, ok)) << ok;
  }
  for (const char* bad : {R"({"a":01})", R"({"a":1,})", R"({a:1})", R"({"a":1)", "", R"({"a":"x
"})"}) {
    EXPECT_FALSE(matches(g, bad)) << bad;
  }
}

TEST(GrammarText, QuantifiersClassesAndBytes) {
  auto g = compile_text(R"(root ::= "a"{2} "b"{1,3} "c"{2,} "d"{,1} [^a-y] . %x80-8F)");
  ASSERT_TRUE(g);
  EXPECT_TRUE(matches(g, "aabccz\xce\xbb\x81"));  // . = one UTF-8 character (λ), then a raw byte
  EXPECT_TRUE(matches(g, "aabbbcccdzx\x8f"));
  EXPECT_FALSE(matches(g, "abccz\xce\xbb\x81"));      // a{2}
  EXPECT_FALSE(matches(g, "aabbbbccz\xce\xbb\x81"));  // b{1,3}
  EXPECT_FALSE(matches(g, "aabcz\xce\xbb\x81"));      // c{2,}
  EXPECT_FALSE(matches(g, "aabccaz\xce\xbb\x81"));    // [^a-y] refuses a
  EXPECT_FALSE(matches(g, "aabcczx\x90"));            // %x80-8F
}

TEST(GrammarText, EscapesInStringsAndClasses) {
  auto g = compile_text(R"(root ::= "\n\t\\\"\x41\u00e9\U0001F600\u{263A}" [\]\-\^]+ 'single \'quoted\'')");
  ASSERT_TRUE(g);
  EXPECT_TRUE(matches(g, "\n\t\\\"A\xc3\xa9\xf0\x9f\x98\x80\xe2\x98\xba]-^single 'quoted'"));
  EXPECT_FALSE(matches(g, "\n\t\\\"A\xc3\xa9\xf0\x9f\x98\x80\xe2\x98\xbaxsingle 'quoted'"));
}

TEST(GrammarText, RecursionAndNesting) {
  auto g = compile_text(R"(
root ::= list
list ::= "[" (item ("," item)*)? "]"
item ::= [0-9]+ | list
)");
  ASSERT_TRUE(g);
  EXPECT_TRUE(matches(g, "[1,[2,[3,[]]],45]"));
  EXPECT_TRUE(matches(g, "[[[[[[[[[[]]]]]]]]]]"));
  EXPECT_FALSE(matches(g, "[[1]"));
  EXPECT_FALSE(matches(g, "[1,]"));
}

TEST(GrammarText, PrintThenParseIsStable) {
  const char* texts[] = {
      R"(root ::= "a" b* | c{2,5} "\n"
b ::= [^"\\] | "\\" ["nt]
c ::= (b | "x")+ [\u0100-\U0010FFFF]? %x80)",
      R"(t ::= "" 
root ::= "`" b*
b ::= [1%)9] root{3,5} | " x")",
  };
  for (const char* text : texts) {
    auto g = parse_grammar_text(text);
    ASSERT_TRUE(g.ok()) << g.status().message();
    std::string printed = g->to_text();
    auto again = parse_grammar_text(printed);
    ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << printed;
    EXPECT_EQ(again->to_text(), printed);
    // The same language: spot-check with the byte-level matcher.
    auto a = compile_bytes(*g), b = compile_bytes(*again);
    ASSERT_TRUE(a.ok() && b.ok());
    for (uint64_t seed = 0; seed < 20; ++seed) {
      std::string s;
      ASSERT_TRUE(random_member(*a, seed, 40, &s));
      EXPECT_TRUE(matches(*b, s)) << s;
    }
  }
}

TEST(GrammarText, ErrorsNameLineColumnAndFix) {
  EXPECT_NE(parse_error("root ::= foo").find("line 1:10: rule \"foo\" is used but never defined"),
            std::string::npos)
      << parse_error("root ::= foo");
  EXPECT_NE(parse_error("root ::= \"a\"\nroot ::= \"b\"").find("line 2:1: rule \"root\" is defined twice"),
            std::string::npos);
  EXPECT_NE(parse_error("root ::= \"abc").find("string not closed"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"\\q\"").find("unknown escape"), std::string::npos);
  EXPECT_NE(parse_error("other ::= \"a\"").find("no rule named \"root\""), std::string::npos);
  EXPECT_NE(parse_error("").find("empty"), std::string::npos);
  EXPECT_NE(parse_error("root ::= [z-a]").find("below its start"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"{5,2}").find("max below min"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"{1000000}").find("limit"), std::string::npos);
  EXPECT_NE(parse_error("root ::= (\"a\"").find("never closed"), std::string::npos);
  EXPECT_NE(parse_error("root = \"a\"").find("expected \"::=\""), std::string::npos);
  EXPECT_NE(parse_error("root ::= [\\ud800]").find("surrogate"), std::string::npos);
}

TEST(GrammarText, CompileErrorsForLeftRecursionAndEmptyLanguage) {
  auto left = parse_grammar_text("root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]");
  ASSERT_TRUE(left.ok());
  auto c1 = compile_bytes(*left);
  ASSERT_FALSE(c1.ok());
  EXPECT_NE(c1.status().message().find("left recursion"), std::string::npos) << c1.status().message();
  EXPECT_NE(c1.status().message().find("expr -> expr"), std::string::npos) << c1.status().message();

  auto empty = parse_grammar_text("root ::= \"a\" loop\nloop ::= \"b\" loop");
  ASSERT_TRUE(empty.ok());
  auto c2 = compile_bytes(*empty);
  ASSERT_FALSE(c2.ok());
  EXPECT_NE(c2.status().message().find("matches no string"), std::string::npos) << c2.status().message();
}

}  // namespace
}  // namespace tailor::grammar::testing
