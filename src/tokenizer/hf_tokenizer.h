// The tokenizer.json pipeline behind the Tokenizer interface:
//   text -> added tokens (raw) -> normalizer -> added tokens (normalized) -> pre-tokenizer -> BPE ->
//   post-processor
// and ids -> token strings -> decoder. Immutable after load, so encode/decode are safe from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tokenizer/added_vocab.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tailor::tok {

class HfTokenizer final : public Tokenizer {
 public:
  // `name` (usually the path) prefixes load errors.
  static Result<std::unique_ptr<HfTokenizer>> load(std::string_view json_text, const std::string& name);

  Result<std::vector<int32_t>> encode(std::string_view text, const EncodeOptions& opt = {}) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  const std::string& token_bytes(int32_t id) const override;
  bool is_special(int32_t id) const override;
  std::string id_to_token(int32_t id) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::optional<int32_t> bos_id() const override { return bos_; }
  std::optional<int32_t> eos_id() const override { return eos_; }
  bool is_byte_token(int32_t id) const override;
  bool decode_is_local() const override { return !decoder_ || decoder_->stream_local(); }

  void set_bos(std::optional<int32_t> id) { bos_ = id; }
  void set_eos(std::optional<int32_t> id) { eos_ = id; }

 private:
  HfTokenizer() = default;
  Status load_added_tokens(const Json& arr);
  void guess_bos_eos();
  // Encodes text between added tokens: normalize, split on normalized added tokens, pre-tokenize, BPE.
  Status encode_text(std::string_view text, bool at_text_start, bool skip_special,
                     std::vector<int32_t>& ids) const;
  Status encode_words(std::string_view text, bool at_text_start, std::vector<int32_t>& ids) const;
  // Spelling of id as the decoder sees it (added content first, then the model's vocabulary); nullptr if
  // unknown.
  const std::string* token_string(int32_t id) const;

  std::string name_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Bpe> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;

  std::vector<AddedToken> added_;     // as listed in tokenizer.json
  std::vector<int32_t> added_index_;  // id -> index into added_, or -1
  StringIdMap added_by_content_;
  TokenMatcher raw_matcher_, normalized_matcher_;
  int32_t vocab_size_ = 0;
  std::optional<int32_t> bos_, eos_;

  // token_bytes() table, built on first use (grammar compilation needs it; plain encode/decode does not).
  mutable std::once_flag bytes_once_;
  mutable std::vector<std::string> token_bytes_;
  // With a ByteLevel decoder: the bytes each id decodes to (special tokens included), built on first decode.
  mutable std::once_flag pieces_once_;
  mutable std::vector<std::string> byte_pieces_;
};

}  // namespace tailor::tok
