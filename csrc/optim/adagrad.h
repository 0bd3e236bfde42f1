// Fused Adagrad (with learning-rate decay, weight decay, maximize) over all parameters of one
// param group, following PyTorch's single-tensor update exactly.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace phalanx::optim {

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0;
  double weight_decay = 0;
  double eps = 1e-10;
  bool maximize = false;
};

// Updates params and their sums of squared gradients in place and bumps their versions.
// sums start at initial_accumulator_value (created by the caller); steps are per-parameter
// 0-d float32 counters incremented here, since the decayed rate uses each parameter's count.
void adagrad_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                  const std::vector<Tensor>& sums, const std::vector<Tensor>& steps,
                  const AdagradOptions& options);

}  // namespace phalanx::optim
