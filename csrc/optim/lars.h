// Fused LARS (layer-wise adaptive rate scaling, You, Gitman and Ginsburg 2017), the update of
// large-batch ImageNet training: each tensor's step is scaled by a trust ratio of its weight
// norm to its gradient norm, so no layer's step outgrows its weights at huge learning rates.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace phalanx::optim {

struct LARSOptions {
  double lr = 0;
  double momentum = 0.9;
  double weight_decay = 0;
  double trust_coefficient = 0.001;  // eta in the paper
  double eps = 1e-8;
};

// For each parameter w with gradient g (norms ||.|| are L2 over the whole tensor):
//   local_lr = trust_coefficient * ||w|| / (||g|| + weight_decay * ||w|| + eps),
//              or 1 when ||w|| == 0 or ||g|| == 0;
//   v = momentum * v + lr * local_lr * (g + weight_decay * w);   w -= v.
// A parameter with excluded[i] set (biases, norm scales) gets local_lr = 1 and no weight
// decay: v = momentum * v + lr * g. Which parameters are excluded is the caller's policy.
// Momentum buffers (one per parameter, when momentum != 0) start at zero: undefined entries
// are created here. Bumps every parameter's version counter.
void lars_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
               std::vector<Tensor>& momentum_buffers, const std::vector<bool>& excluded,
               const LARSOptions& options);

// The trust-ratio factor local_lr above, exposed for tests and logging.
double lars_local_lr(const Tensor& param, const Tensor& grad, const LARSOptions& options);

}  // namespace phalanx::optim
