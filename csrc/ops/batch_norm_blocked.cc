#include "ops/batch_norm_blocked.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/isa_clones.h"

namespace phalanx::ops::bn_blocked {

namespace {

// Positions summed in float before the chunk's sum is added in double: the float error is that
// of 64 values, however large N * H * W.
constexpr int64_t kChunk = 64;

int64_t blocks(const Dims& d) {
  return (d.C + d.B - 1) / d.B;
}

// A per-channel array padded to whole blocks (padding 0), so lane j of block cb reads
// channel cb * B + j with no bounds test in the vector loops.
std::vector<float> padded(const Dims& d, const float* v) {
  std::vector<float> out(static_cast<size_t>(blocks(d) * d.B), 0.f);
  if (v) std::copy(v, v + d.C, out.begin());
  return out;
}

// sums[c] = sum over n of part[n * Cp + c], in double.
std::vector<double> total_over_batch(const Dims& d, const std::vector<double>& part) {
  const int64_t Cp = blocks(d) * d.B;
  std::vector<double> sums(static_cast<size_t>(d.C), 0.0);
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t c = 0; c < d.C; ++c) sums[c] += part[n * Cp + c];
  return sums;
}

// The loops over one row: the L positions of one block of one sample, B channels each.
// Vectorised across the B lanes; see isa_clones.h for the per-ISA copies.

// Mean and sum of squared deviations (M2) of a set of values, in double.
struct Moments {
  double count = 0, mean = 0, m2 = 0;
  // Chan et al.'s pairwise update: exact for any split, no cancellation between the parts.
  void add(double n, double chunk_mean, double chunk_m2) {
    const double total = count + n, delta = chunk_mean - mean;
    mean += delta * n / total;
    m2 += chunk_m2 + delta * delta * count * n / total;
    count = total;
  }
};

// The moments of each lane over the row, in one pass over memory: each chunk of positions
// (4 KiB at B = 16, in L1) is read twice — its sum, then the squares of the deviations from
// its own mean, in float — and the chunks are combined in double.
template <int B>
PHX_ISA_CLONES void row_moments(const float* xs, int64_t L, Moments* out) {
  for (int64_t l0 = 0; l0 < L; l0 += kChunk) {
    const int64_t l1 = std::min(L, l0 + kChunk);
    const float n = static_cast<float>(l1 - l0);
    float sum[B] = {}, m[B], m2[B] = {};
    for (int64_t l = l0; l < l1; ++l) {
#pragma omp simd
      for (int j = 0; j < B; ++j) sum[j] += xs[l * B + j];
    }
    for (int j = 0; j < B; ++j) m[j] = sum[j] / n;
    for (int64_t l = l0; l < l1; ++l) {
#pragma omp simd
      for (int j = 0; j < B; ++j) {
        const float t = xs[l * B + j] - m[j];
        m2[j] += t * t;
      }
    }
    for (int j = 0; j < B; ++j) out[j].add(l1 - l0, m[j], m2[j]);
  }
}

// y = x * a[j] + b[j]; with a mask, y = max(y, 0) and the mask says which values were kept.
template <int B>
PHX_ISA_CLONES void row_normalise(const float* xs, float* ys, const float* a, const float* b,
                                  int64_t L, uint8_t* ms) {
  if (ms) {
    for (int64_t l = 0; l < L; ++l) {
#pragma omp simd
      for (int j = 0; j < B; ++j) {
        const float v = xs[l * B + j] * a[j] + b[j];
        const bool keep = !(v <= 0.f);  // NaN is kept, as torch.relu does
        ys[l * B + j] = keep ? v : 0.f;
        ms[l * B + j] = keep;
      }
    }
  } else {
    for (int64_t l = 0; l < L; ++l) {
#pragma omp simd
      for (int j = 0; j < B; ++j) ys[l * B + j] = xs[l * B + j] * a[j] + b[j];
    }
  }
}

// out_dy[j] = sum of dy, out_dy_xc[j] = sum of dy * (x - m[j]); dy masked (0) where ms is 0.
// Two loops: a test of ms inside one keeps it from being vectorised.
template <int B>
PHX_ISA_CLONES void row_grad_sums(const float* dys, const float* xs, const uint8_t* ms,
                                  const float* m, int64_t L, double* out_dy, double* out_dy_xc) {
  double total_dy[B] = {}, total_dy_xc[B] = {};
  for (int64_t l0 = 0; l0 < L; l0 += kChunk) {
    const int64_t l1 = std::min(L, l0 + kChunk);
    float acc_dy[B] = {}, acc_dy_xc[B] = {};
    if (ms) {
      for (int64_t l = l0; l < l1; ++l) {
#pragma omp simd
        for (int j = 0; j < B; ++j) {
          const int64_t i = l * B + j;
          const float v = dys[i];  // read unconditionally: a select, not a branch
          const float g = ms[i] ? v : 0.f;
          acc_dy[j] += g;
          acc_dy_xc[j] += g * (xs[i] - m[j]);
        }
      }
    } else {
      for (int64_t l = l0; l < l1; ++l) {
#pragma omp simd
        for (int j = 0; j < B; ++j) {
          const int64_t i = l * B + j;
          acc_dy[j] += dys[i];
          acc_dy_xc[j] += dys[i] * (xs[i] - m[j]);
        }
      }
    }
    for (int j = 0; j < B; ++j) {
      total_dy[j] += acc_dy[j];
      total_dy_xc[j] += acc_dy_xc[j];
    }
  }
  std::copy(total_dy, total_dy + B, out_dy);
  std::copy(total_dy_xc, total_dy_xc + B, out_dy_xc);
}

// dx = gain[j] * (dy - mean_dy[j] - (x - m[j]) * k[j]), dy masked as in row_grad_sums.
template <int B>
PHX_ISA_CLONES void row_grad_input(const float* dys, const float* xs, const uint8_t* ms,
                                   const float* m, const float* gain, const float* mean_dy,
                                   const float* k, int64_t L, float* dxs) {
  if (ms) {
    for (int64_t l = 0; l < L; ++l) {
#pragma omp simd
      for (int j = 0; j < B; ++j) {
        const int64_t i = l * B + j;
        const float v = dys[i];
        const float g = ms[i] ? v : 0.f;
        dxs[i] = gain[j] * (g - mean_dy[j] - (xs[i] - m[j]) * k[j]);
      }
    }
  } else {
    for (int64_t l = 0; l < L; ++l) {
#pragma omp simd
      for (int j = 0; j < B; ++j) {
        const int64_t i = l * B + j;
        dxs[i] = gain[j] * (dys[i] - mean_dy[j] - (xs[i] - m[j]) * k[j]);
      }
    }
  }
}

// The moments of every channel: rows in parallel, then combined over the batch in order.
template <int B>
std::vector<Moments> channel_moments(const Dims& d, const float* x) {
  const int64_t Cb = blocks(d), Cp = Cb * B;
  std::vector<Moments> part(static_cast<size_t>(d.N * Cp));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t cb = 0; cb < Cb; ++cb)
      row_moments<B>(x + (n * Cb + cb) * d.L * B, d.L, part.data() + n * Cp + cb * B);
  std::vector<Moments> total(static_cast<size_t>(d.C));
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t c = 0; c < d.C; ++c) {
      const Moments& p = part[n * Cp + c];
      total[c].add(p.count, p.mean, p.m2);
    }
  return total;
}

