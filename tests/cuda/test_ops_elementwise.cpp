// CUDA element-wise ops against the CPU ops of the same name (src/backend/cpu/ops.h), fresh random inputs
// each run.
#include <algorithm>
#include <cmath>

#include "backend/cpu/ops.h"
#include "backend/cuda/argmax.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/embedding.cuh"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/silu_mul.cuh"
#include "cuda_test_util.h"

using namespace tailor;
using namespace tailor::cuda_test;

namespace {

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

TEST(CudaOps, Embedding) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  struct Case {
    int64_t vocab, dim, n;
  } cases[] = {{37, 24, 5}, {1000, 130, 17}, {301, 3584, 3}, {64, 17, 9}};
  for (DType t : kFloatTypes)
    for (const Case& c : cases) {
      SCOPED_TRACE(testing::Message()
                   << dtype_name(t) << " vocab " << c.vocab << " dim " << c.dim << " n " << c.n);
      const auto table = to_dtype(rng.normal(size_t(c.vocab * c.dim)), t);
      std::vector<int32_t> ids(static_cast<size_t>(c.n));
      for (auto& id : ids) id = rng.uniform_int(0, int(c.vocab) - 1);
      const float scale = 0.5f + float(rng.uniform_int(0, 10)) / 4.0f;
      std::vector<float> ref(static_cast<size_t>(c.n * c.dim));
      cpu::embedding(ref.data(), table.data(), t, ids.data(), c.n, c.dim, scale);
      DevBuf d_table(table.data(), table.size()), d_ids(ids.data(), ids.size() * 4), d_out(ref.size() * 4);
      ASSERT_EQ(cuda::embedding(d_out.as<float>(), d_table.get(), t, c.vocab, d_ids.as<int32_t>(), c.n, c.dim,
                                scale, nullptr),
                cudaSuccess);
      sync_or_fail();
      const auto out = from_dtype(d_out.bytes().data(), DType::f32, ref.size());
      EXPECT_LE(rel_err(out, ref), 1e-6);
    }
}

// rms_norm fused with the residual add == cpu::add_scaled then cpu::rms_norm.
TEST(CudaOps, RmsNormWithResidual) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  struct Case {
    int64_t rows, dim;
  } cases[] = {{1, 64}, {7, 3584}, {33, 130}, {5, 17}, {2, 18944}, {3, 40000}};
  for (DType out_t : kFloatTypes)
    for (const Case& c : cases)
      for (bool with_delta : {false, true}) {
        SCOPED_TRACE(testing::Message() << dtype_name(out_t) << " rows " << c.rows << " dim " << c.dim
                                        << " delta " << with_delta);
        const size_t n = size_t(c.rows * c.dim);
        auto x = rng.normal(n, 3.0f);
        const auto delta = rng.normal(n);
        const auto w = rng.normal(size_t(c.dim));
        const float scale = 0.25f;
        DevBuf d_x(x.data(), n * 4), d_d(delta.data(), n * 4), d_w(w.data(), w.size() * 4),
            d_out(dtype_row_bytes(out_t, n));
        if (with_delta) cpu::add_scaled(x.data(), delta.data(), scale, int64_t(n));
        std::vector<float> ref(n);
        cpu::rms_norm(ref.data(), x.data(), w.data(), c.rows, c.dim, 1e-6f);
        ASSERT_EQ(cuda::rms_norm(d_out.get(), out_t, d_x.as<float>(), with_delta ? d_d.as<float>() : nullptr,
                                 scale, d_w.as<float>(), nullptr, c.rows, c.dim, 1e-6f, nullptr),
                  cudaSuccess);
        sync_or_fail();
        EXPECT_LE(rel_err(from_dtype(d_out.bytes().data(), out_t, n), ref), tolerance(out_t));
        EXPECT_LE(rel_err(from_dtype(d_x.bytes().data(), DType::f32, n), x), 1e-6) << "residual written back";
      }
}

