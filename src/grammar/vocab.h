// The vocabulary as the grammar matcher sees it: each token's output bytes, the end-of-sequence ids, and the
// tokens a grammar may never produce (control tokens). Built once per tokenizer and shared by every compiled
// grammar; it holds the token trie that mask computation walks.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tailor::grammar {

// All tokens with non-empty bytes that are not excluded, as a trie in depth-first order. Node 0 is the root
// (the empty prefix); a node's subtree is the nodes [i, end[i]).
struct TokenTrie {
  std::vector<uint8_t> byte;        // the byte on the edge into the node
  std::vector<uint16_t> depth;      // prefix length
  std::vector<uint32_t> end;        // one past the node's last descendant
  std::vector<uint32_t> tok_begin;  // tokens whose bytes end at node i: ids[tok_begin[i] .. tok_begin[i + 1])
  std::vector<int32_t> ids;
  uint16_t max_depth = 0;

  size_t size() const { return byte.size(); }
  // The longest token whose bytes are a prefix of `bytes` (its length in *len), or -1.
  int32_t longest_prefix_token(std::string_view bytes, size_t* len) const;
};

class Vocabulary {
 public:
  // token_bytes[i]: what token i adds to the output. eos_ids: tokens that end generation (allowed exactly
  // where the grammar can end). excluded: tokens a grammar never allows (special/control tokens). Tokens with
  // no bytes are excluded too.
  static Result<std::shared_ptr<const Vocabulary>> create(std::vector<std::string> token_bytes,
                                                          std::vector<int32_t> eos_ids,
                                                          std::vector<int32_t> excluded = {});

  int32_t size() const { return int32_t(tokens_.size()); }
  size_t mask_words() const { return (tokens_.size() + 31) / 32; }
  const std::string& token_bytes(int32_t id) const { return tokens_[size_t(id)]; }
  std::span<const int32_t> eos_ids() const { return eos_; }
  bool is_eos(int32_t id) const;
  bool is_excluded(int32_t id) const { return excluded_[size_t(id)]; }
  const TokenTrie& trie() const { return trie_; }
  uint64_t fingerprint() const { return fingerprint_; }  // content hash, for cache keys

 private:
  std::vector<std::string> tokens_;
  std::vector<int32_t> eos_;
  std::vector<bool> excluded_;
  TokenTrie trie_;
  uint64_t fingerprint_ = 0;
};

}  // namespace tailor::grammar
