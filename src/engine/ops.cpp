#include "engine/ops.h"

#include <cmath>

namespace llmsync::engine {

void RmsNormRow(const float* x, const float* w, float eps, std::int64_t n, float* out) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  const float scale =
      static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + static_cast<double>(eps)));
  for (std::int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * w[i];
}

void RopeAngles(std::int64_t pos, std::int64_t n_rot, float freq_base, float freq_scale,
                const float* freq_factors, float* cos_out, float* sin_out) {
  const double base = static_cast<double>(freq_base);
  for (std::int64_t i = 0; i < n_rot / 2; ++i) {
    double theta = static_cast<double>(pos) * static_cast<double>(freq_scale) *
                   std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    if (freq_factors != nullptr) theta /= static_cast<double>(freq_factors[i]);
    cos_out[i] = static_cast<float>(std::cos(theta));
    sin_out[i] = static_cast<float>(std::sin(theta));
  }
}

void ApplyRope(RopeStyle style, std::int64_t n_rot, const float* cos_v, const float* sin_v, float* head) {
  const std::int64_t half = n_rot / 2;
  for (std::int64_t i = 0; i < half; ++i) {
    const std::int64_t a = style == RopeStyle::kNorm ? 2 * i : i;
    const std::int64_t b = style == RopeStyle::kNorm ? 2 * i + 1 : i + half;
    const float x0 = head[a];
    const float x1 = head[b];
    head[a] = x0 * cos_v[i] - x1 * sin_v[i];
    head[b] = x0 * sin_v[i] + x1 * cos_v[i];
  }
}

void SwiGluRow(float* gate, const float* up, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void AddRow(float* y, const float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace llmsync::engine
