// The CUDA runner's forward pass (see cuda_runner_impl.h): matrix products (GEMV or cuBLASLt), the layers,
// the head, sampling inputs, and the eager and decode-graph paths.
#include "backend/cuda/cuda_runner_impl.h"

namespace tailor::cuda_runner_detail {

Status CudaRunner::mm(void* y, DType yt, int64_t ldy, const void* x, int64_t ldx, const void* w, int64_t n,
                      int64_t k, int64_t m, float alpha, float beta, const float* bias, bool swiglu,
                      const float* norm_w) {
  if (m <= kGemvRows) {
    GemvParams p;
    p.w = w;
    p.wt = wt_;
    p.n = n;
    p.k = k;
    p.x = x;
    p.ldx = ldx;
    p.y = y;
    p.yt = yt;
    p.ldy = ldy;
    p.batch = int(m);
    p.bias = bias;
    p.alpha = alpha;
    p.beta = beta;
    p.swiglu = swiglu;
    p.early_weights = !exp("noearly");
    if (norm_w) {
      p.x = nullptr;
      p.norm_x = x_;
      p.ld_norm_x = spec_->hp.n_embd;
      p.norm_w = norm_w;
      p.norm_eps = spec_->hp.rms_norm_eps;
    }
    TAILOR_CUDA_TRY(gemv(p, stream_), "GEMV");
    return {};
  }
  TAILOR_CHECK(!swiglu && !norm_w) << "swiglu and norm fusion exist only in the GEMV path";
  GemmParams g;
  g.w = w;
  g.wt = wt_;
  g.n = n;
  g.k = k;
  g.x = x;
  g.ldx = ldx;
  g.m = m;
  g.y = y;
  g.yt = yt;
  g.ldy = ldy;
  g.alpha = alpha;
  g.beta = beta;
  const cublasStatus_t st = gemm_->run(g, stream_);
  if (st != CUBLAS_STATUS_SUCCESS)
    return internal_error(cat("cuBLASLt matmul [", m, " x ", k, "] x [", k, " x ", n, "] in ",
                              dtype_name(wt_), ": ", gemm_status_string(st)));
  if (bias) {
    TAILOR_CHECK(yt == DType::f32 && ldy == n) << "GEMM bias needs an f32 dense output";
    TAILOR_CUDA_TRY(add_bias_rows(static_cast<float*>(y), bias, alpha, m, n, stream_), "bias");
  }
  return {};
}

Status CudaRunner::layers(int64_t T, bool mma_attention, int n_tiles, int n_split) {
  const HParams& hp = spec_->hp;
  const int64_t D = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff, V = hp.n_vocab, C = chunk_;
  const int32_t* d_ids = d_in_;
  const int32_t* d_pos = d_in_ + C;
  const int32_t* d_slot = d_in_ + 2 * C;
  const auto* d_tiles = reinterpret_cast<const AttentionTile*>(d_in_ + 4 * C);
  const float r = hp.residual_multiplier, eps = hp.rms_norm_eps;
  if (!stack_)  // a stack runner's x_ was uploaded with the inputs
    TAILOR_CUDA_TRY(embedding(x_, embed_, wt_, V, d_ids, T, D, hp.embedding_multiplier, stream_),
                    "embedding");
  for (int l = 0; l < n_run_; ++l) {
    const LayerW& L = layers_[size_t(l)];
    // x = x + attn(rms_norm(x)) * residual_multiplier
    const bool fuse = fuse_norm(T);
    if (!fuse)
      TAILOR_CUDA_TRY(rms_norm(xn_, wt_, x_, nullptr, 0.0f, L.attn_norm, nullptr, T, D, eps, stream_),
                      "rms_norm");
    TAILOR_RETURN_IF_ERROR(mm(qkv_, DType::f32, Q + 2 * KV, xn_, D, L.wqkv, Q + 2 * KV, D, T, 1.0f, 0.0f,
                              nullptr, false, fuse ? L.attn_norm : nullptr));
    // Decode graph: RoPE and the KV-cache write happen inside the decode attention (AttentionParams::qkv).
    const bool fuse_rope = decode_graph_ && !mma_attention && !exp("nodistinct") && !exp("nofuserope");
    if (!fuse_rope && !exp("skip-rope"))
      TAILOR_CUDA_TRY(rope_qkv_store(q_, kv_t_, qkv_, L.bqkv, L.q_norm, L.k_norm, eps, d_pos, d_slot,
                                     inv_freq_, cache(l), T, hp.n_head, hp.n_head_kv, hp.head_dim, stream_),
                      "rope/kv store");
    AttentionParams ap;
    ap.q = q_;
    ap.q_stride = Q;
    ap.cache = cache(l);
    ap.pos = d_pos;
    ap.slots = d_slot;
    ap.out = att_;
    ap.out_t = wt_;
    ap.out_stride = Q;
    ap.n_tok = T;
    ap.n_head = hp.n_head;
    ap.n_head_kv = hp.n_head_kv;
    ap.head_dim = hp.head_dim;
    ap.scale = hp.attn_scale();
    ap.distinct_slots = decode_graph_ && !exp("nodistinct");
    ap.min_keys_per_split = min_keys_;
    ap.heads_per_block = exp("hpb8") ? 8 : kDecodeHeadsPerBlock;
    if (fuse_rope) {
      ap.qkv = static_cast<const float*>(qkv_);
      ap.qkv_bias = L.bqkv;
      ap.q_norm = L.q_norm;
      ap.k_norm = L.k_norm;
      ap.norm_eps = eps;
      ap.inv_freq = inv_freq_;
    }
    if (exp("skip-attn")) {
    } else if (mma_attention)
      TAILOR_CUDA_TRY(attention_prefill(ap, d_tiles, n_tiles, stream_), "attention (prefill)");
    else
      TAILOR_CUDA_TRY(attention_decode(ap, n_split, attn_ws_, attn_counters_, stream_), "attention (decode)");
    TAILOR_RETURN_IF_ERROR(mm(x_, DType::f32, D, att_, Q, L.wo, D, Q, T, r, 1.0f, L.bo, false));
    // x = x + down(silu(gate(n)) * up(n)) * residual_multiplier
    if (!fuse)
      TAILOR_CUDA_TRY(rms_norm(xn_, wt_, x_, nullptr, 0.0f, L.ffn_norm, nullptr, T, D, eps, stream_),
                      "rms_norm");
    if (T <= kGemvRows) {
      TAILOR_RETURN_IF_ERROR(
          mm(act_, wt_, F, xn_, D, L.wgu, 2 * F, D, T, 1.0f, 0.0f, L.bgu, true, fuse ? L.ffn_norm : nullptr));
    } else {
      TAILOR_RETURN_IF_ERROR(mm(gu_, wt_, 2 * F, xn_, D, L.wgu, 2 * F, D, T, 1.0f, 0.0f, nullptr, false));
      TAILOR_CUDA_TRY(silu_mul(act_, wt_, gu_, wt_, L.bgu, T, F, stream_), "silu_mul");
    }
    TAILOR_RETURN_IF_ERROR(mm(x_, DType::f32, D, act_, F, L.wdown, D, F, T, r, 1.0f, L.bdown, false));
    if (check_finite_) TAILOR_CUDA_TRY(count_nonfinite(x_, T * D, nonfinite_ + l, stream_), "finite check");
  }
  return {};
}

Status CudaRunner::head(int64_t n_rows, int64_t row_offset, bool identity_rows, bool sample) {
  const HParams& hp = spec_->hp;
  const int64_t D = hp.n_embd, V = hp.n_vocab;
  const int32_t* d_rows = d_in_ + 3 * chunk_ + row_offset;
  const bool fuse = identity_rows && fuse_norm(n_rows);
  if (!fuse)
    TAILOR_CUDA_TRY(
        rms_norm(xs_, wt_, x_, nullptr, 0.0f, out_norm_, d_rows, n_rows, D, hp.rms_norm_eps, stream_),
        "final rms_norm");
  TAILOR_RETURN_IF_ERROR(mm(logits_, DType::f32, V, xs_, D, lm_head_, V, D, n_rows, 1.0f / hp.logits_scaling,
                            0.0f, nullptr, false, fuse ? out_norm_ : nullptr));
  if (sample) {
    // In place: the logits rows become the sampler's weights (nobody reads the logits in this mode).
    TAILOR_CUDA_TRY(cuda::sample(out_ids_, logits_, V, logits_, n_rows, V, d_sample_rows_, d_masks_, stream_),
                    "sampling");
    return {};
  }
  TAILOR_CUDA_TRY(argmax(out_ids_, logits_, V, n_rows, V, stream_, argmax_ws_, argmax_counters_), "argmax");
  return {};
}

Status CudaRunner::upload_sampling(std::span<const DeviceSampling> params) {
  const int64_t R = std::min<int64_t>(kMaxOutRows, chunk_);
  TAILOR_CHECK(int64_t(params.size()) <= R) << "upload_sampling: " << params.size() << " rows > " << R;
  auto* rows = reinterpret_cast<SampleRow*>(h_sample_.data());
  auto* words = reinterpret_cast<uint32_t*>(h_sample_.data() + size_t(R) * sizeof(SampleRow));
  int64_t n_masks = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const DeviceSampling& d = params[i];
    rows[i] = to_sample_row(d, n_masks * mask_words_);
    if (!d.mask.empty()) {
      // Words past the end of a shorter mask allow nothing (as on the CPU).
      uint32_t* m = words + n_masks * mask_words_;
      const size_t n = std::min(d.mask.size(), size_t(mask_words_));
      std::memcpy(m, d.mask.data(), n * 4);
      std::memset(m + n, 0, (size_t(mask_words_) - n) * 4);
      ++n_masks;
    }
  }
  TAILOR_CUDA_TRY(cudaMemcpyAsync(d_sample_rows_, rows, params.size() * sizeof(SampleRow),
                                  cudaMemcpyHostToDevice, stream_),
                  "uploading sampling parameters");
  if (n_masks > 0)
    TAILOR_CUDA_TRY(
        cudaMemcpyAsync(d_masks_, words, size_t(n_masks * mask_words_) * 4, cudaMemcpyHostToDevice, stream_),
        "uploading token masks");
  return {};
}

