// Property tests (rapidcheck) on random Unicode text and random ids:
//   byte-level vocabularies are lossless: decode(encode(x)) == x (after the tokenizer's own NFC for Qwen3);
//   the token_bytes of the ids concatenate to the text (what grammar-constrained decoding relies on);
//   streaming decode returns complete UTF-8 only and concatenates to the one-shot decode.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <utf8proc.h>

#include <cstdlib>

#include "tok_test_util.h"
#include "tokenizer/utf8.h"

namespace tailor::test {
namespace {

std::string utf8(uint32_t cp) {
  std::string s;
  tok::utf8_append(s, char32_t(cp));
  return s;
}

// One piece of text: mostly code points from the scripts and classes tokenizers treat specially, sometimes a
// special-token spelling.
rc::Gen<std::string> gen_piece(bool with_specials) {
  auto cp = [](uint32_t lo, uint32_t hi) { return rc::gen::map(rc::gen::inRange<uint32_t>(lo, hi), utf8); };
  auto any_scalar = rc::gen::map(rc::gen::suchThat(rc::gen::inRange<uint32_t>(0, 0x110000),
                                                   [](uint32_t c) { return c < 0xD800 || c > 0xDFFF; }),
                                 utf8);
  auto specials = with_specials
                      ? rc::gen::element<std::string>("<|im_start|>", "<|im_end|>", "<|endoftext|>",
                                                      "<|begin_of_text|>", "<|eot_id|>", "<s>", "</s>")
                      : rc::gen::element<std::string>("<", "|", ">");
  return rc::gen::weightedOneOf<std::string>({
      {30, cp(0x20, 0x7F)},
      {8, rc::gen::element<std::string>(" ", "  ", "\n", "\t", "\r\n", "\xC2\xA0", "\xE3\x80\x80",
                                        "\xE1\xA0\x8E", "\xE2\x80\x8D", "\xEF\xB8\x8F", "'s", "'LL", "123",
                                        "4567")},
      {6, cp(0xA0, 0x250)},
      {4, cp(0x300, 0x370)},  // combining marks
      {3, cp(0x900, 0x980)},  // Devanagari
      {6, cp(0x4E00, 0x9FA0)},
      {3, cp(0xAC00, 0xD7A4)},
      {3, cp(0x1F300, 0x1F700)},
      {2, cp(0x0, 0x20)},
      {4, any_scalar},
      {2, specials},
  });
}

rc::Gen<std::string> gen_text(bool with_specials) {
  return rc::gen::map(rc::gen::container<std::vector<std::string>>(gen_piece(with_specials)),
                      [](const std::vector<std::string>& parts) {
                        std::string s;
                        for (auto& p : parts) s += p;
                        return s;
                      });
}

std::string nfc(const std::string& s) {
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()), &out,
                   utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::string r =
      n >= 0 ? std::string(reinterpret_cast<const char*>(out), size_t(n)) : std::string("<nfc failed>");
  std::free(out);
  return r;
}

const Tokenizer& need(const char* name) {
  std::string why;
  const Tokenizer* t = real_tokenizer(name, &why);
  if (!t) RC_FAIL(why);
  return *t;
}

std::string concat_token_bytes(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += tok.token_bytes(id);
  return s;
}

void check_stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  StreamDecoder sd(tok, skip);
  std::string acc;
  for (int32_t id : ids) {
    std::string part = sd.push(id);
    RC_ASSERT(tok::utf8_first_invalid(part) == tok::kNpos);
    acc += part;
  }
  acc += sd.flush();
  RC_ASSERT(acc == tok.decode(ids, skip));
}

RC_GTEST_PROP(TokenizerProperty, Llama3RoundTrips, ()) {
  const Tokenizer& tok = need("llama3");
  const std::string x = *gen_text(true);
  for (bool parse : {false, true}) {
    auto ids = tok.encode(x, {.add_special_tokens = false, .parse_special = parse});
    RC_ASSERT(ids.ok());
    RC_ASSERT(tok.decode(*ids) == x);
    if (!parse) RC_ASSERT(concat_token_bytes(tok, *ids) == x);
  }
}

RC_GTEST_PROP(TokenizerProperty, Qwen3RoundTripsToNfc, ()) {
  const Tokenizer& tok = need("qwen3");
  const std::string x = *gen_text(false);
  auto ids = tok.encode(x, {.add_special_tokens = true, .parse_special = false});
  RC_ASSERT(ids.ok());
  const std::string want = nfc(x);
  RC_ASSERT(tok.decode(*ids) == want);
  RC_ASSERT(concat_token_bytes(tok, *ids) == want);
}

RC_GTEST_PROP(TokenizerProperty, Llama2TokenBytesSpellTheText, ()) {
  const Tokenizer& tok = need("llama2");
  const std::string x = *gen_text(false);
  RC_PRE(!x.empty());
  auto ids = tok.encode(x, {.add_special_tokens = false, .parse_special = false});
  RC_ASSERT(ids.ok());
  // The normalizer prepends "▁" and turns spaces into "▁"; token_bytes turns them back into spaces.
  RC_ASSERT(concat_token_bytes(tok, *ids) == " " + x);
}

RC_GTEST_PROP(TokenizerProperty, StreamingEqualsOneShotOnEncodedText, ()) {
  const char* name = *rc::gen::element("qwen3", "llama3", "llama2");
  const Tokenizer& tok = need(name);
  const std::string x = *gen_text(true);
  const bool parse = *rc::gen::arbitrary<bool>();
  auto ids = tok.encode(x, {.add_special_tokens = true, .parse_special = parse});
  RC_ASSERT(ids.ok());
  check_stream(tok, *ids, *rc::gen::arbitrary<bool>());
}

RC_GTEST_PROP(TokenizerProperty, StreamingEqualsOneShotOnRandomIds, ()) {
  const char* name = *rc::gen::element("qwen3", "llama3", "llama2");
  const Tokenizer& tok = need(name);
  const int32_t n = tok.vocab_size();
  // Low ids are byte tokens in Llama-2 and single bytes in the byte-level vocabularies; the top ones are
  // specials.
  const auto ids = *rc::gen::container<std::vector<int32_t>>(rc::gen::weightedOneOf<int32_t>({
      {3, rc::gen::inRange<int32_t>(0, 300)},
      {3, rc::gen::inRange<int32_t>(0, n)},
      {1, rc::gen::inRange<int32_t>(n - 300, n)},
  }));
  check_stream(tok, ids, *rc::gen::arbitrary<bool>());
}

RC_GTEST_PROP(TokenizerProperty, EncodeRejectsExactlyInvalidUtf8, ()) {
  const Tokenizer& tok = need("llama3");
  const auto bytes = *rc::gen::container<std::string>(rc::gen::arbitrary<char>());
  auto ids = tok.encode(bytes);
  const size_t bad = tok::utf8_first_invalid(bytes);
  RC_ASSERT(ids.ok() == (bad == tok::kNpos));
  if (!ids.ok()) RC_ASSERT(ids.status().message().find(cat("offset ", bad)) != std::string::npos);
}

}  // namespace
}  // namespace tailor::test
