// The CPU forward pass for the Llama family (Llama, Qwen2, Qwen3, Granite, Mistral), batched over sequences.
// Weights are used in place from the mmap when already in the storage dtype; otherwise converted once at
// load.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "backend/cpu/ops.h"
#include "core/cpu_features.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "model/rope.h"
#include "model/runner.h"

namespace tailor {

namespace {

// A matrix as the matmul reads it: rows of k elements of `dtype`, either in the mmap or in `owned`.
struct Mat {
  const void* data = nullptr;
  DType dtype = DType::f32;
  std::vector<uint8_t> owned;
};

struct Layer {
  std::vector<float> attn_norm;       // [D]
  Mat wq, wk, wv, wo;                 // [Q, D], [KV, D], [KV, D], [D, Q]
  std::vector<float> bq, bk, bv, bo;  // [Q], [KV], [KV], [D] (empty when absent)
  std::vector<float> q_norm, k_norm;  // [head_dim] (Qwen3)
  std::vector<float> ffn_norm;        // [D]
  Mat w_gate, w_up, w_down;           // [F, D], [F, D], [D, F]
  std::vector<float> b_gate, b_up, b_down;
};

class CpuRunner final : public Runner {
 public:
  CpuRunner(std::shared_ptr<const ModelSpec> spec, const RunnerOptions& opt)
      : spec_(std::move(spec)), opt_(opt) {}

  Status init() {
    const HParams& hp = spec_->hp;
    if (opt_.n_ctx <= 0 || opt_.n_slots <= 0)
      return invalid_argument("runner: n_ctx and n_slots must be > 0");
    if (opt_.weight_dtype != DType::f32 && opt_.weight_dtype != DType::f16 &&
        opt_.weight_dtype != DType::bf16)
      return unsupported(
          cat("CPU runner: weight dtype ", dtype_name(opt_.weight_dtype), " is not supported"));
    if (opt_.act_dtype != DType::f32 && opt_.act_dtype != DType::f16 && opt_.act_dtype != DType::bf16)
      return unsupported(
          cat("CPU runner: activation dtype ", dtype_name(opt_.act_dtype), " is not supported"));
    if (opt_.kv_dtype != DType::f32 && opt_.kv_dtype != DType::f16 && opt_.kv_dtype != DType::bf16)
      return unsupported(cat("CPU runner: KV-cache dtype ", dtype_name(opt_.kv_dtype), " is not supported"));
    TAILOR_RETURN_IF_ERROR(check_layer_range(opt_, hp, "CPU runner"));
    lb_ = opt_.layer_begin;
    le_ = layer_end_of(opt_, hp);
    // The embedding is loaded whatever the range (in place from the mmap): a split embeds on the host.
    TAILOR_RETURN_IF_ERROR(load_mat("model.embed_tokens.weight", embed_, /*keep_stored=*/true));
    layers_.resize(size_t(le_ - lb_));
    for (int i = lb_; i < le_; ++i) {
      Layer& L = layers_[size_t(i - lb_)];
      const std::string p = cat("model.layers.", i, ".");
      TAILOR_RETURN_IF_ERROR(load_vec(p + "input_layernorm.weight", L.attn_norm));
      TAILOR_RETURN_IF_ERROR(load_mat(p + "self_attn.q_proj.weight", L.wq));
      TAILOR_RETURN_IF_ERROR(load_mat(p + "self_attn.k_proj.weight", L.wk));
      TAILOR_RETURN_IF_ERROR(load_mat(p + "self_attn.v_proj.weight", L.wv));
      TAILOR_RETURN_IF_ERROR(load_mat(p + "self_attn.o_proj.weight", L.wo));
      if (hp.attention_bias) {
        TAILOR_RETURN_IF_ERROR(load_vec(p + "self_attn.q_proj.bias", L.bq));
        TAILOR_RETURN_IF_ERROR(load_vec(p + "self_attn.k_proj.bias", L.bk));
        TAILOR_RETURN_IF_ERROR(load_vec(p + "self_attn.v_proj.bias", L.bv));
      }
      if (hp.o_proj_bias) TAILOR_RETURN_IF_ERROR(load_vec(p + "self_attn.o_proj.bias", L.bo));
      if (hp.qk_norm) {
        TAILOR_RETURN_IF_ERROR(load_vec(p + "self_attn.q_norm.weight", L.q_norm));
        TAILOR_RETURN_IF_ERROR(load_vec(p + "self_attn.k_norm.weight", L.k_norm));
      }
      TAILOR_RETURN_IF_ERROR(load_vec(p + "post_attention_layernorm.weight", L.ffn_norm));
      TAILOR_RETURN_IF_ERROR(load_mat(p + "mlp.gate_proj.weight", L.w_gate));
      TAILOR_RETURN_IF_ERROR(load_mat(p + "mlp.up_proj.weight", L.w_up));
      TAILOR_RETURN_IF_ERROR(load_mat(p + "mlp.down_proj.weight", L.w_down));
      if (hp.mlp_bias) {
        TAILOR_RETURN_IF_ERROR(load_vec(p + "mlp.gate_proj.bias", L.b_gate));
        TAILOR_RETURN_IF_ERROR(load_vec(p + "mlp.up_proj.bias", L.b_up));
        TAILOR_RETURN_IF_ERROR(load_vec(p + "mlp.down_proj.bias", L.b_down));
      }
    }
    if (le_ == hp.n_layer) {
      TAILOR_RETURN_IF_ERROR(load_vec("model.norm.weight", out_norm_));
      if (!hp.tie_word_embeddings) TAILOR_RETURN_IF_ERROR(load_mat("lm_head.weight", lm_head_));
    }
    inv_freq_ = rope_inv_freq(hp);
    // KV cache of this runner's layers: [slot][layer - layer_begin][k|v][n_head_kv, n_ctx, head_dim],
    // allocated once.
    kv_stride_ =
        dtype_row_bytes(opt_.kv_dtype, uint64_t(hp.n_head_kv) * uint64_t(opt_.n_ctx) * uint64_t(hp.head_dim));
    const uint64_t total = kv_stride_ * 2 * uint64_t(le_ - lb_) * uint64_t(opt_.n_slots);
    try {
      kv_.assign(total, 0);
    } catch (const std::bad_alloc&) {
      return out_of_memory(
          cat("KV cache of ", total / (1 << 20), " MiB does not fit in RAM; use a smaller --ctx"));
    }
    return {};
  }

