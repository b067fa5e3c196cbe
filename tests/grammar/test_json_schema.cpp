// JSON Schema -> grammar, feature by feature, checked by language membership (byte-level matcher), plus the
// errors for unsupported or contradictory schemas.
#include <gtest/gtest.h>

#include "grammar/json_schema.h"
#include "grammar/json_values.h"
#include "grammar_test_util.h"

namespace tailor::grammar::testing {
namespace {

std::shared_ptr<const CompiledGrammar> compile_schema(const std::string& schema, JsonSchemaOptions opt = {}) {
  auto g = json_schema_to_grammar(schema, opt);
  EXPECT_TRUE(g.ok()) << g.status().message();
  if (!g.ok()) return nullptr;
  auto cg = compile_bytes(*g);
  EXPECT_TRUE(cg.ok()) << cg.status().message();
  return cg.ok() ? *cg : nullptr;
}

std::string schema_error(const std::string& schema) {
  auto g = json_schema_to_grammar(schema);
  return g.ok() ? "(converted)" : g.status().message();
}

TEST(JsonSchema, IntegerRangesAreExact) {
  const std::pair<int64_t, int64_t> ranges[] = {{0, 100}, {-50, 50}, {1000, 99999}, {-1234, -7},
                                                {42, 42}, {-9, 9},   {7, 1305}};
  for (auto [lo, hi] : ranges) {
    Grammar g;
    g.root = g.add_rule("root");
    g.rules[g.root].body = int_range_expr(lo, hi);
    auto cg = compile_bytes(g);
    ASSERT_TRUE(cg.ok()) << cg.status().message();
    for (int64_t x = -1500; x <= 1500; ++x) {
      ASSERT_EQ(matches(*cg, std::to_string(x)), x >= lo && x <= hi) << "[" << lo << "," << hi << "] " << x;
    }
    for (const char* odd : {"-0", "007", "+1", "", "1.0"}) EXPECT_FALSE(matches(*cg, odd)) << odd;
    EXPECT_EQ(matches(*cg, std::to_string(hi + 100000)), false);
  }
}

TEST(JsonSchema, IntegerBoundsKeywords) {
  auto g = compile_schema(R"({"type":"integer","exclusiveMinimum":-3,"maximum":7.5})");
  ASSERT_TRUE(g);
  for (int x = -10; x <= 10; ++x) EXPECT_EQ(matches(g, std::to_string(x)), x > -3 && x <= 7) << x;
  auto d4 = compile_schema(R"({"type":"integer","minimum":0,"exclusiveMinimum":true,"maximum":3})");
  ASSERT_TRUE(d4);
  EXPECT_FALSE(matches(d4, "0"));
  EXPECT_TRUE(matches(d4, "1"));
  EXPECT_TRUE(matches(d4, "3"));
}

TEST(JsonSchema, NumberBounds) {
  auto g = compile_schema(R"({"type":"number","minimum":-2,"exclusiveMaximum":3})");
  ASSERT_TRUE(g);
  for (const char* ok : {"-2", "-2.0", "-1.999", "0", "-0.5", "2.999", "1"})
    EXPECT_TRUE(matches(g, ok)) << ok;
  for (const char* bad : {"-2.001", "3", "3.0", "3.5", "-3", "1e2", "01"})
    EXPECT_FALSE(matches(g, bad)) << bad;
  auto free = compile_schema(R"({"type":"number"})");
  ASSERT_TRUE(free);
  for (const char* ok : {"0", "-12.5", "3e10", "1.5E-7", "-0.0"}) EXPECT_TRUE(matches(free, ok)) << ok;
  for (const char* bad : {"1.", ".5", "+1", "1e", "00", "1e123"}) EXPECT_FALSE(matches(free, bad)) << bad;
}

TEST(JsonSchema, StringLengthsCountCodePointsWhateverTheEncoding) {
  auto g = compile_schema(R"({"type":"string","minLength":2,"maxLength":20})");
  ASSERT_TRUE(g);
  EXPECT_FALSE(matches(g, "\"a\""));
  EXPECT_TRUE(matches(g, "\"ab\""));
  EXPECT_TRUE(matches(g, "\"\\n\\\"\""));                   // two escapes = 2 characters
  EXPECT_TRUE(matches(g, "\"\\ud83d\\ude00x\""));           // a surrogate pair = 1 character
  EXPECT_TRUE(matches(g, "\"\xe6\x97\xa5\xe6\x9c\xac\""));  // 2 CJK characters, 6 bytes
  EXPECT_TRUE(matches(g, "\"" + std::string(20, 'x') + "\""));
  EXPECT_FALSE(matches(g, "\"" + std::string(21, 'x') + "\""));
  EXPECT_TRUE(matches(g, "\"" + std::string(18, 'x') + "\\u00e9\\t\""));
  EXPECT_FALSE(matches(g, "\"" + std::string(19, 'x') + "\\u00e9\\t\""));
  EXPECT_FALSE(matches(g, "\"\\ud83dxx\""));  // lone surrogate
  EXPECT_FALSE(matches(g, "\"\\u0000x\""));   // never generated (some validators stop counting at NUL)
  EXPECT_FALSE(matches(g, "\"a\nb\""));       // raw control character
  EXPECT_FALSE(matches(g, "\"a\xc3\""));      // truncated UTF-8
  // Large bounds stay small automata (a counted loop), yet exact at both ends.
  auto big = compile_schema(R"({"type":"string","minLength":300,"maxLength":1000})");
  ASSERT_TRUE(big);
  EXPECT_LT(big->automaton().states.size(), 200u);
  EXPECT_FALSE(matches(big, "\"" + std::string(299, 'y') + "\""));
  EXPECT_TRUE(matches(big, "\"" + std::string(300, 'y') + "\""));
  EXPECT_TRUE(matches(big, "\"" + std::string(1000, 'y') + "\""));
  EXPECT_FALSE(matches(big, "\"" + std::string(1001, 'y') + "\""));
}

TEST(JsonSchema, ObjectsPropertyOrderOptionalAndExtraKeys) {
  auto g = compile_schema(
      R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"boolean"},"c":{"type":"null"}},"required":["b"]})");
  ASSERT_TRUE(g);
  for (const char* ok :
       {R"({"b":true})", R"({"a":1,"b":false})", R"({"b":true,"c":null})", R"({"a":-2,"b":true,"c":null})"}) {
    EXPECT_TRUE(matches(g, ok)) << ok;
  }
  for (const char* bad : {R"({})", R"({"a":1})", R"({"b":true,"a":1})", R"({"b":true,"d":1})",
                          R"({"b":true,})", R"({ "b":true})"}) {
    EXPECT_FALSE(matches(g, bad)) << bad;
  }
  auto extra = compile_schema(
      R"({"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":{"type":"integer"}})");
  ASSERT_TRUE(extra);
  EXPECT_TRUE(matches(extra, R"({"name":"x","n":1,"names":2})"));
  EXPECT_FALSE(matches(extra, R"({"name":"x","name":1})"));  // an extra key never repeats a declared one
  EXPECT_FALSE(matches(extra, R"({"name":"x","n":"s"})"));
  JsonSchemaOptions loose;
  loose.strict_additional_properties = false;
  auto open = compile_schema(R"({"type":"object","properties":{"a":{"type":"integer"}}})", loose);
  ASSERT_TRUE(open);
  EXPECT_TRUE(matches(open, R"({"a":1,"z":[1,{"q":null}]})"));
}

