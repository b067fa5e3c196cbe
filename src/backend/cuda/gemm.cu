#include <map>
#include <tuple>

#include "backend/cuda/common.cuh"
#include "backend/cuda/gemm.cuh"

namespace tailor::cuda {

namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f16:
      return CUDA_R_16F;
    case DType::bf16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_32F;
  }
}

// Largest power of two (<= 256) dividing the address: what the algorithm may assume about alignment.
uint32_t alignment_of(const void* p, int64_t ld, DType t) {
  uint64_t a = reinterpret_cast<uintptr_t>(p) | uint64_t(ld * int64_t(dtype_size(t)));
  uint32_t al = 256;
  while (al > 1 && (a % al) != 0) al >>= 1;
  return al;
}

using Key =
    std::tuple<int64_t, int64_t, int64_t, int, int, int64_t, int64_t, bool, uint32_t, uint32_t, uint32_t>;

}  // namespace

struct GemmContext::Impl {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::map<Key, cublasLtMatmulAlgo_t> algos;
};

GemmContext::~GemmContext() {
  if (!impl_) return;
  if (impl_->workspace) cudaFree(impl_->workspace);
  if (impl_->handle) cublasLtDestroy(impl_->handle);
}

cublasStatus_t GemmContext::create(size_t workspace_bytes, std::unique_ptr<GemmContext>* out) {
  std::unique_ptr<GemmContext> c(new GemmContext());
  c->impl_ = std::make_unique<Impl>();
  cublasStatus_t st = cublasLtCreate(&c->impl_->handle);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (workspace_bytes > 0) {
    if (cudaMalloc(&c->impl_->workspace, workspace_bytes) != cudaSuccess) {
      cudaGetLastError();
      return CUBLAS_STATUS_ALLOC_FAILED;
    }
    c->impl_->workspace_bytes = workspace_bytes;
  }
  *out = std::move(c);
  return CUBLAS_STATUS_SUCCESS;
}

// Column-major view (cuBLAS's): Yᵀ[n, m] = W[n, k] · Xᵀ[k, m], i.e. A = W (stored [k, n] column-major,
// transposed), B = Xᵀ (stored [k, m] column-major), C = D = Yᵀ ([n, m] column-major, ld = ldy).
cublasStatus_t GemmContext::run(const GemmParams& p, cudaStream_t stream) {
  if (p.m <= 0 || p.n <= 0) return CUBLAS_STATUS_SUCCESS;
  const cudaDataType_t ab = cuda_type(p.wt), cd = cuda_type(p.yt);
  const uint32_t al_w = alignment_of(p.w, p.k, p.wt), al_x = alignment_of(p.x, p.ldx, p.wt),
                 al_y = alignment_of(p.y, p.ldy, p.yt);
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
  auto check = [&](cublasStatus_t s) {
    if (st == CUBLAS_STATUS_SUCCESS) st = s;
    return st == CUBLAS_STATUS_SUCCESS;
  };
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  const cublasComputeType_t compute = CUBLAS_COMPUTE_32F;  // f32 accumulation; no TF32 for f32 operands
  if (check(cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F)) &&
      check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta))) &&
      check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb))) &&
      check(cublasLtMatrixLayoutCreate(&la, ab, uint64_t(p.k), uint64_t(p.n), p.k)) &&
      check(cublasLtMatrixLayoutCreate(&lb, ab, uint64_t(p.k), uint64_t(p.m), p.ldx)) &&
      check(cublasLtMatrixLayoutCreate(&lc, cd, uint64_t(p.n), uint64_t(p.m), p.ldy))) {
    const Key key{p.m, p.n, p.k, int(p.wt), int(p.yt), p.ldx, p.ldy, p.beta != 0.0f, al_w, al_x, al_y};
    auto it = impl_->algos.find(key);
    if (it == impl_->algos.end()) {
      cublasLtMatmulPreference_t pref = nullptr;
      cublasLtMatmulHeuristicResult_t res{};
      int found = 0;
      const uint64_t ws = impl_->workspace_bytes;
      if (check(cublasLtMatmulPreferenceCreate(&pref)) &&
          check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                     sizeof(ws))) &&
          check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_w,
                                                     sizeof(al_w))) &&
          check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_x,
                                                     sizeof(al_x))) &&
          check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_y,
                                                     sizeof(al_y))) &&
          check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_y,
                                                     sizeof(al_y))) &&
          check(cublasLtMatmulAlgoGetHeuristic(impl_->handle, op, la, lb, lc, lc, pref, 1, &res, &found))) {
        if (found == 0) st = CUBLAS_STATUS_NOT_SUPPORTED;
      }
      if (pref) cublasLtMatmulPreferenceDestroy(pref);
      if (st == CUBLAS_STATUS_SUCCESS) it = impl_->algos.emplace(key, res.algo).first;
    }
    if (st == CUBLAS_STATUS_SUCCESS)
      check(cublasLtMatmul(impl_->handle, op, &p.alpha, p.w, la, p.x, lb, &p.beta, p.y, lc, p.y, lc,
                           &it->second, impl_->workspace, impl_->workspace_bytes, stream));
  }
  if (lc) cublasLtMatrixLayoutDestroy(lc);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (op) cublasLtMatmulDescDestroy(op);
  return st;
}

const char* gemm_status_string(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "cuBLAS not initialized (driver or library missing?)";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "cuBLAS could not allocate GPU memory";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "cuBLAS rejected a parameter";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "cuBLAS: operation not supported on this GPU architecture";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "cuBLAS kernel failed to execute";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "cuBLAS: no algorithm for this shape and dtype";
    default:
      return "cuBLAS error";
  }
}

}  // namespace tailor::cuda
