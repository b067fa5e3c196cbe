// The decode GEMV kernels and the cuBLASLt GEMM against an f64 reference of the same operands, with every
// epilogue the runner uses (bias, residual accumulate, SwiGLU via cpu::silu_mul and cpu::add_scaled).
#include <cmath>
#include <memory>

#include "backend/cpu/ops.h"
#include "backend/cuda/gemm.cuh"
#include "backend/cuda/gemv.cuh"
#include "cuda_test_util.h"

using namespace tailor;
using namespace tailor::cuda_test;

namespace {

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

enum class Epi { store, store_wt, accumulate, bias_accumulate, swiglu };
const char* epi_name(Epi e) {
  switch (e) {
    case Epi::store:
      return "store f32";
    case Epi::store_wt:
      return "store wt";
    case Epi::accumulate:
      return "y = 0.5 Wx + y";
    case Epi::bias_accumulate:
      return "y = 0.5 (Wx + b) + y";
    default:
      return "swiglu";
  }
}

struct Problem {
  std::vector<float> w, x, bias, y0;  // w, x already rounded to wt
  std::vector<uint8_t> w_t, x_t;
};

Problem make(Rng& rng, DType wt, int64_t m, int64_t n, int64_t k) {
  Problem p;
  p.w = round_to(rng.normal(size_t(n * k), 0.05f), wt);
  p.x = round_to(rng.normal(size_t(m * k)), wt);
  p.bias = rng.normal(size_t(n));
  p.y0 = rng.normal(size_t(m * n));
  p.w_t = to_dtype(p.w, wt);
  p.x_t = to_dtype(p.x, wt);
  return p;
}

// The same epilogue computed on the CPU from the same (rounded) operands, the products summed in f64 so the
// reference's own rounding does not count against the GPU (METHOD.md: compare with higher precision); the
// rest of the epilogue uses the CPU ops.
std::vector<float> reference(const Problem& p, Epi epi, int64_t m, int64_t n, int64_t k) {
  std::vector<float> a(static_cast<size_t>(m * n));
  const bool with_bias = epi == Epi::bias_accumulate || epi == Epi::swiglu;
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double acc = with_bias ? double(p.bias[size_t(j)]) : 0.0;
      const float* w = &p.w[size_t(j * k)];
      const float* x = &p.x[size_t(r * k)];
      for (int64_t i = 0; i < k; ++i) acc += double(w[i]) * double(x[i]);
      a[size_t(r * n + j)] = float(acc);
    }
  if (epi == Epi::swiglu) {
    std::vector<float> g(static_cast<size_t>(m * n / 2)), u(g.size()), out(g.size());
    for (int64_t r = 0; r < m; ++r)
      for (int64_t i = 0; i < n / 2; ++i) {
        g[size_t(r * n / 2 + i)] = a[size_t(r * n + 2 * i)];
        u[size_t(r * n / 2 + i)] = a[size_t(r * n + 2 * i + 1)];
      }
    cpu::silu_mul(out.data(), g.data(), u.data(), int64_t(out.size()));
    return out;
  }
  if (epi == Epi::accumulate || epi == Epi::bias_accumulate) {
    std::vector<float> y = p.y0;
    cpu::add_scaled(y.data(), a.data(), 0.5f, int64_t(y.size()));
    return y;
  }
  return a;
}

