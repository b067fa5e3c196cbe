// Elementwise and attention ops of the CPU backend (matmul lives in matmul.cpp).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/ops.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace tailor::cpu {

void rms_norm(float* out, const float* x, const float* w, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    double ss = 0;  // HF computes the mean of squares in f32; double here only removes summation-order noise
    for (int64_t i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
    const float inv = 1.0f / std::sqrt(float(ss / double(dim)) + eps);
    for (int64_t i = 0; i < dim; ++i) o[i] = xr[i] * inv * w[i];
  }
}

void embedding(float* out, const void* table, DType t, const int32_t* ids, int64_t n, int64_t dim,
               float scale) {
  for (int64_t i = 0; i < n; ++i) {
    const char* row = static_cast<const char*>(table) + dtype_row_bytes(t, uint64_t(ids[i]) * uint64_t(dim));
    convert_row(row, t, out + i * dim, DType::f32, size_t(dim));
    if (scale != 1.0f)
      for (int64_t j = 0; j < dim; ++j) out[i * dim + j] *= scale;
  }
}

// HF apply_rotary_pos_emb with rotate_half: for j < d/2, (x_j, x_{j+d/2}) is rotated by angle
// pos·inv_freq[j].
void rope(float* x, const int32_t* pos, const float* inv_freq, int64_t n_tokens, int n_heads, int head_dim) {
  const int half = head_dim / 2;
  std::vector<float> cs(size_t(half) * 2);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int j = 0; j < half; ++j) {
      // HF computes freqs in f32 (inv_freq · position), then cos/sin in f32.
      const float ang = float(pos[t]) * inv_freq[j];
      cs[size_t(j) * 2] = std::cos(ang);
      cs[size_t(j) * 2 + 1] = std::sin(ang);
    }
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int j = 0; j < half; ++j) {
        const float c = cs[size_t(j) * 2], s = cs[size_t(j) * 2 + 1];
        const float a = v[j], b = v[j + half];
        v[j] = a * c - b * s;
        v[j + half] = b * c + a * s;
      }
    }
  }
}

void silu_mul(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_scaled(float* x, const float* y, float scale, int64_t n) {
  if (scale == 1.0f) {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  } else {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i] * scale;
  }
}

void kv_store(void* cache, DType kv_t, int64_t capacity, const float* src, const int32_t* pos,
              int64_t n_tokens, int n_head_kv, int head_dim) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    TAILOR_CHECK(pos[t] >= 0 && pos[t] < capacity) << "kv_store: position " << pos[t] << " outside the cache";
    for (int h = 0; h < n_head_kv; ++h) {
      const int64_t off = (int64_t(h) * capacity + pos[t]) * head_dim;
      char* dst = static_cast<char*>(cache) + dtype_row_bytes(kv_t, uint64_t(off));
      convert_row(src + (t * n_head_kv + h) * head_dim, DType::f32, dst, kv_t, size_t(head_dim));
    }
  }
}

void attention(float* out, const float* q, const void* k, const void* v, DType kv_t, int64_t capacity,
               const int32_t* pos, int64_t n_tokens, int n_head, int n_head_kv, int head_dim, float scale) {
  const int group = n_head / n_head_kv;
  ThreadPool::global().parallel_for(n_tokens * n_head, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scores, krow(static_cast<size_t>(head_dim)), acc(static_cast<size_t>(head_dim));
    for (int64_t th = b; th < e; ++th) {
      const int64_t t = th / n_head;
      const int h = int(th % n_head);
      const int hk = h / group;
      const int64_t n_ctx = int64_t(pos[t]) + 1;
      scores.resize(size_t(n_ctx));
      const float* qv = q + (t * n_head + h) * head_dim;
      float mx = -INFINITY;
      for (int64_t p = 0; p < n_ctx; ++p) {
        const int64_t off = (int64_t(hk) * capacity + p) * head_dim;
        const char* kr = static_cast<const char*>(k) + dtype_row_bytes(kv_t, uint64_t(off));
        const float* kp;
        if (kv_t == DType::f32) {
          kp = reinterpret_cast<const float*>(kr);
        } else {
          convert_row(kr, kv_t, krow.data(), DType::f32, size_t(head_dim));
          kp = krow.data();
        }
        float s = 0;
        for (int d = 0; d < head_dim; ++d) s += qv[d] * kp[d];
        s *= scale;
        scores[size_t(p)] = s;
        mx = std::max(mx, s);
      }
      double sum = 0;
      for (int64_t p = 0; p < n_ctx; ++p) {
        scores[size_t(p)] = std::exp(scores[size_t(p)] - mx);
        sum += scores[size_t(p)];
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t p = 0; p < n_ctx; ++p) {
        const int64_t off = (int64_t(hk) * capacity + p) * head_dim;
        const char* vr = static_cast<const char*>(v) + dtype_row_bytes(kv_t, uint64_t(off));
        const float* vp;
        if (kv_t == DType::f32) {
          vp = reinterpret_cast<const float*>(vr);
        } else {
          convert_row(vr, kv_t, krow.data(), DType::f32, size_t(head_dim));
          vp = krow.data();
        }
        const float wgt = scores[size_t(p)];
        for (int d = 0; d < head_dim; ++d) acc[size_t(d)] += wgt * vp[d];
      }
      float* o = out + (t * n_head + h) * head_dim;
      const float inv = float(1.0 / sum);
      for (int d = 0; d < head_dim; ++d) o[d] = acc[size_t(d)] * inv;
    }
  });
}

}  // namespace tailor::cpu
