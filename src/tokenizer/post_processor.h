// Post-processors of tokenizer.json ("post_processor"), applied when EncodeOptions::add_special_tokens is
// set: TemplateProcessing (BOS/EOS around the sequence), RobertaProcessing / BertProcessing (cls ... sep),
// ByteLevel (offsets only: no effect on ids) and Sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace tailor::tok {

class PostProcessor {
 public:
  PostProcessor(std::vector<int32_t> prefix, std::vector<int32_t> suffix)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}
  void apply(std::vector<int32_t>& ids) const {
    ids.insert(ids.begin(), prefix_.begin(), prefix_.end());
    ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  }
  const std::vector<int32_t>& prefix() const { return prefix_; }
  const std::vector<int32_t>& suffix() const { return suffix_; }

 private:
  std::vector<int32_t> prefix_, suffix_;
};

// Every supported post-processor reduces, for a single sequence, to ids before and after it. nullptr for a
// null j or one that adds nothing.
Result<std::unique_ptr<PostProcessor>> make_post_processor(const nlohmann::json& j, const std::string& path);

}  // namespace tailor::tok
