#include "model/runner.h"

namespace tailor {

Status Runner::forward_sample(std::span<const SeqBatchEntry> batch, std::span<const DeviceSampling> params,
                              std::vector<int32_t>& ids) {
  if (params.size() != batch.size())
    return invalid_argument(cat("forward_sample: ", params.size(), " sampling parameter sets for ",
                                batch.size(), " sequences (one per sequence)"));
  for (const DeviceSampling& d : params)
    TAILOR_RETURN_IF_ERROR(validate(sampler_params(d)).with_context("forward_sample: "));
  std::vector<float> logits;
  TAILOR_RETURN_IF_ERROR(forward_last_logits(batch, logits));
  const size_t n_vocab = size_t(hparams().n_vocab);
  ids.resize(batch.size());
  for (size_t i = 0; i < batch.size(); ++i)
    ids[i] = sample_row(params[i], {logits.data() + i * n_vocab, n_vocab});
  return {};
}

}  // namespace tailor