TEST(JsonSchema, WhitespacePolicy) {
  const char* schema =
      R"({"type":"object","properties":{"a":{"type":"array","items":{"type":"integer"}}},"required":["a"]})";
  auto compact = compile_schema(schema);
  JsonSchemaOptions opt;
  opt.flexible_whitespace = true;
  opt.max_whitespace = 4;
  auto flexible = compile_schema(schema, opt);
  ASSERT_TRUE(compact && flexible);
  EXPECT_TRUE(matches(compact, R"({"a":[1,2]})"));
  EXPECT_FALSE(matches(compact, R"({"a": [1, 2]})"));
  EXPECT_TRUE(matches(flexible, "{\n  \"a\": [ 1, 2 ]\n}"));
  EXPECT_FALSE(matches(flexible, "{\"a\":      [1]}"));  // more than max_whitespace
}

TEST(JsonSchema, ArraysPrefixItemsAndCounts) {
  auto g = compile_schema(
      R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false,"minItems":1})");
  ASSERT_TRUE(g);
  EXPECT_TRUE(matches(g, R"(["a"])"));
  EXPECT_TRUE(matches(g, R"(["a",1])"));
  EXPECT_FALSE(matches(g, R"(["a",1,2])"));
  EXPECT_FALSE(matches(g, R"([])"));
  EXPECT_FALSE(matches(g, R"([1])"));
  auto counted = compile_schema(R"({"type":"array","items":{"type":"boolean"},"minItems":2,"maxItems":3})");
  ASSERT_TRUE(counted);
  EXPECT_FALSE(matches(counted, "[true]"));
  EXPECT_TRUE(matches(counted, "[true,false]"));
  EXPECT_TRUE(matches(counted, "[true,false,true]"));
  EXPECT_FALSE(matches(counted, "[true,false,true,true]"));
}

TEST(JsonSchema, EnumsConstsUnionsRefsAndRecursion) {
  auto e = compile_schema(R"({"enum":["a\"b",1.5,null,{"k":[1]}]})");
  ASSERT_TRUE(e);
  for (const char* ok : {R"("a\"b")", "1.5", "null", R"({"k":[1]})"}) EXPECT_TRUE(matches(e, ok)) << ok;
  EXPECT_FALSE(matches(e, R"("ab")"));
  auto typed = compile_schema(R"({"type":"string","enum":["x",1,"yy"],"maxLength":1})");
  ASSERT_TRUE(typed);
  EXPECT_TRUE(matches(typed, R"("x")"));
  EXPECT_FALSE(matches(typed, "1"));
  EXPECT_FALSE(matches(typed, R"("yy")"));
  auto rec = compile_schema(
      R"({"$defs":{"N":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/N"},{"type":"null"}]}},"required":["v","next"]}},"$ref":"#/$defs/N"})");
  ASSERT_TRUE(rec);
  EXPECT_TRUE(matches(rec, R"({"v":1,"next":{"v":2,"next":{"v":3,"next":null}}})"));
  EXPECT_FALSE(matches(rec, R"({"v":1,"next":{"v":2}})"));
  auto nullable = compile_schema(R"({"type":"integer","nullable":true})");
  ASSERT_TRUE(nullable);
  EXPECT_TRUE(matches(nullable, "null"));
  EXPECT_TRUE(matches(nullable, "3"));
}

