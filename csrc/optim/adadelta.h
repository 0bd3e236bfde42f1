// Fused Adadelta (with weight decay, maximize) over all parameters of one param group,
// following PyTorch's single-tensor update exactly.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace phalanx::optim {

struct AdadeltaOptions {
  double lr = 1.0;
  double rho = 0.9;
  double eps = 1e-6;
  double weight_decay = 0;
  bool maximize = false;
};

// Updates params and their running averages of squared gradients (square_avgs) and squared
// updates (acc_deltas) in place and bumps their versions. Both averages start at zero
// (created by the caller); steps are per-parameter 0-d float32 counters incremented here.
void adadelta_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                   const std::vector<Tensor>& square_avgs, const std::vector<Tensor>& acc_deltas,
                   const std::vector<Tensor>& steps, const AdadeltaOptions& options);

}  // namespace phalanx::optim