Status CudaRunner::run(std::span<const SeqBatchEntry> batch, std::vector<float>* logits,
                       std::vector<int32_t>* ids, std::span<const DeviceSampling> sampling,
                       std::vector<float>* x) {
  const HParams& hp = spec_->hp;
  if (stack_ && !x)
    return unsupported(cat("CUDA runner: this runner holds layers [0, ", n_run_, ") of ", hp.n_layer,
                           " (the GPU part of a split) and has no lm_head; use forward_layers"));
  if (!stack_ && x)
    return unsupported(
        "CUDA runner: forward_layers needs a runner over the first layers of a split "
        "(RunnerOptions::layer_end < n_layer)");
  int64_t n_tokens = 0;
  for (const auto& e : batch) {
    n_tokens += int64_t(e.tokens.size());
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
  }
  if (x && int64_t(x->size()) != n_tokens * hp.n_embd)
    return invalid_argument(cat("forward_layers: the residual stream has ", x->size(),
                                " values; the batch's ", n_tokens, " tokens need ", n_tokens, " x ",
                                hp.n_embd));
  if (logits) logits->clear();
  if (ids) ids->clear();
  if (batch.empty()) return {};
  bool decode =
      std::all_of(batch.begin(), batch.end(), [](const SeqBatchEntry& e) { return e.tokens.size() == 1; });
  // The decode graph's attention reads older keys before the previous kernel ends (distinct_slots): one
  // token per slot. Two entries in one slot (never sent by the engine) take the eager path.
  if (decode) {
    std::vector<int32_t> slots;
    for (const SeqBatchEntry& e : batch) slots.push_back(e.slot);
    std::sort(slots.begin(), slots.end());
    decode = std::adjacent_find(slots.begin(), slots.end()) == slots.end();
  }
  if (decode && !check_finite_ && int64_t(batch.size()) <= std::min<int64_t>(chunk_, kMaxOutRows))
    return run_decode_graph(batch, logits, ids, sampling, x);
  return run_eager(batch, logits, ids, sampling, x);
}

