// libFuzzer target: the input bytes are a tokenizer.json. Loading must return a Status for any input; a
// tokenizer that loads must encode, decode and stream-decode short texts without crashing, and keep its own
// invariants (decoded text is valid UTF-8, streaming equals one-shot decoding, ids stay inside the
// vocabulary). Seeds: the "tokenizer_json" strings of tests/data/tokenizer/synthetic.json are small real
// tokenizer.json files (write each to a file of the corpus folder); a dictionary of component names helps the
// mutator.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tailor;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto loaded = Tokenizer::from_json_text(text, "fuzz.json");
  if (!loaded.ok()) {
    if (loaded.status().message().empty()) std::abort();  // every failure must explain itself
    return 0;
  }
  const Tokenizer& tok = **loaded;
  const int32_t n = tok.vocab_size();
  static const char* kTexts[] = {"Hello world",
                                 "  \n\t12 h\xC3\xA9llo \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x8E\x89",
                                 "<s>x</s><|im_start|>", "a", ""};
  for (const char* s : kTexts) {
    for (bool parse : {false, true}) {
      auto ids = tok.encode(s, {.add_special_tokens = true, .parse_special = parse});
      if (!ids.ok()) {
        if (ids.status().message().empty()) std::abort();
        continue;
      }
      for (int32_t id : *ids)
        if (id < 0 || id >= n) std::abort();
      for (bool skip : {false, true}) {
        const std::string once = tok.decode(*ids, skip);
        if (tok::utf8_first_invalid(once) != tok::kNpos) std::abort();
        StreamDecoder sd(tok, skip);
        std::string streamed;
        for (int32_t id : *ids) streamed += sd.push(id);
        streamed += sd.flush();
        if (streamed != once) std::abort();
      }
      for (int32_t id : *ids) (void)tok.token_bytes(id);
    }
  }
  // Arbitrary ids, including ones outside the vocabulary.
  std::vector<int32_t> junk;
  for (size_t i = 0; i < size && i < 24; ++i) junk.push_back(int32_t(data[i]) * 37 % (n + 8) - 4);
  if (tok::utf8_first_invalid(tok.decode(junk)) != tok::kNpos) std::abort();
  for (int32_t id = 0; id < n && id < 64; ++id) {
    (void)tok.id_to_token(id);
    (void)tok.is_special(id);
    (void)tok.token_to_id(tok.id_to_token(id));
  }
  return 0;
}