template <int B>
void forward_b(const Dims& d, const float* x, float* y, float* mean, float* var,
               const float* weight, const float* bias, bool training, float eps,
               uint8_t* relu_mask) {
  const int64_t Cb = blocks(d);
  if (training) {
    const auto moments = channel_moments<B>(d, x);
    for (int64_t c = 0; c < d.C; ++c) {
      mean[c] = static_cast<float>(moments[c].mean);
      var[c] = static_cast<float>(moments[c].m2 / moments[c].count);
    }
  }
  // Padding channels get scale 0 and shift 0: their outputs are zeros, as oneDNN's are.
  std::vector<float> scale = padded(d, nullptr), shift = padded(d, nullptr);
  for (int64_t c = 0; c < d.C; ++c) {
    const float invstd = 1.f / std::sqrt(var[c] + eps);
    scale[c] = weight ? weight[c] * invstd : invstd;
    shift[c] = (bias ? bias[c] : 0.f) - mean[c] * scale[c];
  }
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < d.N; ++n) {
    for (int64_t cb = 0; cb < Cb; ++cb) {
      const int64_t base = (n * Cb + cb) * d.L * B;
      row_normalise<B>(x + base, y + base, scale.data() + cb * B, shift.data() + cb * B, d.L,
                       relu_mask ? relu_mask + base : nullptr);
    }
  }
}