Status CudaRunner::run_eager(std::span<const SeqBatchEntry> batch, std::vector<float>* logits,
                             std::vector<int32_t>* ids, std::span<const DeviceSampling> sampling,
                             std::vector<float>* x) {
  const HParams& hp = spec_->hp;
  const int64_t V = hp.n_vocab, C = chunk_, R = std::min<int64_t>(kMaxOutRows, C), D = hp.n_embd;
  int64_t t_base = 0;  // tokens of earlier chunks: this chunk's rows of x start at t_base
  size_t e = 0, i = 0;
  bool first_chunk = true;
  while (e < batch.size()) {
    // The previous chunk's input upload reads the pinned block asynchronously: let it finish before
    // refilling.
    if (!first_chunk) TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "forward pass");
    first_chunk = false;
    const InputBlock in = host_inputs();
    int64_t T = 0, n_rows = 0;
    int n_tiles = 0;
    bool multi = false;
    while (e < batch.size() && T < C) {
      const SeqBatchEntry& en = batch[e];
      const int64_t n = std::min<int64_t>(int64_t(en.tokens.size() - i), C - T);
      const bool want_all = logits && en.all_logits;
      for (int64_t j = 0; j < n; ++j) {
        in.ids[T + j] = en.tokens[i + size_t(j)];
        in.pos[T + j] = en.pos[i + size_t(j)];
        in.slot[T + j] = en.slot;
        if (want_all || i + size_t(j) + 1 == en.tokens.size()) in.rows[n_rows++] = int32_t(T + j);
      }
      for (int64_t s = 0; s < n; s += kPrefillTileRows) {
        AttentionTile t;
        t.tok_begin = int32_t(T + s);
        t.n_tok = int32_t(std::min<int64_t>(kPrefillTileRows, n - s));
        t.max_pos = *std::max_element(in.pos + T + s, in.pos + T + s + t.n_tok);
        t.slot = en.slot;
        in.tiles[n_tiles++] = t;
      }
      multi = multi || n > 1;
      T += n;
      i += size_t(n);
      if (i == en.tokens.size()) {
        ++e;
        i = 0;
      }
    }
    std::sort(in.tiles, in.tiles + n_tiles,
              [](const AttentionTile& a, const AttentionTile& b) { return a.max_pos > b.max_pos; });
    TAILOR_CUDA_TRY(cudaMemcpyAsync(d_in_, h_in_.data(), size_t(C) * 8 * 4, cudaMemcpyHostToDevice, stream_),
                    "uploading inputs");
    if (x) {
      std::memcpy(h_out_.data(), x->data() + t_base * D, size_t(T * D) * 4);
      TAILOR_CUDA_TRY(cudaMemcpyAsync(x_, h_out_.data(), size_t(T * D) * 4, cudaMemcpyHostToDevice, stream_),
                      "uploading the residual stream");
    }
    if (check_finite_)
      TAILOR_CUDA_TRY(cudaMemsetAsync(nonfinite_, 0, size_t(n_run_) * 4, stream_), "finite check");
    const bool mma = use_mma_ && multi;
    TAILOR_RETURN_IF_ERROR(
        layers(T, mma, n_tiles, attention_decode_splits(T, hp.n_head_kv, dev_.n_sm, opt_.n_ctx, min_keys_)));
    if (check_finite_) {
      std::vector<unsigned> bad(static_cast<size_t>(n_run_));
      TAILOR_CUDA_TRY(
          cudaMemcpyAsync(bad.data(), nonfinite_, bad.size() * 4, cudaMemcpyDeviceToHost, stream_),
          "finite check");
      TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "forward pass");
      for (int l = 0; l < n_run_; ++l)
        if (bad[size_t(l)])
          return internal_error(cat("non-finite activations after layer ", l,
                                    " on the first forward pass: the weights ", "overflow in ",
                                    dtype_name(wt_), "; try --dtype bf16 or f32"));
    }
    if (x) {  // a stack runner's output: the residual stream after its last layer, every token
      TAILOR_CUDA_TRY(cudaMemcpyAsync(h_out_.data(), x_, size_t(T * D) * 4, cudaMemcpyDeviceToHost, stream_),
                      "reading the residual stream");
      TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "forward pass");
      std::memcpy(x->data() + t_base * D, h_out_.data(), size_t(T * D) * 4);
      t_base += T;
      continue;
    }
    for (int64_t r0 = 0; r0 < n_rows; r0 += R) {
      const int64_t n = std::min(R, n_rows - r0);
      // Without logits every entry gives one row (its last token), so the rows done so far index `sampling`.
      if (!sampling.empty())
        TAILOR_RETURN_IF_ERROR(upload_sampling(sampling.subspan(ids->size(), size_t(n))));
      TAILOR_RETURN_IF_ERROR(head(n, r0, false, !sampling.empty()));
      if (logits) {
        TAILOR_CUDA_TRY(
            cudaMemcpyAsync(h_out_.data(), logits_, size_t(n * V) * 4, cudaMemcpyDeviceToHost, stream_),
            "reading logits");
        TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "forward pass");
        const float* src = reinterpret_cast<const float*>(h_out_.data());
        logits->insert(logits->end(), src, src + n * V);
      } else {
        TAILOR_CUDA_TRY(
            cudaMemcpyAsync(h_out_.data(), out_ids_, size_t(n) * 4, cudaMemcpyDeviceToHost, stream_),
            "reading token ids");
        TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "forward pass");
        const int32_t* src = reinterpret_cast<const int32_t*>(h_out_.data());
        ids->insert(ids->end(), src, src + n);
      }
    }
  }
  check_finite_ = false;
  return {};
}

