// Decoders of tokenizer.json ("decoder"): turn the token strings of a sequence back into text, as Hugging
// Face's decode_chain does (ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace tailor::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the list of token strings (some decoders fuse them into one).
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  // What one token becomes in the middle of a sequence: the per-token part of decode_chain without the
  // effects tied to the first token (Metaspace's dropped prefix, Strip) or to neighbours (UTF-8 repair).
  // Bytes, not necessarily valid UTF-8 ("<0xE2>" -> "\xE2").
  virtual void token_bytes(std::string& token) const = 0;
  // True for the plain ByteLevel decoder: decoding is then "concatenate each token's bytes, repair UTF-8",
  // which the tokenizer does from a per-id table without building token strings.
  virtual bool is_byte_level() const { return false; }
  // True when the text a token adds never depends on the tokens after it, so StreamDecoder can emit as it
  // goes. Holds for every decoder of real tokenizers; fails for e.g. Strip with stop > 0 or a multi-character
  // Replace applied after the tokens were fused into one string.
  bool stream_local() const {
    bool fused = false;
    return local(fused);
  }
  // `fused`: an earlier decoder joined the tokens into one string (set by ByteLevel and Fuse).
  virtual bool local(bool& fused) const = 0;
};

// nullptr for a null j.
Result<std::unique_ptr<Decoder>> make_decoder(const nlohmann::json& j, const std::string& path);

}  // namespace tailor::tok