TEST(CudaOps, Gemv) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  struct Shape {
    int64_t n, k;
  } shapes[] = {{64, 256}, {1000, 3584}, {38, 130}, {96, 4104}, {16, 18944}, {514, 8}};
  const Epi epis[] = {Epi::store, Epi::store_wt, Epi::accumulate, Epi::bias_accumulate, Epi::swiglu};
  for (DType wt : kFloatTypes)
    for (const Shape& s : shapes)
      for (int m = 1; m <= cuda::kGemvMaxBatch; ++m)
        for (Epi epi : epis) {
          SCOPED_TRACE(testing::Message() << dtype_name(wt) << " m " << m << " n " << s.n << " k " << s.k
                                          << " " << epi_name(epi));
          const Problem pr = make(rng, wt, m, s.n, s.k);
          const auto ref = reference(pr, epi, m, s.n, s.k);
          const DType yt = (epi == Epi::store_wt || epi == Epi::swiglu) ? wt : DType::f32;
          const int64_t out_cols = epi == Epi::swiglu ? s.n / 2 : s.n;
          DevBuf d_w(pr.w_t.data(), pr.w_t.size()), d_x(pr.x_t.data(), pr.x_t.size()),
              d_b(pr.bias.data(), pr.bias.size() * 4), d_y(dtype_row_bytes(yt, uint64_t(m * out_cols)));
          if (epi == Epi::accumulate || epi == Epi::bias_accumulate)
            cudaMemcpy(d_y.get(), pr.y0.data(), pr.y0.size() * 4, cudaMemcpyHostToDevice);
          cuda::GemvParams p;
          p.w = d_w.get();
          p.wt = wt;
          p.n = s.n;
          p.k = s.k;
          p.x = d_x.get();
          p.ldx = s.k;
          p.y = d_y.get();
          p.yt = yt;
          p.ldy = out_cols;
          p.batch = m;
          p.bias = (epi == Epi::bias_accumulate || epi == Epi::swiglu) ? d_b.as<float>() : nullptr;
          p.alpha = (epi == Epi::accumulate || epi == Epi::bias_accumulate) ? 0.5f : 1.0f;
          p.beta = (epi == Epi::accumulate || epi == Epi::bias_accumulate) ? 1.0f : 0.0f;
          p.swiglu = epi == Epi::swiglu;
          ASSERT_EQ(cuda::gemv(p, nullptr), cudaSuccess);
          sync_or_fail();
          EXPECT_LE(rel_err(from_dtype(d_y.bytes().data(), yt, ref.size()), ref), tolerance(yt));
        }
}

TEST(CudaOps, GemmCublasLt) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  std::unique_ptr<cuda::GemmContext> ctx;
  ASSERT_EQ(cuda::GemmContext::create(8 << 20, &ctx), CUBLAS_STATUS_SUCCESS);
  struct Shape {
    int64_t m, n, k;
  } shapes[] = {{9, 64, 256}, {64, 1000, 3584}, {130, 96, 520}, {512, 384, 896}, {17, 3, 40}};
  const Epi epis[] = {Epi::store, Epi::store_wt, Epi::accumulate};
  for (DType wt : kFloatTypes)
    for (const Shape& s : shapes)
      for (Epi epi : epis) {
        SCOPED_TRACE(testing::Message() << dtype_name(wt) << " m " << s.m << " n " << s.n << " k " << s.k
                                        << " " << epi_name(epi));
        const Problem pr = make(rng, wt, s.m, s.n, s.k);
        const auto ref = reference(pr, epi, s.m, s.n, s.k);
        const DType yt = epi == Epi::store_wt ? wt : DType::f32;
        DevBuf d_w(pr.w_t.data(), pr.w_t.size()), d_x(pr.x_t.data(), pr.x_t.size()),
            d_y(dtype_row_bytes(yt, uint64_t(s.m * s.n)));
        if (epi == Epi::accumulate)
          cudaMemcpy(d_y.get(), pr.y0.data(), pr.y0.size() * 4, cudaMemcpyHostToDevice);
        cuda::GemmParams g;
        g.w = d_w.get();
        g.wt = wt;
        g.n = s.n;
        g.k = s.k;
        g.x = d_x.get();
        g.ldx = s.k;
        g.m = s.m;
        g.y = d_y.get();
        g.yt = yt;
        g.ldy = s.n;
        g.alpha = epi == Epi::accumulate ? 0.5f : 1.0f;
        g.beta = epi == Epi::accumulate ? 1.0f : 0.0f;
        const cublasStatus_t st = ctx->run(g, nullptr);
        ASSERT_EQ(st, CUBLAS_STATUS_SUCCESS) << cuda::gemm_status_string(st);
        sync_or_fail();
        EXPECT_LE(rel_err(from_dtype(d_y.bytes().data(), yt, ref.size()), ref), tolerance(yt));
      }
}

}  // namespace