TEST(CudaOps, RmsNormSelectedRows) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  const int64_t rows = 11, dim = 96;
  const auto x = rng.normal(size_t(rows * dim));
  const auto w = rng.normal(size_t(dim));
  const std::vector<int32_t> sel = {10, 0, 4};
  std::vector<float> picked;
  for (int32_t r : sel) picked.insert(picked.end(), x.begin() + r * dim, x.begin() + (r + 1) * dim);
  std::vector<float> ref(picked.size());
  cpu::rms_norm(ref.data(), picked.data(), w.data(), int64_t(sel.size()), dim, 1e-5f);
  DevBuf d_x(x.data(), x.size() * 4), d_w(w.data(), w.size() * 4), d_sel(sel.data(), sel.size() * 4),
      d_out(ref.size() * 4);
  ASSERT_EQ(cuda::rms_norm(d_out.get(), DType::f32, d_x.as<float>(), nullptr, 0.0f, d_w.as<float>(),
                           d_sel.as<int32_t>(), int64_t(sel.size()), dim, 1e-5f, nullptr),
            cudaSuccess);
  sync_or_fail();
  EXPECT_LE(rel_err(from_dtype(d_out.bytes().data(), DType::f32, ref.size()), ref), 1e-5);
}

// The fused bias + q/k norm + RoPE + KV-cache write == the CPU ops applied one after the other.
TEST(CudaOps, RopeQkvStore) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  struct Case {
    int n_head, n_head_kv, head_dim;
    int64_t n_tok;
  } cases[] = {{4, 2, 64, 5}, {7, 1, 128, 37}, {8, 8, 40, 1}, {28, 4, 128, 3}, {4, 2, 16, 9}, {2, 1, 256, 4}};
  const int64_t capacity = 301;
  const int n_slots = 2;
  for (DType kv_t : kFloatTypes)
    for (const Case& c : cases)
      for (int variant = 0; variant < 3; ++variant) {  // 0 plain, 1 bias, 2 bias + qk_norm
        SCOPED_TRACE(testing::Message()
                     << "kv " << dtype_name(kv_t) << " heads " << c.n_head << "/" << c.n_head_kv
                     << " head_dim " << c.head_dim << " tokens " << c.n_tok << " variant " << variant);
        const int64_t Q = int64_t(c.n_head) * c.head_dim, KV = int64_t(c.n_head_kv) * c.head_dim,
                      row = Q + 2 * KV;
        const auto qkv = rng.normal(size_t(c.n_tok * row));
        const auto bias = rng.normal(size_t(row));
        const auto qn = rng.normal(size_t(c.head_dim)), kn = rng.normal(size_t(c.head_dim));
        std::vector<float> inv_freq(static_cast<size_t>(c.head_dim / 2));
        for (size_t j = 0; j < inv_freq.size(); ++j)
          inv_freq[j] = 1.0f / std::pow(10000.0f, 2.0f * j / c.head_dim);
        std::vector<int32_t> pos(static_cast<size_t>(c.n_tok)), slots(static_cast<size_t>(c.n_tok));
        std::vector<int32_t> all(static_cast<size_t>(capacity));
        for (int i = 0; i < capacity; ++i) all[size_t(i)] = i;
        std::shuffle(all.begin(), all.end(), rng.gen);  // distinct positions (no two tokens write one row)
        for (int64_t t = 0; t < c.n_tok; ++t) {
          pos[size_t(t)] = all[size_t(t)];
          slots[size_t(t)] = int32_t(t % n_slots);
        }
        // CPU reference, op by op.
        std::vector<float> q(static_cast<size_t>(c.n_tok * Q)), k(size_t(c.n_tok * KV)),
            v(static_cast<size_t>(c.n_tok * KV));
        for (int64_t t = 0; t < c.n_tok; ++t)
          for (int64_t j = 0; j < row; ++j) {
            const float val = qkv[size_t(t * row + j)] + (variant >= 1 ? bias[size_t(j)] : 0.0f);
            if (j < Q)
              q[size_t(t * Q + j)] = val;
            else if (j < Q + KV)
              k[size_t(t * KV + j - Q)] = val;
            else
              v[size_t(t * KV + j - Q - KV)] = val;
          }
        if (variant == 2) {
          cpu::rms_norm(q.data(), q.data(), qn.data(), c.n_tok * c.n_head, c.head_dim, 1e-6f);
          cpu::rms_norm(k.data(), k.data(), kn.data(), c.n_tok * c.n_head_kv, c.head_dim, 1e-6f);
        }
        cpu::rope(q.data(), pos.data(), inv_freq.data(), c.n_tok, c.n_head, c.head_dim);
        cpu::rope(k.data(), pos.data(), inv_freq.data(), c.n_tok, c.n_head_kv, c.head_dim);
        const int64_t slot_elems = KV * capacity;
        std::vector<uint8_t> kc(dtype_row_bytes(kv_t, uint64_t(slot_elems * n_slots))), vc(kc.size());
        for (int64_t t = 0; t < c.n_tok; ++t) {
          const uint64_t off = dtype_row_bytes(kv_t, uint64_t(slots[size_t(t)] * slot_elems));
          cpu::kv_store(kc.data() + off, kv_t, capacity, &k[size_t(t * KV)], &pos[size_t(t)], 1, c.n_head_kv,
                        c.head_dim);
          cpu::kv_store(vc.data() + off, kv_t, capacity, &v[size_t(t * KV)], &pos[size_t(t)], 1, c.n_head_kv,
                        c.head_dim);
        }
        // GPU.
        DevBuf d_qkv(qkv.data(), qkv.size() * 4), d_bias(bias.data(), bias.size() * 4),
            d_qn(qn.data(), qn.size() * 4), d_kn(kn.data(), kn.size() * 4),
            d_if(inv_freq.data(), inv_freq.size() * 4), d_pos(pos.data(), pos.size() * 4),
            d_slots(slots.data(), slots.size() * 4), d_q(dtype_row_bytes(kv_t, q.size())), d_k(kc.size()),
            d_v(vc.size());
        // The reference caches are zero except the rows written; start the device ones the same way.
        cudaMemset(d_k.get(), 0, d_k.size());
        cudaMemset(d_v.get(), 0, d_v.size());
        cuda::KvCacheView cache;
        cache.k = d_k.get();
        cache.v = d_v.get();
        cache.t = kv_t;
        cache.capacity = capacity;
        cache.slot_stride = slot_elems;
        ASSERT_EQ(cuda::rope_qkv_store(
                      d_q.get(), kv_t, d_qkv.as<float>(), variant >= 1 ? d_bias.as<float>() : nullptr,
                      variant == 2 ? d_qn.as<float>() : nullptr, variant == 2 ? d_kn.as<float>() : nullptr,
                      1e-6f, d_pos.as<int32_t>(), d_slots.as<int32_t>(), d_if.as<float>(), cache, c.n_tok,
                      c.n_head, c.n_head_kv, c.head_dim, nullptr),
                  cudaSuccess);
        sync_or_fail();
        EXPECT_LE(rel_err(from_dtype(d_q.bytes().data(), kv_t, q.size()), round_to(q, kv_t)), tolerance(kv_t))
            << "q";
        const size_t n_cache = size_t(slot_elems * n_slots);
        EXPECT_LE(
            rel_err(from_dtype(d_k.bytes().data(), kv_t, n_cache), from_dtype(kc.data(), kv_t, n_cache)),
            tolerance(kv_t))
            << "k cache";
        EXPECT_LE(
            rel_err(from_dtype(d_v.bytes().data(), kv_t, n_cache), from_dtype(vc.data(), kv_t, n_cache)),
            tolerance(kv_t))
            << "v cache";
      }
}