  Status forward(std::span<const SeqBatchEntry> batch, std::vector<float>& logits) override {
    if (lb_ != 0 || le_ != spec_->hp.n_layer)
      return unsupported(cat("forward: this CPU runner holds layers [", lb_, ", ", le_,
                             ") only; a split chains embed / forward_layers / forward_from_hidden"));
    TAILOR_ASSIGN_OR_RETURN(const Counts n, check_batch(batch));
    prepare(batch, n.tokens);
    embed_tokens(n.tokens);
    TAILOR_RETURN_IF_ERROR(run_layers(batch, n.tokens));
    head(batch, n.out, logits);
    return {};
  }

  Status embed(std::span<const SeqBatchEntry> batch, std::vector<float>& x) override {
    TAILOR_ASSIGN_OR_RETURN(const Counts n, check_batch(batch));
    prepare(batch, n.tokens);
    embed_tokens(n.tokens);
    const int64_t D = spec_->hp.n_embd;
    x.assign(x_.begin(), x_.begin() + n.tokens * D);
    return {};
  }

  Status forward_layers(std::span<const SeqBatchEntry> batch, std::vector<float>& x) override {
    TAILOR_ASSIGN_OR_RETURN(const Counts n, check_batch(batch, x.size()));
    prepare(batch, n.tokens);
    std::copy(x.begin(), x.end(), x_.begin());
    TAILOR_RETURN_IF_ERROR(run_layers(batch, n.tokens));
    std::copy(x_.begin(), x_.begin() + int64_t(x.size()), x.begin());
    return {};
  }

  Status forward_from_hidden(std::span<const SeqBatchEntry> batch, std::span<const float> x,
                             std::vector<float>& logits) override {
    if (le_ != spec_->hp.n_layer)
      return unsupported(cat("forward_from_hidden: this CPU runner stops at layer ", le_, " of ",
                             spec_->hp.n_layer, " and has no lm_head; use forward_layers"));
    TAILOR_ASSIGN_OR_RETURN(const Counts n, check_batch(batch, x.size()));
    prepare(batch, n.tokens);
    std::copy(x.begin(), x.end(), x_.begin());
    TAILOR_RETURN_IF_ERROR(run_layers(batch, n.tokens));
    head(batch, n.out, logits);
    return {};
  }

