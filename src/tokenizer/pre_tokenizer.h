// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): split normalized text into the words the model encodes
// one by one. Pieces are byte ranges of one buffer so that splitting never copies text.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tailor::tok {

struct Piece {
  uint32_t begin = 0, end = 0;  // byte range in PieceList::buf
  bool at_text_start = false;   // begins at offset 0 of the original text (Metaspace prepend_scheme "first")
};

struct PieceList {
  std::string buf;
  std::vector<Piece> pieces;
  std::string_view text(const Piece& p) const {
    return std::string_view(buf).substr(p.begin, p.end - p.begin);
  }
  // Resets to one piece holding `text`.
  void reset(std::string_view text, bool at_text_start);
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual Status apply(PieceList& pl) const = 0;
  // True for ByteLevel (or a Sequence ending with it): the model then works on raw bytes, the byte-to-unicode
  // mapping being folded into the vocabulary at load time instead of applied to every piece.
  virtual bool is_byte_level() const { return false; }
};

// nullptr for a null j. `path` names the component in errors ("pre_tokenizer.pretokenizers[0]").
Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const nlohmann::json& j, const std::string& path);

// How a Split keeps the delimiters it finds (HF SplitDelimiterBehavior).
enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

}  // namespace tailor::tok
