// PCRE2 (UTF + UCP, JIT-compiled) for the Split pre-tokenizer and the Replace normalizer/decoder. Hugging
// Face tokenizers runs these patterns with Oniguruma; PCRE2 with UCP agrees on the classes real tokenizers
// use
// (\p{L}, \p{N}, \s, lookahead), see tests/tokenizer for the fixtures that hold us to it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tailor::tok {

class Regex {
 public:
  // `where` names the pattern's place in tokenizer.json for error messages
  // ("pre_tokenizer.pretokenizers[0]"). \s and \w are rewritten to explicit Unicode classes before compiling:
  // PCRE2's UCP \s also matches U+180E, which Unicode (and HF's engines) no longer count as White_Space, and
  // its \w leaves out marks and joiners.
  static Result<std::unique_ptr<Regex>> compile(std::string_view pattern, const std::string& where);
  // The rewrite alone (exposed for tests).
  static std::string translate(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls on_match(start, end) for each leftmost non-overlapping match in `text` (valid UTF-8), scanning left
  // to right. Empty matches are reported and skipped past by one code point, as Rust's find_iter does. Fails
  // only if PCRE2 gives up (match limit / JIT stack), which the message reports.
  Status for_each_match(std::string_view text, const std::function<void(size_t, size_t)>& on_match) const;
  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace tailor::tok
