// Batch normalisation over dim 1 of an (N, C, ...) input, on oneDNN.
#pragma once
#include <array>

#include "core/tensor.h"

namespace phalanx::ops {

// Which kernel normalises a plain (not blocked) input: the direct loops of batch_norm_plain.h
// (faster than oneDNN 2.6 on plain NCHW, the default) or oneDNN's primitive (what group norm
// asks for: its (1, N * groups, values) view is no NCHW activation the loops were tuned on).
// Blocked inputs always take the primitive.
enum class PlainKernel { Loops, OneDnn };

struct BatchNormResult {
  Tensor y, mean, var;  // mean/var: the batch statistics (training) or the running ones (eval)
  Tensor x;             // the input as normalised: what the backward should be given
  Tensor workspace;     // fuse_relu: which outputs the ReLU zeroed (for the backward)
};
// Training: normalises with batch statistics and updates running_mean/var in place (if given)
// with momentum, using the unbiased variance, as PyTorch does. Eval: uses the running ones.
// fuse_relu (a blocked input only): y = relu(batch_norm(x)) in one pass, oneDNN's
// fuse_norm_relu; the result's workspace then goes to the backward.
BatchNormResult batch_norm_forward(const Tensor& x, const Tensor& running_mean,
                                   const Tensor& running_var, const Tensor& weight,
                                   const Tensor& bias, bool training, double momentum, double eps,
                                   bool fuse_relu = false,
                                   PlainKernel plain_kernel = PlainKernel::Loops);
// Whether batch_norm_forward with fuse_relu on x keeps a NaN as ReLU does: true where
// phalanx's loops (batch_norm_blocked.h) normalise x, false on oneDNN's fuse_norm_relu,
// which maps NaN to 0.
bool fused_relu_keeps_nan(const Tensor& x);

struct BatchNormGrads {
  Tensor dx, dweight, dbias;
};
BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean,
                                   const Tensor& var, const Tensor& weight, bool training,
                                   double eps, std::array<bool, 3> need,
                                   const Tensor& relu_workspace = Tensor(),
                                   PlainKernel plain_kernel = PlainKernel::Loops);

}  // namespace phalanx::ops