namespace {

// Decode products with the RMSNorm folded in: the same as cpu::rms_norm, rounded to the weight dtype, then
// the product (what rms_norm() + gemv() compute in two launches).
TEST(CudaOps, GemvFusedRmsNorm) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  struct Shape {
    int64_t n, k;
  } shapes[] = {{64, 256}, {1000, 3584}, {96, 4104}, {38, 8}};
  for (DType wt : kFloatTypes)
    for (const Shape& s : shapes)
      for (int m = 1; m <= 2; ++m)
        for (bool swiglu : {false, true}) {
          SCOPED_TRACE(testing::Message() << dtype_name(wt) << " m " << m << " n " << s.n << " k " << s.k
                                          << (swiglu ? " swiglu" : ""));
          const auto w = round_to(rng.normal(size_t(s.n * s.k), 0.05f), wt);
          const auto resid = rng.normal(size_t(m * s.k), 2.0f);
          const auto g = rng.normal(size_t(s.k));
          const auto bias = rng.normal(size_t(s.n));
          std::vector<float> xn(resid.size());
          cpu::rms_norm(xn.data(), resid.data(), g.data(), m, s.k, 1e-6f);
          xn = round_to(xn, wt);
          std::vector<float> ref(size_t(m) * (swiglu ? s.n / 2 : s.n));
          for (int r = 0; r < m; ++r) {
            std::vector<float> a(size_t(s.n));
            for (int64_t j = 0; j < s.n; ++j) {
              double acc = bias[size_t(j)];
              for (int64_t i = 0; i < s.k; ++i)
                acc += double(w[size_t(j * s.k + i)]) * double(xn[size_t(r * s.k + i)]);
              a[size_t(j)] = float(acc);
            }
            if (swiglu) {
              std::vector<float> gt(size_t(s.n / 2)), up(gt.size());
              for (int64_t j = 0; j < s.n / 2; ++j)
                gt[size_t(j)] = a[size_t(2 * j)], up[size_t(j)] = a[size_t(2 * j + 1)];
              cpu::silu_mul(&ref[size_t(r) * gt.size()], gt.data(), up.data(), int64_t(gt.size()));
            } else {
              std::copy(a.begin(), a.end(), ref.begin() + r * s.n);
            }
          }
          const auto w_t = to_dtype(w, wt);
          const DType yt = swiglu ? wt : DType::f32;
          DevBuf d_w(w_t.data(), w_t.size()), d_x(resid.data(), resid.size() * 4),
              d_g(g.data(), g.size() * 4), d_b(bias.data(), bias.size() * 4),
              d_y(dtype_row_bytes(yt, ref.size()));
          cuda::GemvParams p;
          p.w = d_w.get();
          p.wt = wt;
          p.n = s.n;
          p.k = s.k;
          p.y = d_y.get();
          p.yt = yt;
          p.ldy = swiglu ? s.n / 2 : s.n;
          p.batch = m;
          p.bias = d_b.as<float>();
          p.swiglu = swiglu;
          p.norm_x = d_x.as<float>();
          p.ld_norm_x = s.k;
          p.norm_w = d_g.as<float>();
          p.norm_eps = 1e-6f;
          ASSERT_TRUE(cuda::gemv_norm_fusable(p));
          ASSERT_EQ(cuda::gemv(p, nullptr), cudaSuccess);
          sync_or_fail();
          // Half types: the normalized input is rounded on both sides, from sums of squares added in other
          // orders.
          EXPECT_LE(rel_err(from_dtype(d_y.bytes().data(), yt, ref.size()), ref),
                    wt == DType::f32 && yt == DType::f32 ? 1e-5 : 1e-2);
        }
}

}  // namespace