  void set_check(bool on) { check_finite_ = on; }
  const HParams& hparams() const override { return spec_->hp; }
  const RunnerOptions& options() const override { return opt_; }
  std::string describe() const override {
    std::string range;
    if (lb_ != 0 || le_ != spec_->hp.n_layer) range = cat(", layers ", lb_, "-", le_ - 1);
    return cat("cpu: ", ThreadPool::global().size(), " threads, SIMD [", cpu_features().list(), "], weights ",
               dtype_name(opt_.weight_dtype), ", KV ", dtype_name(opt_.kv_dtype), range);
  }

 private:
  struct Counts {
    int64_t tokens = 0;  // tokens in the batch
    int64_t out = 0;     // logits rows forward() returns
  };

  // Validates the batch (slots, token ids, positions) and, when a residual stream comes with it, its size.
  Result<Counts> check_batch(std::span<const SeqBatchEntry> batch, std::optional<size_t> x_size = {}) const {
    const HParams& hp = spec_->hp;
    Counts c;
    for (const auto& e : batch) {
      if (e.slot < 0 || e.slot >= opt_.n_slots)
        return invalid_argument(cat("forward: slot ", e.slot, " outside [0, ", opt_.n_slots, ")"));
      if (e.tokens.size() != e.pos.size() || e.tokens.empty())
        return invalid_argument(
            "forward: each entry needs as many positions as tokens, and at least one token");
      for (size_t i = 0; i < e.tokens.size(); ++i) {
        if (e.tokens[i] < 0 || e.tokens[i] >= hp.n_vocab)
          return invalid_argument(
              cat("forward: token id ", e.tokens[i], " outside the vocabulary [0, ", hp.n_vocab, ")"));
        if (e.pos[i] < 0 || e.pos[i] >= opt_.n_ctx)
          return invalid_argument(cat("forward: position ", e.pos[i], " outside the context [0, ", opt_.n_ctx,
                                      "); start a new sequence or raise --ctx"));
      }
      c.tokens += int64_t(e.tokens.size());
      c.out += e.all_logits ? int64_t(e.tokens.size()) : 1;
    }
    if (x_size && *x_size != size_t(c.tokens * hp.n_embd))
      return invalid_argument(cat("forward: the residual stream has ", *x_size, " values; the batch's ",
                                  c.tokens, " tokens need ", c.tokens, " x ", hp.n_embd));
    return c;
  }

  // Scratch for T tokens, and the batch's token ids and positions in one list each.
  void prepare(std::span<const SeqBatchEntry> batch, int64_t T) {
    const HParams& hp = spec_->hp;
    const int64_t D = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff;
    grow(x_, T * D);
    grow(xn_, T * D);
    grow(q_, T * Q);
    grow(k_, T * KV);
    grow(v_, T * KV);
    grow(att_, T * Q);
    grow(tmp_, T * D);
    grow(gate_, T * F);
    grow(up_, T * F);
    ids_.clear();
    pos_.clear();
    for (const auto& e : batch) {
      ids_.insert(ids_.end(), e.tokens.begin(), e.tokens.end());
      pos_.insert(pos_.end(), e.pos.begin(), e.pos.end());
    }
  }

  // x = embedding(ids) * embedding_multiplier
  void embed_tokens(int64_t T) {
    const HParams& hp = spec_->hp;
    cpu::embedding(x_.data(), embed_.data, embed_.dtype, ids_.data(), T, hp.n_embd, hp.embedding_multiplier);
    rnd(x_, T * hp.n_embd);
  }

