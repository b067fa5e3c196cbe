// bench_cuda_gemv: one decode step's weight products for a model shape (default Qwen2.5-7B), as tailor's GEMV
// kernels and as cuBLAS GEMMs (cublasGemmEx, what PyTorch calls), each captured in a CUDA graph and replayed.
// Prints ms per step, GB/s of weights read, and % of the measured device-to-device copy bandwidth, for batch
// 1, 2, 4, 8. Usage: bench_cuda_gemv [--hidden 3584 --ffn 18944 --layers 28 --heads 28 --kv-heads 4 --vocab
// 152064]
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#if TAILOR_HAS_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <random>

#include "backend/cuda/argmax.cuh"
#include "backend/cuda/attention.cuh"
#include "backend/cuda/device.cuh"
#include "backend/cuda/embedding.cuh"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/rope.cuh"

namespace {

#define CK(x)                                                                                  \
  do {                                                                                         \
    cudaError_t e_ = (x);                                                                      \
    if (e_ != cudaSuccess) {                                                                   \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)

struct Mat {
  int64_t n, k;
  void* w;
  bool swiglu;
};

int arg(int argc, char** argv, const char* name, int def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return def;
}

}  // namespace

// Captures `work` once in a CUDA graph on stream s and returns the median replay time in ms (20 timed replays
// after 3 warm-ups).
template <class F>
double median_graph_ms(cudaStream_t s, F&& work) {
  cudaGraph_t g;
  cudaGraphExec_t ge;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  work();
  CK(cudaStreamEndCapture(s, &g));
  CK(cudaGraphInstantiate(&ge, g, 0));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int r = 0; r < 23; ++r) {
    CK(cudaEventRecord(e0, s));
    CK(cudaGraphLaunch(ge, s));
    CK(cudaEventRecord(e1, s));
    CK(cudaEventSynchronize(e1));
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    if (r >= 3) ms.push_back(t);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaGraphExecDestroy(ge);
  cudaGraphDestroy(g);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int main(int argc, char** argv) {
  const int64_t D = arg(argc, argv, "--hidden", 3584), F = arg(argc, argv, "--ffn", 18944),
                L = arg(argc, argv, "--layers", 28), H = arg(argc, argv, "--heads", 28),
                HKV = arg(argc, argv, "--kv-heads", 4), V = arg(argc, argv, "--vocab", 152064);
  const int64_t hd = D / H, Q = H * hd, KV = HKV * hd;
  auto dev = tailor::cuda::open_device(0, tailor::DType::bf16);
  if (!dev.ok()) {
    std::fprintf(stderr, "bench_cuda_gemv: %s\n", dev.status().message().c_str());
    return 1;
  }
  auto bw = tailor::cuda::measure_copy_bandwidth(1ull << 30, 10);
  const double copy = bw.ok() ? *bw : 0;
  std::printf("GPU %s, %d SMs; device-to-device copy %.0f GB/s\n", dev->name.c_str(), dev->n_sm, copy / 1e9);

  // Every matrix of one step, each its own allocation (as in the model): nothing stays in L2 between uses.
  std::vector<Mat> mats;
  for (int64_t l = 0; l < L; ++l) {
    mats.push_back({Q + 2 * KV, D, nullptr, false});
    mats.push_back({D, Q, nullptr, false});
    mats.push_back({2 * F, D, nullptr, true});
    mats.push_back({D, F, nullptr, false});
  }
  mats.push_back({V, D, nullptr, false});
  uint64_t bytes = 0;
  std::vector<uint16_t> pattern(32 << 20);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  for (auto& p : pattern) {
    const float f = nd(rng);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    p = uint16_t(u >> 16);
  }
  for (Mat& m : mats) {
    const uint64_t b = uint64_t(m.n * m.k) * 2;
    CK(cudaMalloc(&m.w, b));
    for (uint64_t off = 0; off < b; off += pattern.size() * 2)
      CK(cudaMemcpy(static_cast<char*>(m.w) + off, pattern.data(),
                    std::min<uint64_t>(pattern.size() * 2, b - off), cudaMemcpyHostToDevice));
    bytes += b;
  }
  const int64_t kmax = std::max(D, F), nmax = std::max<int64_t>(V, 2 * F);
  void *x = nullptr, *y = nullptr;
  CK(cudaMalloc(&x, 8 * kmax * 2));
  CK(cudaMalloc(&y, 8 * nmax * 4));
  CK(cudaMemcpy(x, pattern.data(), 8 * kmax * 2, cudaMemcpyHostToDevice));
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasHandle_t h;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return 1;
  cublasSetStream(h, s);
  void* ws = nullptr;
  CK(cudaMalloc(&ws, 32 << 20));
  cublasSetWorkspace(h, ws, 32 << 20);

  std::printf("%-8s %-14s %10s %10s %8s\n", "batch", "kernel", "ms/step", "GB/s", "% copy");
  // which: 0 tailor (default paths, PDL on), 1 cuBLAS, 2 tailor forced CUDA-core, 3 tailor forced
  // tensor-core, 4 tailor without PDL, 5 tailor without the early weight loads (batch <= 2).
  const char* names[] = {"tailor", "cuBLAS", "tailor-simt", "tailor-mma", "tailor-noPDL", "tailor-noearly"};
  for (int batch : {1, 2, 3, 4, 8}) {
    for (int which : {0, 1, 2, 3, 4, 5}) {
      if (which == 5 && batch > 2) continue;
      tailor::cuda::set_programmatic_launch(which != 4);
      auto step = [&]() {
        for (const Mat& m : mats) {
          if (which != 1) {
            tailor::cuda::GemvParams p;
            p.w = m.w;
            p.wt = tailor::DType::bf16;
            p.n = m.n;
            p.k = m.k;
            p.x = x;
            p.ldx = m.k;
            p.y = y;
            p.yt = m.swiglu ? tailor::DType::bf16 : tailor::DType::f32;
            p.ldy = m.swiglu ? m.n / 2 : m.n;
            p.batch = batch;
            p.swiglu = m.swiglu;
            if (which == 2) p.mma_min_batch = 99;
            if (which == 3) p.mma_min_batch = 1;
            if (which == 5) p.early_weights = false;
            CK(tailor::cuda::gemv(p, s));
          } else {
            const float alpha = 1.0f, beta = 0.0f;
            cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(m.n), batch, int(m.k), &alpha, m.w, CUDA_R_16BF,
                         int(m.k), x, CUDA_R_16BF, int(m.k), &beta, y, CUDA_R_16BF, int(m.n),
                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
          }
        }
      };
      step();  // warm-up outside the capture (cuBLAS picks its kernels)
      CK(cudaStreamSynchronize(s));
      const double med = median_graph_ms(s, step);
      const double gbs = double(bytes) / (med * 1e-3) / 1e9;
      std::printf("%-8d %-14s %10.3f %10.0f %7.1f%%\n", batch, names[which], med, gbs,
                  copy > 0 ? 100.0 * gbs * 1e9 / copy : 0.0);
    }
  }
  std::printf("weights per step: %.2f GB\n", double(bytes) / 1e9);

  // The small ops of a decode step, each launched 28 times (once per layer) in a graph: microseconds per
  // launch including the gaps between launches. Context 576 keys (a 512-token prompt halfway through 128 new
  // tokens).
  const int64_t ctx = 648, pos_now = 575;
  void *xf = nullptr, *xn = nullptr, *qkv = nullptr, *q = nullptr, *att = nullptr, *kc = nullptr,
       *vc = nullptr, *ws2 = nullptr, *nw = nullptr, *ifreq = nullptr, *ipos = nullptr, *islot = nullptr,
       *ids = nullptr, *logits = nullptr;
  const size_t cache_elems = size_t(8) * HKV * ctx * hd;
  CK(cudaMalloc(&xf, 8 * D * 4));
  CK(cudaMalloc(&xn, 8 * D * 2));
  CK(cudaMalloc(&qkv, 8 * (Q + 2 * KV) * 4));
  CK(cudaMalloc(&q, 8 * Q * 2));
  CK(cudaMalloc(&att, 8 * Q * 2));
  CK(cudaMalloc(&kc, cache_elems * 2));
  CK(cudaMalloc(&vc, cache_elems * 2));
  CK(cudaMemset(kc, 0x3c, cache_elems * 2));
  CK(cudaMemset(vc, 0x3c, cache_elems * 2));
  CK(cudaMemset(xf, 0x3c, 8 * D * 4));
  CK(cudaMemset(qkv, 0x3c, 8 * (Q + 2 * KV) * 4));
  CK(cudaMemset(q, 0x3c, 8 * Q * 2));
  CK(cudaMalloc(&nw, D * 4));
  CK(cudaMemset(nw, 0x3c, D * 4));
  CK(cudaMalloc(&ifreq, hd * 2));
  CK(cudaMemset(ifreq, 0, hd * 2));
  CK(cudaMalloc(&logits, size_t(8) * V * 4));
  CK(cudaMemset(logits, 0x3c, size_t(8) * V * 4));
  CK(cudaMalloc(&ids, 64));
  std::vector<int32_t> hpos(8, int32_t(pos_now)), hslot = {0, 1, 2, 3, 4, 5, 6, 7};
  CK(cudaMalloc(&ipos, 32));
  CK(cudaMalloc(&islot, 32));
  CK(cudaMemcpy(ipos, hpos.data(), 32, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(islot, hslot.data(), 32, cudaMemcpyHostToDevice));
  const size_t ws_bytes = 64 << 20;
  CK(cudaMalloc(&ws2, ws_bytes));
  CK(cudaMemset(ws2, 0, ws_bytes));
  void* ctrs = nullptr;
  CK(cudaMalloc(&ctrs, 8 * H * 4));
  CK(cudaMemset(ctrs, 0, 8 * H * 4));
  using tailor::DType;
  tailor::cuda::KvCacheView cache;
  cache.k = kc;
  cache.v = vc;
  cache.t = DType::bf16;
  cache.capacity = ctx;
  cache.slot_stride = HKV * ctx * hd;
  std::printf("\n%-6s %-22s %10s %10s\n", "batch", "op (x28 in a graph)", "us/launch", "us/noPDL");
  for (int batch : {1, 8}) {
    const int n_split = tailor::cuda::attention_decode_splits(batch, int(HKV), dev->n_sm, ctx);
    struct Op {
      const char* name;
      std::function<void()> run;
    };
    tailor::cuda::AttentionParams ap;
    ap.q = q;
    ap.q_stride = Q;
    ap.cache = cache;
    ap.pos = static_cast<int32_t*>(ipos);
    ap.slots = static_cast<int32_t*>(islot);
    ap.out = att;
    ap.out_t = DType::bf16;
    ap.out_stride = Q;
    ap.n_tok = batch;
    ap.n_head = int(H);
    ap.n_head_kv = int(HKV);
    ap.head_dim = int(hd);
    ap.scale = 0.088f;
    ap.distinct_slots = true;  // one token per slot, as the runner's decode graph
    std::vector<Op> ops = {
        {"rms_norm",
         [&] {
           CK(tailor::cuda::rms_norm(xn, DType::bf16, static_cast<float*>(xf), nullptr, 0.0f,
                                     static_cast<float*>(nw), nullptr, batch, D, 1e-6f, s));
         }},
        {"rope_qkv_store",
         [&] {
           CK(tailor::cuda::rope_qkv_store(q, DType::bf16, static_cast<float*>(qkv), nullptr, nullptr,
                                           nullptr, 1e-6f, ap.pos, ap.slots, static_cast<float*>(ifreq),
                                           cache, batch, int(H), int(HKV), int(hd), s));
         }},
        {"attention_decode",
         [&] { CK(tailor::cuda::attention_decode(ap, n_split, ws2, static_cast<unsigned*>(ctrs), s)); }},
        {"argmax(vocab)",
         [&] {
           CK(tailor::cuda::argmax(static_cast<int32_t*>(ids), static_cast<float*>(logits), V, batch, V, s,
                                   ws2, static_cast<unsigned*>(ctrs)));
         }},
    };
    for (auto& op : ops) {
      double us[2];
      for (int pdl = 1; pdl >= 0; --pdl) {
        tailor::cuda::set_programmatic_launch(pdl == 1);
        op.run();
        CK(cudaStreamSynchronize(s));
        us[pdl] = median_graph_ms(s,
                                  [&] {
                                    for (int l = 0; l < 28; ++l) op.run();
                                  }) *
                  1e3 / 28;
      }
      std::printf("%-6d %-22s %10.2f %10.2f\n", batch, op.name, us[1], us[0]);
    }
    std::printf("%-6d attention splits: %d\n", batch, n_split);
  }
  return 0;
}

#else
int main() {
  std::fprintf(stderr, "bench_cuda_gemv: built without CUDA\n");
  return 1;
}
#endif