Status CudaRunner::run_decode_graph(std::span<const SeqBatchEntry> batch, std::vector<float>* logits,
                                    std::vector<int32_t>* ids, std::span<const DeviceSampling> sampling,
                                    std::vector<float>* x) {
  const HParams& hp = spec_->hp;
  const int B = int(batch.size());
  const int64_t V = hp.n_vocab, D = hp.n_embd;
  const InputBlock in = host_inputs();
  for (int b = 0; b < B; ++b) {
    in.ids[b] = batch[size_t(b)].tokens[0];
    in.pos[b] = batch[size_t(b)].pos[0];
    in.slot[b] = batch[size_t(b)].slot;
    in.rows[b] = b;
  }
  TAILOR_CUDA_TRY(
      cudaMemcpyAsync(d_in_, h_in_.data(), size_t(chunk_) * 4 * 4, cudaMemcpyHostToDevice, stream_),
      "uploading inputs");
  // Sampling parameters travel like the inputs: uploaded before the replay, read by the graph's sampler.
  const bool sample = !sampling.empty();
  if (sample) TAILOR_RETURN_IF_ERROR(upload_sampling(sampling));
  if (x) {  // stack runner: the graph starts from x_, uploaded outside it
    std::memcpy(h_out_.data(), x->data(), size_t(B * D) * 4);
    TAILOR_CUDA_TRY(cudaMemcpyAsync(x_, h_out_.data(), size_t(B * D) * 4, cudaMemcpyHostToDevice, stream_),
                    "uploading the residual stream");
  }
  const int n_split = attention_decode_splits(B, hp.n_head_kv, dev_.n_sm, opt_.n_ctx, min_keys_);
  const int key = 2 * B + (sample ? 1 : 0);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    // First step of this batch size and mode: run it directly (this also lets cuBLASLt pick its algorithms
    // outside the capture), then capture the same launches for the following steps.
    decode_graph_ = true;
    Status st0 = layers(B, false, 0, n_split);
    decode_graph_ = false;
    TAILOR_RETURN_IF_ERROR(st0);
    if (!stack_) TAILOR_RETURN_IF_ERROR(head(B, 0, true, sample));
    TAILOR_CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
                    "capturing the decode graph");
    decode_graph_ = true;
    Status st = layers(B, false, 0, n_split);
    decode_graph_ = false;
    if (st.ok() && !stack_) st = head(B, 0, true, sample);
    cudaGraph_t g = nullptr;
    const cudaError_t ce = cudaStreamEndCapture(stream_, &g);
    if (!st.ok() || ce != cudaSuccess) {
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      return st.ok() ? cuda_status(ce, "capturing the decode graph") : st;
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t ie = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    TAILOR_CUDA_TRY(ie, "instantiating the decode graph");
    graphs_[key] = exec;
  } else {
    if (timing_) cudaEventRecord(timing_events_[0], stream_);
    TAILOR_CUDA_TRY(cudaGraphLaunch(it->second, stream_), "decode step");
    if (timing_) cudaEventRecord(timing_events_[1], stream_);
  }
  if (x) {
    TAILOR_CUDA_TRY(cudaMemcpyAsync(h_out_.data(), x_, size_t(B * D) * 4, cudaMemcpyDeviceToHost, stream_),
                    "reading the residual stream");
    TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "decode step");
    std::memcpy(x->data(), h_out_.data(), size_t(B * D) * 4);
  } else if (logits) {
    TAILOR_CUDA_TRY(
        cudaMemcpyAsync(h_out_.data(), logits_, size_t(B * V) * 4, cudaMemcpyDeviceToHost, stream_),
        "reading logits");
    TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "decode step");
    const float* src = reinterpret_cast<const float*>(h_out_.data());
    logits->assign(src, src + B * V);
  } else {
    TAILOR_CUDA_TRY(cudaMemcpyAsync(h_out_.data(), out_ids_, size_t(B) * 4, cudaMemcpyDeviceToHost, stream_),
                    "reading token ids");
    TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "decode step");
    const int32_t* src = reinterpret_cast<const int32_t*>(h_out_.data());
    ids->assign(src, src + B);
    if (timing_ && it != graphs_.end()) {
      float ms = 0;
      cudaEventElapsedTime(&ms, timing_events_[0], timing_events_[1]);
      graph_ms_ += ms;
      ++graph_steps_;
    }
  }
  return {};
}

}  // namespace tailor::cuda_runner_detail
