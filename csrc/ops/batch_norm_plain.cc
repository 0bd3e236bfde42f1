#include "ops/batch_norm_plain.h"

#include <cmath>

namespace phalanx::ops::bn_plain {

namespace {

// Sums over one channel's N rows of L values. Each row is summed in float (a vectorised
// loop), rows are added up in double: the error stays that of a row, however large N.
template <typename F>
double channel_sum(const Dims& d, int64_t c, F&& value_at) {
  double total = 0;
  for (int64_t n = 0; n < d.N; ++n) {
    const int64_t base = (n * d.C + c) * d.L;
    float row = 0;
#pragma omp simd reduction(+ : row)
    for (int64_t l = 0; l < d.L; ++l) row += value_at(base + l);
    total += row;
  }
  return total;
}

}  // namespace

void forward(const Dims& d, const float* x, float* y, float* mean, float* var, const float* weight,
             const float* bias, bool training, float eps) {
  const double count = static_cast<double>(d.N * d.L);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < d.C; ++c) {
    if (training) {  // two passes (mean, then squared deviations): no cancellation
      const float m =
          static_cast<float>(channel_sum(d, c, [&](int64_t i) { return x[i]; }) / count);
      const double ss = channel_sum(d, c, [&](int64_t i) {
        const float t = x[i] - m;
        return t * t;
      });
      mean[c] = m;
      var[c] = static_cast<float>(ss / count);
    }
    const float invstd = 1.f / std::sqrt(var[c] + eps);
    const float scale = weight ? weight[c] * invstd : invstd;
    const float shift = (bias ? bias[c] : 0.f) - mean[c] * scale;
    for (int64_t n = 0; n < d.N; ++n) {
      const float* xs = x + (n * d.C + c) * d.L;
      float* ys = y + (n * d.C + c) * d.L;
#pragma omp simd
      for (int64_t l = 0; l < d.L; ++l) ys[l] = xs[l] * scale + shift;
    }
  }
}

void backward(const Dims& d, const float* dy, const float* x, const float* mean, const float* var,
              const float* weight, bool training, float eps, float* dx, float* dweight,
              float* dbias) {
  const double count = static_cast<double>(d.N * d.L);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < d.C; ++c) {
    const float m = mean[c], invstd = 1.f / std::sqrt(var[c] + eps);
    // sum of dy, and of dy * xhat with xhat = (x - mean) * invstd: one pass over the channel
    double sum_dy = 0, sum_dy_xc = 0;
    for (int64_t n = 0; n < d.N; ++n) {
      const int64_t base = (n * d.C + c) * d.L;
      float row_dy = 0, row_dy_xc = 0;
#pragma omp simd reduction(+ : row_dy, row_dy_xc)
      for (int64_t l = 0; l < d.L; ++l) {
        row_dy += dy[base + l];
        row_dy_xc += dy[base + l] * (x[base + l] - m);
      }
      sum_dy += row_dy;
      sum_dy_xc += row_dy_xc;
    }
    const double sum_dy_xhat = sum_dy_xc * invstd;
    if (dweight) dweight[c] = static_cast<float>(sum_dy_xhat);
    if (dbias) dbias[c] = static_cast<float>(sum_dy);
    if (!dx) continue;
    const float g = (weight ? weight[c] : 1.f) * invstd;
    // training: dx = g * (dy - mean(dy) - xhat * mean(dy * xhat)); eval: dx = g * dy
    const float mean_dy = training ? static_cast<float>(sum_dy / count) : 0.f;
    const float k = training ? static_cast<float>(sum_dy_xhat / count) * invstd : 0.f;
    for (int64_t n = 0; n < d.N; ++n) {
      const int64_t base = (n * d.C + c) * d.L;
      const float* dys = dy + base;
      const float* xs = x + base;
      float* dxs = dx + base;
#pragma omp simd
      for (int64_t l = 0; l < d.L; ++l) dxs[l] = g * (dys[l] - mean_dy - (xs[l] - m) * k);
    }
  }
}

}  // namespace phalanx::ops::bn_plain