TEST(JsonSchema, OneOfMustBeVisiblyDisjoint) {
  EXPECT_EQ(schema_error(R"({"oneOf":[{"type":"string"},{"type":"integer"}]})"), "(converted)");
  EXPECT_EQ(
      schema_error(
          R"({"oneOf":[{"type":"object","properties":{"t":{"const":"a"}},"required":["t"]},{"type":"object","properties":{"t":{"const":"b"}},"required":["t"]}]})"),
      "(converted)");
  std::string err = schema_error(R"({"oneOf":[{"type":"integer"},{"type":"number"}]})");
  EXPECT_NE(err.find("oneOf branches 0 and 1 may both match"), std::string::npos) << err;
}

TEST(JsonSchema, UnsupportedKeywordsAreListed) {
  std::string err = schema_error(
      R"({"type":"object","properties":{"tags":{"type":"array","uniqueItems":true,"contains":{"type":"string"}}}})");
  EXPECT_NE(err.find("/properties/tags"), std::string::npos) << err;
  EXPECT_NE(err.find("\"uniqueItems\""), std::string::npos) << err;
  EXPECT_NE(err.find("\"contains\""), std::string::npos) << err;
  EXPECT_NE(schema_error(R"({"type":"integer","multipleOf":5})").find("\"multipleOf\""), std::string::npos);
  // Harmless values of those keywords are accepted.
  EXPECT_EQ(schema_error(R"({"type":"array","uniqueItems":false})"), "(converted)");
  EXPECT_EQ(schema_error(R"({"type":"integer","multipleOf":1})"), "(converted)");
}

TEST(JsonSchema, MalformedSchemasGiveClearErrors) {
  struct Bad {
    const char* schema;
    const char* says;
  };
  const Bad bad[] = {
      {R"({"type":"object",)", "invalid JSON"},
      {R"({"$ref":"#/$defs/Missing"})", "does not resolve"},
      {R"({"$ref":"http://example.com/s.json"})", "outside this document"},
      {R"({"type":"strin"})", "unknown type \"strin\""},
      {R"({"type":"string","format":"color"})", "unsupported format \"color\""},
      {R"({"type":"number","maximum":0.5})", "number bounds must be integers"},
      {R"({"type":"integer","minimum":5,"maximum":1})", "no integer satisfies"},
      {R"({"type":"string","minLength":5,"maxLength":2})", "minLength 5 is above maxLength 2"},
      {R"({"type":"object","required":["a"],"additionalProperties":false})", "required property \"a\""},
      {R"({"allOf":[{"type":"string"},{"type":"integer"}]})", "different types"},
      {R"({"enum":[]})", "non-empty array"},
      {R"x({"type":"string","pattern":"a(?=b)"})x", "lookahead"},
      {R"({"type":"string","pattern":"[a-z]+","maxLength":3})", "not supported"},
      {R"(false)", "matches nothing"},
      {R"(42)", "must be an object or a boolean"},
  };
  for (const Bad& b : bad) {
    std::string err = schema_error(b.schema);
    EXPECT_NE(err.find(b.says), std::string::npos) << b.schema << " -> " << err;
  }
}

TEST(JsonSchema, FormatsGenerateValidValues) {
  const char* formats[] = {"date", "time", "date-time", "email", "uuid", "uri", "ipv4", "ipv6", "hostname"};
  for (const char* f : formats) {
    auto g = compile_schema(std::string(R"({"type":"string","format":")") + f + "\"}");
    ASSERT_TRUE(g) << f;
    std::vector<std::string> outs;
    for (uint64_t seed = 0; seed < 20; ++seed) {
      std::string s;
      ASSERT_TRUE(random_member(g, seed, 40, &s)) << f;
      outs.push_back(s);
    }
    // python-jsonschema checks date, email, ipv4, ipv6, uuid; valijson checks date, time, date-time.
    std::string schema = std::string(R"({"type":"string","format":")") + f + "\"}";
    for (const std::string& s : outs) EXPECT_EQ(valijson_error(schema, s), "") << f << ": " << s;
    size_t checked = 0;
    auto py = python_validate({{f, schema, outs}}, &checked);
    ASSERT_TRUE(py.ok()) << py.status().message();
    EXPECT_EQ(checked, outs.size());
    for (const PyFailure& fail : *py) ADD_FAILURE() << f << ": " << fail.output << ": " << fail.error;
  }
}

}  // namespace
}  // namespace tailor::grammar::testing