TEST(CudaOps, SiluMul) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  struct Case {
    int64_t n_tok, n_ff;
  } cases[] = {{1, 64}, {9, 1001}, {3, 18944}, {130, 77}};
  for (DType t : kFloatTypes)
    for (const Case& c : cases)
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE(testing::Message() << dtype_name(t) << " tokens " << c.n_tok << " n_ff " << c.n_ff
                                        << " bias " << with_bias);
        const size_t n = size_t(c.n_tok * c.n_ff);
        const auto gate = round_to(rng.normal(n, 2.0f), t), up = round_to(rng.normal(n), t);
        const auto bias = rng.normal(size_t(2 * c.n_ff));
        std::vector<float> gu(2 * n), g = gate, u = up;
        for (int64_t r = 0; r < c.n_tok; ++r)
          for (int64_t i = 0; i < c.n_ff; ++i) {
            gu[size_t(r * 2 * c.n_ff + 2 * i)] = gate[size_t(r * c.n_ff + i)];
            gu[size_t(r * 2 * c.n_ff + 2 * i + 1)] = up[size_t(r * c.n_ff + i)];
            if (with_bias) {
              g[size_t(r * c.n_ff + i)] += bias[size_t(2 * i)];
              u[size_t(r * c.n_ff + i)] += bias[size_t(2 * i + 1)];
            }
          }
        std::vector<float> ref(n);
        cpu::silu_mul(ref.data(), g.data(), u.data(), int64_t(n));
        const auto gu_t = to_dtype(gu, t);
        DevBuf d_gu(gu_t.data(), gu_t.size()), d_b(bias.data(), bias.size() * 4),
            d_out(dtype_row_bytes(t, n));
        ASSERT_EQ(cuda::silu_mul(d_out.get(), t, d_gu.get(), t, with_bias ? d_b.as<float>() : nullptr,
                                 c.n_tok, c.n_ff, nullptr),
                  cudaSuccess);
        sync_or_fail();
        EXPECT_LE(rel_err(from_dtype(d_out.bytes().data(), t, n), ref), tolerance(t));
      }
}

