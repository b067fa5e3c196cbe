// Normalizers of tokenizer.json ("normalizer"): applied to each stretch of text between added tokens, before
// the pre-tokenizer. Matches Hugging Face tokenizers' NFC/NFD/NFKC/NFKD, Lowercase, Prepend, Replace, Strip,
// StripAccents and Sequence.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "core/status.h"

namespace tailor::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites s in place (s is valid UTF-8 and stays so).
  virtual Status normalize(std::string& s) const = 0;
};

// Builds the normalizer described by j; `path` is its JSON path for error messages
// ("normalizer.normalizers[1]"). A null j yields nullptr (no normalizer).
Result<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& j, const std::string& path);

}  // namespace tailor::tok
