#include "model/rope.h"

#include <cmath>

namespace tailor {

std::vector<float> rope_inv_freq(const HParams& hp) {
  const int dim = hp.head_dim;
  std::vector<float> inv(size_t(dim / 2));
  for (int j = 0; j < dim / 2; ++j) {
    const float e = float(2 * j) / float(dim);
    inv[size_t(j)] = 1.0f / std::pow(hp.rope_theta, e);
  }
  const RopeScaling& rs = hp.rope_scaling;
  if (rs.type == RopeScaling::Type::linear) {
    for (float& f : inv) f /= rs.factor;
  } else if (rs.type == RopeScaling::Type::llama3) {
    const float old_ctx = float(rs.original_max_position_embeddings);
    const float low_wavelen = old_ctx / rs.low_freq_factor;
    const float high_wavelen = old_ctx / rs.high_freq_factor;
    for (float& f : inv) {
      const float wavelen = 2.0f * float(M_PI) / f;
      float g = wavelen > low_wavelen ? f / rs.factor : f;          // low frequencies: scaled
      if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {  // medium: interpolate
        const float smooth =
            (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        g = (1.0f - smooth) * g / rs.factor + smooth * g;
      }
      f = g;
    }
  }
  return inv;
}

}  // namespace tailor
