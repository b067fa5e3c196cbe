#include "model/split_runner.h"

namespace tailor {

namespace {

class SplitRunner final : public Runner {
 public:
  SplitRunner(std::unique_ptr<Runner> front, std::string front_name, std::unique_ptr<Runner> back,
              std::string back_name)
      : front_(std::move(front)),
        back_(std::move(back)),
        front_name_(std::move(front_name)),
        back_name_(std::move(back_name)) {
    // The engine reads n_ctx / n_slots (equal on both sides); dtypes are the back's (the logits' side).
    opt_ = back_->options();
    opt_.layer_begin = 0;
    opt_.layer_end = -1;
  }

  Status forward(std::span<const SeqBatchEntry> batch, std::vector<float>& logits) override {
    if (batch.empty()) {
      logits.clear();
      return {};
    }
    TAILOR_RETURN_IF_ERROR(back_->embed(batch, x_));
    TAILOR_RETURN_IF_ERROR(front_->forward_layers(batch, x_));
    return back_->forward_from_hidden(batch, x_, logits);
  }

  const HParams& hparams() const override { return back_->hparams(); }
  const RunnerOptions& options() const override { return opt_; }
  std::string describe() const override {
    const int n = layer_end_of(front_->options(), hparams()), L = hparams().n_layer;
    return cat("split: ", n, "/", L, " layers on ", front_name_, " (", front_->describe(), "), ", L - n,
               " on ", back_name_, " (", back_->describe(), ")");
  }

  const Runner* front() const { return front_.get(); }
  const Runner* back() const { return back_.get(); }

 private:
  std::unique_ptr<Runner> front_, back_;
  std::string front_name_, back_name_;
  RunnerOptions opt_;
  std::vector<float> x_;  // residual stream [n_tokens, n_embd], grown to the largest batch and reused
};

}  // namespace

Result<std::unique_ptr<Runner>> make_split_runner(std::unique_ptr<Runner> front, std::string front_name,
                                                  std::unique_ptr<Runner> back, std::string back_name) {
  if (!front || !back) return invalid_argument("split runner: both parts are needed");
  const HParams& hp = back->hparams();
  const RunnerOptions &fo = front->options(), &bo = back->options();
  const int n = layer_end_of(fo, front->hparams()), L = hp.n_layer;
  if (front->hparams().n_layer != L || front->hparams().n_embd != hp.n_embd ||
      front->hparams().n_vocab != hp.n_vocab)
    return invalid_argument("split runner: the two parts run different models");
  if (fo.layer_begin != 0 || n < 1 || n >= L)
    return invalid_argument(cat("split runner: the ", front_name,
                                " part must hold layers [0, N) with 1 <= N < ", L, ", not [", fo.layer_begin,
                                ", ", n, "); with N = 0 or ", L, " use one runner instead"));
  if (bo.layer_begin != n || layer_end_of(bo, hp) != L)
    return invalid_argument(cat("split runner: the ", back_name, " part must hold layers [", n, ", ", L,
                                "), not [", bo.layer_begin, ", ", layer_end_of(bo, hp), ")"));
  if (fo.n_ctx != bo.n_ctx || fo.n_slots != bo.n_slots)
    return invalid_argument(cat("split runner: both parts need the same context and slots (", fo.n_ctx, " x ",
                                fo.n_slots, " vs ", bo.n_ctx, " x ", bo.n_slots, ")"));
  return std::unique_ptr<Runner>(std::make_unique<SplitRunner>(std::move(front), std::move(front_name),
                                                               std::move(back), std::move(back_name)));
}

const Runner* split_front(const Runner& r) {
  const auto* s = dynamic_cast<const SplitRunner*>(&r);
  return s ? s->front() : nullptr;
}

const Runner* split_back(const Runner& r) {
  const auto* s = dynamic_cast<const SplitRunner*>(&r);
  return s ? s->back() : nullptr;
}

}  // namespace tailor
