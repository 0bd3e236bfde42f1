// Batch normalisation over dim 1 of an (N, C, ...) input, on oneDNN.
#pragma once
#include <array>

#include "core/tensor.h"

namespace phalanx::ops {

struct BatchNormResult {
  Tensor y, mean, var;  // mean/var: the batch statistics (training) or the running ones (eval)
  Tensor x;             // the input as normalised (a plain 4-D one goes channels-last, else x
                        // itself): what the backward should be given, sparing a conversion
};
// Training: normalises with batch statistics and updates running_mean/var in place (if given)
// with momentum, using the unbiased variance, as PyTorch does. Eval: uses the running ones.
BatchNormResult batch_norm_forward(const Tensor& x, const Tensor& running_mean,
                                   const Tensor& running_var, const Tensor& weight,
                                   const Tensor& bias, bool training, double momentum, double eps);
struct BatchNormGrads {
  Tensor dx, dweight, dbias;
};
BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean,
                                   const Tensor& var, const Tensor& weight, bool training,
                                   double eps, std::array<bool, 3> need);

}  // namespace phalanx::ops
