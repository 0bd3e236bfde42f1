// Negative log-likelihood loss over class indices; cross_entropy and mse_loss are composed
// from it and from elementwise ops in the autograd layer.
#pragma once
#include "core/tensor.h"

namespace phalanx::ops {

enum class Reduction { None, Mean, Sum };
Reduction parse_reduction(const std::string& s);

// input: (N, C) or (N, C, d1, ...) or (C,) log-probabilities; target: int64 class indices of
// shape (N,) / (N, d1, ...) / (); weight: (C,) or undefined.
struct NllResult {
  Tensor loss;
  Tensor total_weight;  // 0-d: the sum of weights of non-ignored targets (the mean's divisor)
};
NllResult nll_loss_forward(const Tensor& input, const Tensor& target, const Tensor& weight,
                           Reduction reduction, int64_t ignore_index);
Tensor nll_loss_backward(const Tensor& grad, const Tensor& input, const Tensor& target,
                         const Tensor& weight, Reduction reduction, int64_t ignore_index,
                         const Tensor& total_weight);

}  // namespace phalanx::ops
