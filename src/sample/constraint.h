// A token constraint is a sampler stage that masks the vocabulary (grammar-constrained decoding). The engine
// calls fill_mask before sampling and accept after; the grammar module implements it.
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"

namespace tailor {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets bit i of mask (32-bit words, (n_vocab + 31) / 32 of them) for every token allowed next.
  // End-of-sequence ids must be set only where the constrained text may end.
  virtual void fill_mask(std::span<uint32_t> mask) = 0;
  // Advances past `token` (which fill_mask allowed); an error means the token was not allowed.
  virtual Status accept(int32_t token) = 0;
  // True once the text so far is complete and nothing more may follow (generation should stop).
  virtual bool finished() const = 0;
  // The token that starts the shortest way to a complete text (an end-of-sequence id once the text may end),
  // for steering a generation to its end on a token budget; -1 when there is none.
  virtual int32_t finishing_token() { return -1; }
};

}  // namespace tailor