  // The decoder layers [layer_begin, layer_end) on x_ (T tokens), in place.
  Status run_layers(std::span<const SeqBatchEntry> batch, int64_t T) {
    const HParams& hp = spec_->hp;
    const int64_t D = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff, hd = hp.head_dim;
    for (int l = lb_; l < le_; ++l) {
      const Layer& L = layers_[size_t(l - lb_)];
      // x = x + attn(rms_norm(x)) * residual_multiplier
      cpu::rms_norm(xn_.data(), x_.data(), L.attn_norm.data(), T, D, hp.rms_norm_eps);
      rnd(xn_, T * D);
      mm(q_.data(), xn_.data(), L.wq, L.bq, T, Q, D);
      mm(k_.data(), xn_.data(), L.wk, L.bk, T, KV, D);
      mm(v_.data(), xn_.data(), L.wv, L.bv, T, KV, D);
      rnd(q_, T * Q), rnd(k_, T * KV), rnd(v_, T * KV);
      if (hp.qk_norm) {  // Qwen3: per-head RMSNorm of q and k, before RoPE
        cpu::rms_norm(q_.data(), q_.data(), L.q_norm.data(), T * hp.n_head, hd, hp.rms_norm_eps);
        cpu::rms_norm(k_.data(), k_.data(), L.k_norm.data(), T * hp.n_head_kv, hd, hp.rms_norm_eps);
        rnd(q_, T * Q), rnd(k_, T * KV);
      }
      cpu::rope(q_.data(), pos_.data(), inv_freq_.data(), T, hp.n_head, int(hd));
      cpu::rope(k_.data(), pos_.data(), inv_freq_.data(), T, hp.n_head_kv, int(hd));
      rnd(q_, T * Q), rnd(k_, T * KV);
      int64_t t0 = 0;
      for (const auto& e : batch) {
        const int64_t n = int64_t(e.tokens.size());
        void* kc = kv_ptr(e.slot, l, 0);
        void* vc = kv_ptr(e.slot, l, 1);
        cpu::kv_store(kc, opt_.kv_dtype, opt_.n_ctx, k_.data() + t0 * KV, e.pos.data(), n, hp.n_head_kv,
                      int(hd));
        cpu::kv_store(vc, opt_.kv_dtype, opt_.n_ctx, v_.data() + t0 * KV, e.pos.data(), n, hp.n_head_kv,
                      int(hd));
        cpu::attention(att_.data() + t0 * Q, q_.data() + t0 * Q, kc, vc, opt_.kv_dtype, opt_.n_ctx,
                       e.pos.data(), n, hp.n_head, hp.n_head_kv, int(hd), hp.attn_scale());
        t0 += n;
      }
      rnd(att_, T * Q);
      mm(tmp_.data(), att_.data(), L.wo, L.bo, T, D, Q);
      rnd(tmp_, T * D);
      cpu::add_scaled(x_.data(), tmp_.data(), hp.residual_multiplier, T * D);
      rnd(x_, T * D);
      // x = x + down(silu(gate(n)) * up(n)) * residual_multiplier,  n = rms_norm(x)
      cpu::rms_norm(xn_.data(), x_.data(), L.ffn_norm.data(), T, D, hp.rms_norm_eps);
      rnd(xn_, T * D);
      mm(gate_.data(), xn_.data(), L.w_gate, L.b_gate, T, F, D);
      mm(up_.data(), xn_.data(), L.w_up, L.b_up, T, F, D);
      rnd(gate_, T * F), rnd(up_, T * F);
      cpu::silu_mul(gate_.data(), gate_.data(), up_.data(), T * F);
      rnd(gate_, T * F);
      mm(tmp_.data(), gate_.data(), L.w_down, L.b_down, T, D, F);
      rnd(tmp_, T * D);
      cpu::add_scaled(x_.data(), tmp_.data(), hp.residual_multiplier, T * D);
      rnd(x_, T * D);
      if (check_finite_) TAILOR_RETURN_IF_ERROR(check_finite(x_.data(), T * D, l));
    }
    check_finite_ = false;
    return {};
  }

  // Final norm and lm_head only for the rows whose logits are wanted (n_out of them).
  void head(std::span<const SeqBatchEntry> batch, int64_t n_out, std::vector<float>& logits) {
    const HParams& hp = spec_->hp;
    const int64_t D = hp.n_embd;
    grow(sel_, n_out * D);
    int64_t t0 = 0, r = 0;
    for (const auto& e : batch) {
      const int64_t n = int64_t(e.tokens.size());
      const int64_t first = e.all_logits ? t0 : t0 + n - 1;
      for (int64_t t = first; t < t0 + n; ++t, ++r)
        std::memcpy(&sel_[size_t(r * D)], &x_[size_t(t * D)], D * 4);
      t0 += n;
    }
    cpu::rms_norm(sel_.data(), sel_.data(), out_norm_.data(), n_out, D, hp.rms_norm_eps);
    rnd(sel_, n_out * D);
    logits.resize(size_t(n_out * hp.n_vocab));
    const Mat& head = hp.tie_word_embeddings ? embed_ : lm_head_;
    cpu::matmul(logits.data(), sel_.data(), head.data, head.dtype, nullptr, n_out, hp.n_vocab, D);
    if (hp.logits_scaling != 1.0f) {
      const float inv = 1.0f / hp.logits_scaling;
      for (float& v : logits) v *= inv;
    }
    rnd(logits, int64_t(logits.size()));
  }

