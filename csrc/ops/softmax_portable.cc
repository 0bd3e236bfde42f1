#include "ops/softmax_portable.h"

#include <atomic>
#include <cmath>

namespace phalanx::ops {

namespace {

std::atomic<bool> g_force{false};

// Sums in double: a row of thousands of classes loses no precision, and the per-row cost is
// small next to the exponentials.
template <class Row>
void for_each_row(int64_t outer, int64_t n, int64_t inner, Row row) {
  const int64_t rows = outer * inner;
#pragma omp parallel for if (rows * n > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r / inner, k = r % inner;
    row(o * n * inner + k);
  }
}

}  // namespace

void set_force_portable_softmax(bool force) {
  g_force = force;
}
bool force_portable_softmax() {
  return g_force;
}

void softmax_portable_forward(const float* x, float* y, int64_t outer, int64_t n, int64_t inner,
                              bool log) {
  for_each_row(outer, n, inner, [&](int64_t base) {
    // PyTorch's maximum propagates NaN; a +inf (or a row of -inf) then makes every x - max
    // NaN or the sum NaN, so the row comes out NaN as in PyTorch.
    double m = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[base + i * inner];
      if (std::isnan(v) || v > m) m = v;
      if (std::isnan(m)) break;
    }
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(x[base + i * inner] - m);
    if (log) {
      const double log_sum = std::log(sum);
      for (int64_t i = 0; i < n; ++i)
        y[base + i * inner] = static_cast<float>((x[base + i * inner] - m) - log_sum);
    } else {
      for (int64_t i = 0; i < n; ++i)
        y[base + i * inner] = static_cast<float>(std::exp(x[base + i * inner] - m) / sum);
    }
  });
}

void softmax_portable_backward(const float* y, const float* dy, float* dx, int64_t outer, int64_t n,
                               int64_t inner, bool log) {
  for_each_row(outer, n, inner, [&](int64_t base) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = base + i * inner;
      sum += log ? static_cast<double>(dy[j]) : static_cast<double>(dy[j]) * y[j];
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = base + i * inner;
      dx[j] = log ? static_cast<float>(dy[j] - std::exp(static_cast<double>(y[j])) * sum)
                  : static_cast<float>(y[j] * (dy[j] - sum));
    }
  });
}

}  // namespace phalanx::ops
