// TEMPORARY fallback while src/tokenizer is being written: reads a byte-level BPE tokenizer.json (Qwen,
// Llama-3) and undoes the GPT-2 byte-to-unicode mapping to get each token's bytes. The grammar tests and the
// benchmark switch to Tokenizer::token_bytes() once the tokenizer module links.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/json.h"
#include "grammar/utf8.h"

namespace tailor::grammar::testing {

struct HfVocab {
  std::vector<std::string> bytes;
  std::vector<int32_t> special;  // control tokens (never allowed by a grammar)
  std::vector<int32_t> eos;
};

inline Result<HfVocab> read_hf_byte_level_vocab(const std::string& path,
                                                const std::vector<std::string>& eos_names) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found(cat(path, ": cannot open"));
  std::stringstream ss;
  ss << f.rdbuf();
  TAILOR_ASSIGN_OR_RETURN(Json j, parse_json(ss.str(), path));
  // GPT-2's byte -> code point table, inverted.
  std::unordered_map<uint32_t, uint8_t> u2b;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    u2b[printable ? uint32_t(b) : uint32_t(256 + n++)] = uint8_t(b);
  }
  HfVocab v;
  const Json& vocab = j["model"]["vocab"];
  size_t size = 0;
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    size = std::max(size, size_t(it.value().get<int>()) + 1);
  for (const Json& a : j["added_tokens"]) size = std::max(size, size_t(a["id"].get<int>()) + 1);
  v.bytes.resize(size);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    std::string_view s = it.key();
    std::string out;
    while (!s.empty()) {
      uint32_t cp;
      size_t k = decode_utf8(s, &cp);
      if (k == 0) return corrupt(cat(path, ": invalid UTF-8 in vocabulary"));
      auto m = u2b.find(cp);
      if (m == u2b.end()) return corrupt(cat(path, ": token ", it.key(), " is not byte-level"));
      out += char(m->second);
      s.remove_prefix(k);
    }
    v.bytes[size_t(it.value().get<int>())] = out;
  }
  for (const Json& a : j["added_tokens"]) {
    int id = a["id"].get<int>();
    std::string content = a["content"].get<std::string>();
    v.bytes[size_t(id)] = content;
    if (a.value("special", false)) v.special.push_back(id);
    for (const std::string& e : eos_names) {
      if (content == e) v.eos.push_back(id);
    }
  }
  return v;
}

}  // namespace tailor::grammar::testing
