// Hugging Face tokenizer.json (the `tokenizers` format): BPE models (byte-level as GPT-2/Llama-3/Qwen, and
// SentencePiece-style with byte_fallback as Llama-2/Mistral), normalizers, pre-tokenizers, post-processors,
// decoders and added tokens. This header is the contract other modules use (engine, grammar, server).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tailor {

struct EncodeOptions {
  bool add_special_tokens = true;  // apply the post-processor (e.g. BOS for Llama)
  bool parse_special = false;      // recognise special added tokens ("<|im_start|>") written in the text
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // tokenizer.json alone.
  static Result<std::unique_ptr<Tokenizer>> from_file(const std::string& tokenizer_json_path);
  static Result<std::unique_ptr<Tokenizer>> from_json_text(std::string_view json_text,
                                                           const std::string& name);
  // A model folder: tokenizer.json, plus tokenizer_config.json for bos/eos/pad names when present.
  static Result<std::unique_ptr<Tokenizer>> from_model_dir(const std::string& dir);

  // Fails only on invalid UTF-8 input (the message gives the byte offset).
  virtual Result<std::vector<int32_t>> encode(std::string_view text, const EncodeOptions& opt = {}) const = 0;
  // Decodes ids to text (invalid UTF-8 from partial byte tokens becomes U+FFFD, as HF does).
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const = 0;

  // Number of ids (max id + 1, including added tokens).
  virtual int32_t vocab_size() const = 0;
  // The exact bytes token `id` contributes to the output when decoded mid-sequence (byte-level mapping
  // undone, "▁" -> " ", "<0x0A>" -> "\n"). Special tokens return their content. For grammar-constrained
  // decoding.
  virtual const std::string& token_bytes(int32_t id) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  // The token's string as stored in the vocabulary ("Ġhello"), and the reverse lookup.
  virtual std::string id_to_token(int32_t id) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;

  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;

  // True for SentencePiece byte tokens ("<0xE2>"). decode() validates a whole run of them at once (an invalid
  // run becomes one U+FFFD per byte), so StreamDecoder holds output back until such a run ends.
  virtual bool is_byte_token(int32_t id) const { return false; }
  // False when the decoder's output for a token can depend on later tokens (no real tokenizer's does): then
  // StreamDecoder holds all text back until flush() rather than emit text that might change.
  virtual bool decode_is_local() const { return true; }
};

// Streaming detokenizer: push ids one at a time, get back only complete UTF-8 text. The concatenation of all
// push() results and flush() equals tokenizer.decode(all ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special_tokens = false);
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  // Window of recent ids, starting at the last (non-skipped) token of the previous emission: the text a new
  // id adds is decode(ids_ + id) minus decode(ids_), so decoders that treat the first token specially (Strip,
  // Metaspace) see the same context as in a one-shot decode, and the window stays a few tokens long.
  std::vector<int32_t> ids_;
  size_t emitted_ = 0;  // bytes of decode(ids_) already returned
};

}  // namespace tailor
