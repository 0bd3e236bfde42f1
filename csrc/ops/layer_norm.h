// Layer normalisation over the last dimensions of an input, on oneDNN's layer_normalization.
#pragma once
#include <array>

#include "core/tensor.h"

namespace phalanx::ops {

struct LayerNormResult {
  Tensor y;          // the input's shape
  Tensor x;          // the input as normalised (contiguous): what the backward should be given
  Tensor mean, var;  // per row (biased variance), for the backward
};
// Normalises each run of the last `normalized_ndim` dimensions of x to mean 0 and variance 1,
// then scales by weight and shifts by bias (each optional, shaped as those dimensions).
LayerNormResult layer_norm_forward(const Tensor& x, int64_t normalized_ndim, const Tensor& weight,
                                   const Tensor& bias, double eps);

struct LayerNormGrads {
  Tensor dx, dweight, dbias;
};
LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean,
                                   const Tensor& var, const Tensor& weight, bool has_bias,
                                   int64_t normalized_ndim, double eps, std::array<bool, 3> need);

}  // namespace phalanx::ops