TEST(CudaOps, Argmax) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  for (int64_t vocab : {7, 512, 151936, 152064, 32001}) {
    const int64_t rows = 5;
    auto logits = rng.normal(size_t(rows * vocab));
    // Row 1: a tie between two maxima (the first must win); row 2: NaNs sprinkled in; row 3: all equal.
    const int a = rng.uniform_int(0, int(vocab) - 1), b = rng.uniform_int(0, int(vocab) - 1);
    logits[size_t(vocab + a)] = 100.0f;
    logits[size_t(vocab + b)] = 100.0f;
    for (int i = 0; i < 3; ++i) logits[size_t(2 * vocab + rng.uniform_int(0, int(vocab) - 1))] = NAN;
    std::fill(logits.begin() + 3 * vocab, logits.begin() + 4 * vocab, 1.5f);
    DevBuf d_l(logits.data(), logits.size() * 4), d_ids(size_t(rows) * 4),
        d_ws(cuda::argmax_workspace_bytes(rows)), d_ctr(size_t(rows) * 4);
    cudaMemset(d_ctr.get(), 0, d_ctr.size());
    // One block per row, then the split-row path twice (its counters must be left at zero for reuse).
    for (int path = 0; path < 3; ++path) {
      d_ids.poison();
      ASSERT_EQ(cuda::argmax(d_ids.as<int32_t>(), d_l.as<float>(), vocab, rows, vocab, nullptr,
                             path ? d_ws.get() : nullptr, path ? d_ctr.as<unsigned>() : nullptr),
                cudaSuccess);
      sync_or_fail();
      const auto got_b = d_ids.bytes();
      const int32_t* got = reinterpret_cast<const int32_t*>(got_b.data());
      for (int64_t r = 0; r < rows; ++r) {
        int64_t best = -1;
        for (int64_t j = 0; j < vocab; ++j) {
          const float v = logits[size_t(r * vocab + j)];
          if (std::isnan(v)) continue;
          if (best < 0 || v > logits[size_t(r * vocab + best)]) best = j;
        }
        EXPECT_EQ(got[r], best) << "vocab " << vocab << " row " << r << " path " << path;
      }
    }
  }
}

TEST(CudaOps, ConvertRowsInterleaves) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  for (DType src_t : kFloatTypes)
    for (DType dst_t : kFloatTypes) {
      const int64_t rows = 13, cols = 37;
      const auto a = round_to(rng.normal(size_t(rows * cols)), src_t),
                 b = round_to(rng.normal(size_t(rows * cols)), src_t);
      const auto ab = to_dtype(a, src_t), bb = to_dtype(b, src_t);
      DevBuf d_a(ab.data(), ab.size()), d_b(bb.data(), bb.size()),
          d_out(dtype_row_bytes(dst_t, uint64_t(2 * rows * cols)));
      ASSERT_EQ(cuda::convert_rows(d_out.get(), dst_t, d_a.get(), src_t, rows, cols, 2, 0, nullptr, nullptr),
                cudaSuccess);
      ASSERT_EQ(cuda::convert_rows(d_out.get(), dst_t, d_b.get(), src_t, rows, cols, 2, 1, nullptr, nullptr),
                cudaSuccess);
      sync_or_fail();
      std::vector<float> ref;
      for (int64_t r = 0; r < rows; ++r) {
        ref.insert(ref.end(), a.begin() + r * cols, a.begin() + (r + 1) * cols);
        ref.insert(ref.end(), b.begin() + r * cols, b.begin() + (r + 1) * cols);
      }
      EXPECT_LE(rel_err(from_dtype(d_out.bytes().data(), dst_t, ref.size()), round_to(ref, dst_t)), 1e-7)
          << dtype_name(src_t) << " -> " << dtype_name(dst_t);
    }
}

}  // namespace
