// Added tokens of tokenizer.json ("added_tokens"): matched in the text before the model runs,
// leftmost-longest as Hugging Face's Aho-Corasick does, with the lstrip / rstrip / single_word options.
// Tokens with normalized=false are matched in the raw text; the others in the normalized text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tailor::tok {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// A stretch of text: either an added token (id >= 0) or plain text to normalize and encode (id < 0).
struct Segment {
  size_t begin = 0, end = 0;
  int32_t id = -1;
};

// A byte trie over token contents with leftmost-longest search.
class TokenMatcher {
 public:
  // `contents[i]` is what to match for tokens[i] (the normalized content for normalized tokens).
  void build(const std::vector<const AddedToken*>& tokens, const std::vector<std::string>& contents);
  bool empty() const { return tokens_.empty(); }
  // Splits text into segments covering it entirely. `skip_special`: special tokens are found but left as text
  // (HF encode_special_tokens), non-special added tokens are still extracted.
  void split(std::string_view text, bool skip_special, std::vector<Segment>& out) const;

 private:
  struct Node {
    int32_t token = -1;  // index into tokens_ when a content ends here
  };
  int32_t child(int32_t node, uint8_t b) const;
  std::vector<Node> nodes_;
  std::vector<int32_t> root_;                    // root children by byte (-1: none)
  std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child, below the root
  std::vector<const AddedToken*> tokens_;
};

}  // namespace tailor::tok
