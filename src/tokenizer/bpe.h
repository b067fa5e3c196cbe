// The BPE model of tokenizer.json ("model": {"type": "BPE"}): vocabulary, ranked merges, unk / byte_fallback
// / ignore_merges, and a per-word merge loop equivalent to Hugging Face's (a min-heap of (rank, position)
// over a linked list of symbols), so results match it exactly, including tie-breaking.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "tokenizer/flat_map.h"

namespace tailor::tok {

struct BpeConfig {
  // Vocabulary strings as written in tokenizer.json, indexed by id (holes are empty and absent from lookups).
  std::vector<std::string> vocab;
  std::vector<bool> present;  // present[id]: the vocabulary defines id
  std::vector<std::pair<std::string, std::string>> merges;
  std::string unk_token;  // empty: none
  bool has_unk = false;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::string continuing_subword_prefix, end_of_word_suffix;
  // Words reach the model as raw bytes and the vocabulary's byte-level strings ("Ġthe") are mapped back to
  // bytes
  // (" the") at load: set when the pre-tokenizer ends with ByteLevel.
  bool byte_level = false;
};

class Bpe {
 public:
  static Result<std::unique_ptr<Bpe>> create(BpeConfig cfg);

  // Appends the ids of one pre-tokenized word (model alphabet: raw bytes if byte_level, else UTF-8 text).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  int32_t size() const { return int32_t(vocab_.size()); }  // max id + 1
  const std::string& token(int32_t id) const { return vocab_[size_t(id)]; }
  bool has(int32_t id) const { return id >= 0 && id < size() && present_[size_t(id)]; }
  // Lookup by the token's tokenizer.json spelling ("Ġthe"); -1 if absent.
  int32_t find(std::string_view token) const;
  bool byte_level() const { return byte_level_; }
  // Id of the byte-fallback token "<0xAB>" for byte b, or -1.
  int32_t byte_fallback_id(uint8_t b) const { return byte_fallback_ids_[b]; }
  // Byte value of a byte-fallback token id, or -1.
  int byte_of_fallback_id(int32_t id) const;

 private:
  Bpe() = default;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  std::vector<std::string> vocab_;
  std::vector<bool> present_;
  // Model alphabet -> id: raw bytes when byte_level (" the"), else the tokenizer.json spelling. A byte-level
  // vocabulary's few spellings outside the byte alphabet (none in real ones) go to extra_names_ instead.
  StringIdMap alpha_;
  StringIdMap extra_names_;
  PairMap merges_;
  std::array<int32_t, 256> byte_ids_{};           // byte_level: id of each single byte
  std::array<int32_t, 256> byte_fallback_ids_{};  // "<0xAB>" tokens
  std::unordered_map<int32_t, int> fallback_byte_of_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false, byte_level_ = false;
  std::string prefix_, suffix_;

  // Word cache (HF caches too): sharded so that concurrent encodes rarely contend.
  static constexpr size_t kShards = 32;
  static constexpr size_t kMaxEntriesPerShard = 8192;
  static constexpr size_t kMaxCachedWordBytes = 64;
  struct WordHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return size_t(hash_bytes(s)); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, WordHash, std::equal_to<>> map;
  };
  std::unique_ptr<Shard[]> cache_ = std::make_unique<Shard[]>(kShards);
};

}  // namespace tailor::tok