template <int B>
void backward_b(const Dims& d, const float* dy, const float* x, const float* mean, const float* var,
                const float* weight, bool training, float eps, const uint8_t* relu_mask, float* dx,
                float* dweight, float* dbias) {
  const int64_t Cb = blocks(d);
  const double count = static_cast<double>(d.N * d.L);
  const std::vector<float> m = padded(d, mean);
  std::vector<double> part_dy(static_cast<size_t>(d.N * Cb * B)), part_dy_xc(part_dy.size());
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < d.N; ++n) {
    for (int64_t cb = 0; cb < Cb; ++cb) {
      const int64_t base = (n * Cb + cb) * d.L * B, at = (n * Cb + cb) * B;
      row_grad_sums<B>(dy + base, x + base, relu_mask ? relu_mask + base : nullptr,
                       m.data() + cb * B, d.L, part_dy.data() + at, part_dy_xc.data() + at);
    }
  }
  const auto sum_dy = total_over_batch(d, part_dy);
  const auto sum_dy_xc = total_over_batch(d, part_dy_xc);
  // training: dx = g * (dy - mean(dy) - (x - mean) * k), k = invstd * mean(dy * xhat);
  // eval: dx = g * dy. Padding channels get g = 0: their gradient is zero.
  std::vector<float> gain = padded(d, nullptr), mean_dy = gain, k = gain;
  for (int64_t c = 0; c < d.C; ++c) {
    const float invstd = 1.f / std::sqrt(var[c] + eps);
    const double sum_dy_xhat = sum_dy_xc[c] * invstd;
    if (dweight) dweight[c] = static_cast<float>(sum_dy_xhat);
    if (dbias) dbias[c] = static_cast<float>(sum_dy[c]);
    gain[c] = (weight ? weight[c] : 1.f) * invstd;
    mean_dy[c] = training ? static_cast<float>(sum_dy[c] / count) : 0.f;
    k[c] = training ? static_cast<float>(sum_dy_xhat / count) * invstd : 0.f;
  }
  if (!dx) return;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < d.N; ++n) {
    for (int64_t cb = 0; cb < Cb; ++cb) {
      const int64_t base = (n * Cb + cb) * d.L * B;
      const int64_t at = cb * B;
      row_grad_input<B>(dy + base, x + base, relu_mask ? relu_mask + base : nullptr, m.data() + at,
                        gain.data() + at, mean_dy.data() + at, k.data() + at, d.L, dx + base);
    }
  }
}

}  // namespace

int64_t stored_size(const Dims& d) {
  return d.N * blocks(d) * d.B * d.L;
}

void forward(const Dims& d, const float* x, float* y, float* mean, float* var, const float* weight,
             const float* bias, bool training, float eps, uint8_t* relu_mask) {
  if (d.B == 16)
    forward_b<16>(d, x, y, mean, var, weight, bias, training, eps, relu_mask);
  else
    forward_b<8>(d, x, y, mean, var, weight, bias, training, eps, relu_mask);
}

void backward(const Dims& d, const float* dy, const float* x, const float* mean, const float* var,
              const float* weight, bool training, float eps, const uint8_t* relu_mask, float* dx,
              float* dweight, float* dbias) {
  if (d.B == 16)
    backward_b<16>(d, dy, x, mean, var, weight, training, eps, relu_mask, dx, dweight, dbias);
  else
    backward_b<8>(d, dy, x, mean, var, weight, training, eps, relu_mask, dx, dweight, dbias);
}

}  // namespace phalanx::ops::bn_blocked
