// Fast reader for tokenizer.json. A DOM parse of the 11 MB Qwen3 file takes ~0.4 s, nearly all of it in the
// vocabulary and merges; this reader parses those two straight into vectors and hands every other (small)
// value to nlohmann::json, so a load stays well under the DOM's cost.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace tailor::tok {

struct TokenizerJson {
  Json root = Json::object();  // the document without model.vocab and model.merges
  bool has_model = false;
  bool vocab_is_map = false;  // model.vocab was an object {"token": id} (read into `vocab`)
  std::vector<std::pair<std::string, int64_t>> vocab;
  bool has_merges = false;
  std::vector<std::pair<std::string, std::string>> merges;
};

// `name` (the file) prefixes error messages, which give the byte offset of the problem.
Result<TokenizerJson> scan_tokenizer_json(std::string_view text, const std::string& name);

}  // namespace tailor::tok
