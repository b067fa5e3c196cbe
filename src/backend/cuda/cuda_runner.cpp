// The CUDA Runner (see cuda_runner.h). Per layer (HF LlamaDecoderLayer, Qwen2/Qwen3/Granite variants):
//   n = rms_norm(x);  qkv = n · Wqkvᵀ;  q, k, v = rope(qk_norm(qkv + b));  kv_cache[pos] = k, v
//   x += attn(q, kv_cache) · Woᵀ * residual_multiplier
//   n = rms_norm(x);  x += (silu(n · Wgateᵀ) * (n · Wupᵀ)) · Wdownᵀ * residual_multiplier
// Residual stream x in f32; matrix inputs in the weight dtype; products accumulate in f32.
#include "backend/cuda/cuda_runner.h"

#include "backend/cuda/cuda_runner_impl.h"

namespace tailor {

namespace cuda_runner_detail {

Status CudaRunner::init() {
  const HParams& hp = spec_->hp;
  if (opt_.n_ctx <= 0 || opt_.n_slots <= 0) return invalid_argument("runner: n_ctx and n_slots must be > 0");
  wt_ = opt_.weight_dtype;
  kv_t_ = opt_.kv_dtype;
  auto is_float = [](DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; };
  if (!is_float(wt_))
    return unsupported(
        cat("CUDA runner: weight dtype ", dtype_name(wt_), " is not supported (use f32, f16 or bf16)"));
  if (!is_float(kv_t_))
    return unsupported(
        cat("CUDA runner: KV-cache dtype ", dtype_name(kv_t_), " is not supported (f32, f16, bf16)"));
  if (hp.head_dim % 8 != 0 || hp.head_dim > 256)
    return unsupported(
        cat("CUDA runner: head_dim ", hp.head_dim, " is not supported (a multiple of 8, at most 256)"));
  if (hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0)
    return unsupported(
        cat("CUDA runner: ", hp.n_head, " query heads do not split into ", hp.n_head_kv, " KV groups"));
  TAILOR_RETURN_IF_ERROR(check_layer_range(opt_, hp, "CUDA runner"));
  if (opt_.layer_begin != 0)
    return unsupported(cat("CUDA runner: layer range [", opt_.layer_begin, ", ", layer_end_of(opt_, hp),
                           "): the GPU runs the first layers of a split, so its range starts at 0"));
  n_run_ = layer_end_of(opt_, hp);
  stack_ = n_run_ < hp.n_layer;
  TAILOR_ASSIGN_OR_RETURN(dev_, open_device(0, kv_t_ == DType::bf16 ? DType::bf16 : wt_));
  use_mma_ = dev_.cc_major >= 8 && attention_prefill_supported(kv_t_, hp.head_dim);
  // Programmatic dependent launch (Hopper+): each decode kernel's launch overlaps the previous one's tail.
  // TAILOR_CUDA_PDL=0 turns it off (for A/B timing).
  const char* pdl_env = std::getenv("TAILOR_CUDA_PDL");
  set_programmatic_launch(dev_.cc_major >= 9 && !(pdl_env && std::string(pdl_env) == "0"));
  check_finite_ = opt_.check_finite_first_pass;
  // TAILOR_CUDA_EXPERIMENT: comma-separated timing experiments (A/B in one process): noearly (GEMV weight
  // loads wait for the previous kernel), nodistinct (decode attention waits before reading any key, and RoPE
  // runs as its own kernel), nofuserope (RoPE as its own kernel), split32 / split128 (decode attention splits
  // of at least 32 / 128 keys instead of 64), hpb8 (8 query heads per decode-attention block instead of 4),
  // skip-rope / skip-attn (leave the op out: wrong output, timing only).
  if (const char* ex = std::getenv("TAILOR_CUDA_EXPERIMENT"); ex && *ex) {
    experiment_ = cat(",", ex, ",");
    log_warn("TAILOR_CUDA_EXPERIMENT=", ex, ": timing experiment, output may be wrong");
    if (exp("split32")) min_keys_ = 32;
    if (exp("split128")) min_keys_ = 128;
  }

  // Sizes first, so "does it fit" is answered before anything is allocated.
  TAILOR_RETURN_IF_ERROR(layout(weights_arena_));
  const int64_t D = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff, V = hp.n_vocab;
  kv_layer_bytes_ = dtype_row_bytes(kv_t_, uint64_t(opt_.n_slots) * hp.n_head_kv * opt_.n_ctx * hp.head_dim);
  kv_arena_.take(kv_layer_bytes_ * 2 * n_run_);
  chunk_ = std::min<int64_t>(kMaxChunk, int64_t(opt_.n_slots) * opt_.n_ctx);
  chunk_ = std::max<int64_t>(chunk_, std::min<int64_t>(opt_.n_slots, kMaxChunk));
  const int64_t C = chunk_, R = stack_ ? 0 : std::min<int64_t>(kMaxOutRows, C);  // R: lm_head rows
  mask_words_ = (V + 31) / 32;
  if (V > kSampleMaxVocab)
    return unsupported(
        cat("CUDA runner: a vocabulary of ", V, " tokens is beyond the GPU sampler's ", kSampleMaxVocab));
  for (int64_t t = 1; t <= C; ++t)
    attn_ws_bytes_ = std::max(
        attn_ws_bytes_, attention_decode_workspace_bytes(
                            t, hp.n_head, hp.head_dim,
                            attention_decode_splits(t, hp.n_head_kv, dev_.n_sm, opt_.n_ctx, min_keys_)));
  auto scratch = [&](DeviceArena& a) {
    x_ = static_cast<float*>(a.take(uint64_t(C) * D * 4));
    xn_ = a.take(dtype_row_bytes(wt_, uint64_t(C) * D));
    qkv_ = static_cast<float*>(a.take(uint64_t(C) * (Q + 2 * KV) * 4));
    q_ = a.take(dtype_row_bytes(kv_t_, uint64_t(C) * Q));
    att_ = a.take(dtype_row_bytes(wt_, uint64_t(C) * Q));
    gu_ = a.take(dtype_row_bytes(wt_, uint64_t(C) * 2 * F));
    act_ = a.take(dtype_row_bytes(wt_, uint64_t(C) * F));
    xs_ = a.take(dtype_row_bytes(wt_, uint64_t(R) * D));
    logits_ = static_cast<float*>(a.take(uint64_t(R) * V * 4));
    out_ids_ = static_cast<int32_t*>(a.take(uint64_t(R) * 4));
    attn_ws_ = a.take(attn_ws_bytes_);
    attn_counters_ = static_cast<unsigned int*>(a.take(uint64_t(C) * hp.n_head * 4));
    argmax_ws_ = a.take(argmax_workspace_bytes(R));
    argmax_counters_ = static_cast<unsigned int*>(a.take(uint64_t(R) * 4));
    d_sample_rows_ = static_cast<SampleRow*>(a.take(uint64_t(R) * sizeof(SampleRow)));
    d_masks_ = static_cast<uint32_t*>(a.take(uint64_t(R) * uint64_t(mask_words_) * 4));
    nonfinite_ = static_cast<unsigned int*>(a.take(uint64_t(n_run_) * 4));
    d_in_ = static_cast<int32_t*>(a.take(uint64_t(C) * 8 * 4));
  };
  scratch(scratch_arena_);
  const uint64_t need = weights_arena_.size() + kv_arena_.size() + scratch_arena_.size() + kGemmWorkspace;
  const uint64_t slack = 512ull << 20;  // CUDA context, cuBLASLt kernels, graphs
  if (need + slack > dev_.mem_free)
    return out_of_memory(
        cat("the model needs ", format_gb(need), " of GPU memory (weights ", format_gb(weights_arena_.size()),
            ", KV cache ", format_gb(kv_arena_.size()), " for ", opt_.n_slots, " x ", opt_.n_ctx,
            " tokens, scratch ", format_gb(scratch_arena_.size()), ") plus about 0.5 GB for CUDA, but GPU ",
            dev_.index, " (", dev_.name, ") has ", format_gb(dev_.mem_free),
            " free; use a smaller --ctx or fewer slots, a smaller --dtype, or the CPU backend"));

  TAILOR_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a CUDA stream");
  if (const char* tm = std::getenv("TAILOR_CUDA_TIMING"); tm && std::string(tm) == "1") {
    timing_ = true;
    TAILOR_CUDA_TRY(cudaEventCreate(&timing_events_[0]), "timing events");
    TAILOR_CUDA_TRY(cudaEventCreate(&timing_events_[1]), "timing events");
  }
  const cublasStatus_t gs = GemmContext::create(kGemmWorkspace, &gemm_);
  if (gs != CUBLAS_STATUS_SUCCESS) return internal_error(cat("cuBLASLt: ", gemm_status_string(gs)));
  TAILOR_RETURN_IF_ERROR(weights_arena_.allocate("model weights"));
  TAILOR_RETURN_IF_ERROR(layout(weights_arena_));
  TAILOR_RETURN_IF_ERROR(kv_arena_.allocate("KV cache"));
  kv_base_ = kv_arena_.take(kv_layer_bytes_ * 2 * n_run_);
  // Zeroed once so rows never written read as zeros (never NaN) anywhere a kernel might touch them.
  TAILOR_CUDA_TRY(cudaMemsetAsync(kv_base_, 0, kv_arena_.size(), stream_), "clearing the KV cache");
  TAILOR_RETURN_IF_ERROR(scratch_arena_.allocate("activations"));
  scratch(scratch_arena_);
  // The decode attention's merge counters must start at zero (every launch leaves them so).
  TAILOR_CUDA_TRY(cudaMemsetAsync(attn_counters_, 0, size_t(C) * hp.n_head * 4, stream_), "clearing scratch");
  TAILOR_CUDA_TRY(cudaMemsetAsync(argmax_counters_, 0, size_t(R) * 4, stream_), "clearing scratch");
  TAILOR_RETURN_IF_ERROR(h_in_.allocate(uint64_t(C) * 8 * 4, "input staging"));
  TAILOR_RETURN_IF_ERROR(stack_ ? h_out_.allocate(uint64_t(C) * D * 4, "residual stream staging")
                                : h_out_.allocate(uint64_t(R) * V * 4, "logits staging"));
  TAILOR_RETURN_IF_ERROR(
      h_sample_.allocate(uint64_t(R) * (sizeof(SampleRow) + uint64_t(mask_words_) * 4), "sampling staging"));
  TAILOR_RETURN_IF_ERROR(upload_weights());
  // Decode products fuse their RMSNorm when the normalized rows fit the GEMV's shared memory
  // (TAILOR_CUDA_FUSE=0 turns it off, for A/B timing).
  const char* fuse_env = std::getenv("TAILOR_CUDA_FUSE");
  for (int b = 1; b <= kGemvRows; ++b) {
    GemvParams p;
    p.w = layers_.empty() ? lm_head_ : layers_[0].wqkv;
    p.wt = wt_;
    p.k = D;
    p.batch = b;
    p.norm_x = x_;
    p.ld_norm_x = D;
    p.norm_w = stack_ ? layers_[0].attn_norm : out_norm_;
    fuse_norm_ok_[b] = gemv_norm_fusable(p) && !(fuse_env && std::string(fuse_env) == "0");
  }

  stats_.device = dev_.index;
  stats_.device_name = dev_.name;
  stats_.weight_bytes = weights_arena_.size();
  stats_.kv_bytes = kv_arena_.size();
  stats_.scratch_bytes = scratch_arena_.size() + kGemmWorkspace;
  const uint64_t per_layer =
      dtype_row_bytes(wt_, uint64_t(D) * (Q + 2 * KV) + uint64_t(D) * Q + 3ull * D * F);
  stats_.decode_read_bytes_per_token =
      per_layer * n_run_ +
      (stack_ ? 0 : dtype_row_bytes(wt_, uint64_t(V) * D) + dtype_row_bytes(wt_, uint64_t(D)));
  return {};
}

Status CudaRunner::layout(DeviceArena& a) {
  const HParams& hp = spec_->hp;
  const int64_t D = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff, V = hp.n_vocab,
                hd = hp.head_dim;
  auto mat = [&](int64_t rows, int64_t cols) {
    return a.take(dtype_row_bytes(wt_, uint64_t(rows) * uint64_t(cols)));
  };
  auto vec = [&](int64_t n) { return static_cast<float*>(a.take(uint64_t(n) * 4)); };
  if (!stack_) {  // a stack runner uploads its layers only (the Plan keeps a split's embedding on the host)
    embed_ = mat(V, D);
    lm_head_ = hp.tie_word_embeddings ? embed_ : mat(V, D);
    out_norm_ = vec(D);
  }
  inv_freq_ = vec(hd / 2);
  layers_.assign(size_t(n_run_), LayerW{});
  for (LayerW& L : layers_) {
    L.attn_norm = vec(D);
    L.wqkv = mat(Q + 2 * KV, D);
    L.bqkv = hp.attention_bias ? vec(Q + 2 * KV) : nullptr;
    L.q_norm = hp.qk_norm ? vec(hd) : nullptr;
    L.k_norm = hp.qk_norm ? vec(hd) : nullptr;
    L.wo = mat(D, Q);
    L.bo = hp.o_proj_bias ? vec(D) : nullptr;
    L.ffn_norm = vec(D);
    L.wgu = mat(2 * F, D);
    L.bgu = hp.mlp_bias ? vec(2 * F) : nullptr;
    L.wdown = mat(D, F);
    L.bdown = hp.mlp_bias ? vec(D) : nullptr;
  }
  return {};
}

Status CudaRunner::upload_weights() {
  const HParams& hp = spec_->hp;
  const SafeTensorsArchive& w = *spec_->weights;
  auto find = [&](const std::string& name) -> Result<const SafeTensor*> {
    const SafeTensor* t = w.find(name);
    if (!t) return not_found(cat(spec_->dir, ": tensor \"", name, "\" is missing"));
    return t;
  };
  // Vectors: converted to f32 on the host (they are small), copied synchronously.
  auto host_vec = [&](const std::string& name, std::vector<float>& v) -> Status {
    TAILOR_ASSIGN_OR_RETURN(const SafeTensor* t, find(name));
    v.resize(size_t(t->shape.numel()));
    convert_row(t->data, t->dtype, v.data(), DType::f32, v.size());
    return {};
  };
  auto put = [&](float* dst, const std::vector<float>& v, const std::string& what) -> Status {
    TAILOR_CUDA_TRY(cudaMemcpy(dst, v.data(), v.size() * 4, cudaMemcpyHostToDevice), cat("uploading ", what));
    return {};
  };
  auto vec = [&](const std::string& name, float* dst) -> Status {
    std::vector<float> v;
    TAILOR_RETURN_IF_ERROR(host_vec(name, v));
    return put(dst, v, name);
  };

  std::vector<std::pair<const SafeTensor*, std::tuple<void*, int64_t, int64_t>>> mats;
  auto add = [&](const std::string& name, void* dst, int64_t step, int64_t off) -> Status {
    TAILOR_ASSIGN_OR_RETURN(const SafeTensor* t, find(name));
    mats.push_back({t, {dst, step, off}});
    return {};
  };
  const int64_t Q = hp.q_dim(), KV = hp.kv_dim();
  if (!stack_) {
    TAILOR_RETURN_IF_ERROR(add("model.embed_tokens.weight", embed_, 1, 0));
    if (!hp.tie_word_embeddings) TAILOR_RETURN_IF_ERROR(add("lm_head.weight", lm_head_, 1, 0));
  }
  for (int l = 0; l < n_run_; ++l) {
    const LayerW& L = layers_[size_t(l)];
    const std::string p = cat("model.layers.", l, ".");
    TAILOR_RETURN_IF_ERROR(add(p + "self_attn.q_proj.weight", L.wqkv, 1, 0));
    TAILOR_RETURN_IF_ERROR(add(p + "self_attn.k_proj.weight", L.wqkv, 1, Q));
    TAILOR_RETURN_IF_ERROR(add(p + "self_attn.v_proj.weight", L.wqkv, 1, Q + KV));
    TAILOR_RETURN_IF_ERROR(add(p + "self_attn.o_proj.weight", L.wo, 1, 0));
    TAILOR_RETURN_IF_ERROR(add(p + "mlp.gate_proj.weight", L.wgu, 2, 0));
    TAILOR_RETURN_IF_ERROR(add(p + "mlp.up_proj.weight", L.wgu, 2, 1));
    TAILOR_RETURN_IF_ERROR(add(p + "mlp.down_proj.weight", L.wdown, 1, 0));
  }
  uint64_t total = 0;
  for (auto& m : mats) total += m.first->nbytes;
  WeightUploader up;
  TAILOR_RETURN_IF_ERROR(up.init(stream_, total, /*progress=*/true));
  for (auto& [t, d] : mats) {
    // Shapes are validated by load_model_spec; the upload relies on [rows, cols] = [out, in].
    TAILOR_RETURN_IF_ERROR(up.upload(*t, std::get<0>(d), wt_, std::get<1>(d), std::get<2>(d)));
  }

  if (!stack_) TAILOR_RETURN_IF_ERROR(vec("model.norm.weight", out_norm_));
  TAILOR_RETURN_IF_ERROR(put(inv_freq_, rope_inv_freq(hp), "rope inv_freq"));
  for (int l = 0; l < n_run_; ++l) {
    const LayerW& L = layers_[size_t(l)];
    const std::string p = cat("model.layers.", l, ".");
    TAILOR_RETURN_IF_ERROR(vec(p + "input_layernorm.weight", L.attn_norm));
    TAILOR_RETURN_IF_ERROR(vec(p + "post_attention_layernorm.weight", L.ffn_norm));
    if (L.bqkv) {
      std::vector<float> q, k, v;
      TAILOR_RETURN_IF_ERROR(host_vec(p + "self_attn.q_proj.bias", q));
      TAILOR_RETURN_IF_ERROR(host_vec(p + "self_attn.k_proj.bias", k));
      TAILOR_RETURN_IF_ERROR(host_vec(p + "self_attn.v_proj.bias", v));
      q.insert(q.end(), k.begin(), k.end());
      q.insert(q.end(), v.begin(), v.end());
      TAILOR_RETURN_IF_ERROR(put(L.bqkv, q, p + "q/k/v bias"));
    }
    if (L.q_norm) {
      TAILOR_RETURN_IF_ERROR(vec(p + "self_attn.q_norm.weight", L.q_norm));
      TAILOR_RETURN_IF_ERROR(vec(p + "self_attn.k_norm.weight", L.k_norm));
    }
    if (L.bo) TAILOR_RETURN_IF_ERROR(vec(p + "self_attn.o_proj.bias", L.bo));
    if (L.bgu) {
      std::vector<float> g, u, gu;
      TAILOR_RETURN_IF_ERROR(host_vec(p + "mlp.gate_proj.bias", g));
      TAILOR_RETURN_IF_ERROR(host_vec(p + "mlp.up_proj.bias", u));
      for (size_t i = 0; i < g.size(); ++i) {
        gu.push_back(g[i]);
        gu.push_back(u[i]);
      }
      TAILOR_RETURN_IF_ERROR(put(L.bgu, gu, p + "gate/up bias"));
      TAILOR_RETURN_IF_ERROR(vec(p + "mlp.down_proj.bias", L.bdown));
    }
  }
  TAILOR_ASSIGN_OR_RETURN(const uint64_t overflow, up.finish());
  if (overflow > 0)
    log_warn("CUDA runner: ", overflow,
             " weights exceed the f16 range (±65504) and became ±inf; use --dtype bf16");
  return {};
}

}  // namespace cuda_runner_detail

using cuda_runner_detail::CudaRunner;

Result<std::unique_ptr<Runner>> make_cuda_runner(std::shared_ptr<const ModelSpec> spec,
                                                 const RunnerOptions& opt) {
  auto r = std::make_unique<CudaRunner>(std::move(spec), opt);
  TAILOR_RETURN_IF_ERROR(r->init());
  return std::unique_ptr<Runner>(std::move(r));
}

const CudaRunnerStats* cuda_runner_stats(const Runner& r) {
  const auto* c = dynamic_cast<const CudaRunner*>(&r);
  return c ? &c->stats() : nullptr;
}

}  // namespace tailor