  // Rounds an activation buffer to the compute dtype (no-op for f32).
  void rnd(std::vector<float>& v, int64_t n) const {
    if (opt_.act_dtype == DType::bf16) {
      for (int64_t i = 0; i < n; ++i) v[size_t(i)] = bf16_to_f32(f32_to_bf16(v[size_t(i)]));
    } else if (opt_.act_dtype == DType::f16) {
      for (int64_t i = 0; i < n; ++i) v[size_t(i)] = f16_to_f32(f32_to_f16(v[size_t(i)]));
    }
  }

  static void grow(std::vector<float>& v, int64_t n) {
    if (int64_t(v.size()) < n) v.resize(size_t(n));
  }

  void mm(float* y, const float* x, const Mat& w, const std::vector<float>& b, int64_t m, int64_t n,
          int64_t k) {
    cpu::matmul(y, x, w.data, w.dtype, b.empty() ? nullptr : b.data(), m, n, k);
  }

  void* kv_ptr(int slot, int layer, int which) {
    const uint64_t idx = (uint64_t(slot) * uint64_t(le_ - lb_) + uint64_t(layer - lb_)) * 2 + uint64_t(which);
    return kv_.data() + idx * kv_stride_;
  }

  Status check_finite(const float* x, int64_t n, int layer) {
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(x[i]))
        return internal_error(cat("non-finite activation (", x[i], ") after layer ", layer,
                                  " on the first forward pass: the weights overflow in ",
                                  dtype_name(opt_.weight_dtype), "; try --dtype f32 or bf16"));
    return {};
  }

  Status load_mat(const std::string& name, Mat& m, bool keep_stored = false) {
    const SafeTensor* t = spec_->weights->find(name);
    if (!t) return not_found(cat(spec_->dir, ": tensor \"", name, "\" is missing"));
    // The embedding table is read one row per token: keep its stored dtype (no copy) unless it is tied to
    // lm_head and the matmul wants another dtype.
    const DType want = (keep_stored && !spec_->hp.tie_word_embeddings) ? t->dtype : opt_.weight_dtype;
    if (t->dtype == want) {
      m.data = t->data;
      m.dtype = t->dtype;
      return {};
    }
    const uint64_t n = uint64_t(t->shape.numel());
    m.owned.resize(dtype_row_bytes(want, n));
    // Convert in slices so large tensors use every core.
    const int64_t chunk = 1 << 16;
    ThreadPool::global().parallel_for(int64_t((n + chunk - 1) / chunk), 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        const uint64_t off = uint64_t(c) * chunk, len = std::min<uint64_t>(chunk, n - off);
        convert_row(t->data + dtype_row_bytes(t->dtype, off), t->dtype,
                    m.owned.data() + dtype_row_bytes(want, off), want, len);
      }
    });
    m.data = m.owned.data();
    m.dtype = want;
    return {};
  }

  Status load_vec(const std::string& name, std::vector<float>& v) {
    const SafeTensor* t = spec_->weights->find(name);
    if (!t) return not_found(cat(spec_->dir, ": tensor \"", name, "\" is missing"));
    v.resize(size_t(t->shape.numel()));
    convert_row(t->data, t->dtype, v.data(), DType::f32, v.size());
    return {};
  }

  std::shared_ptr<const ModelSpec> spec_;
  RunnerOptions opt_;
  Mat embed_, lm_head_;
  std::vector<Layer> layers_;
  std::vector<float> out_norm_, inv_freq_;
  std::vector<uint8_t> kv_;
  uint64_t kv_stride_ = 0;
  int lb_ = 0, le_ = 0;  // layer range [lb_, le_)
  bool check_finite_ = true;
  // Scratch, grown to the largest batch seen and then reused (no allocation per decode step).
  std::vector<float> x_, xn_, q_, k_, v_, att_, tmp_, gate_, up_, sel_;
  std::vector<int32_t> ids_, pos_;
};

}  // namespace

Result<std::unique_ptr<Runner>> make_cpu_runner(std::shared_ptr<const ModelSpec> spec,
                                                const RunnerOptions& opt) {
  auto r = std::make_unique<CpuRunner>(std::move(spec), opt);
  TAILOR_RETURN_IF_ERROR(r->init());
  r->set_check(opt.check_finite_first_pass);
  return std::unique_ptr<Runner>(std::move(r));
}

}  // namespace tailor
