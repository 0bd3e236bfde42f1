// Fused RMSprop (with momentum, centered, weight decay, maximize) over all parameters of one
// param group, following PyTorch's single-tensor update exactly.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace phalanx::optim {

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
  bool maximize = false;
};

// Updates params and state in place and bumps their versions. square_avgs are always used;
// momentum_buffers only when momentum > 0 and grad_avgs only when centered (either may be
// empty otherwise). All state starts at zero (created by the caller). steps are per-parameter
// 0-d float32 counters incremented here (kept for PyTorch's state_dict; the rule ignores them).
void rmsprop_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                  const std::vector<Tensor>& square_avgs,
                  const std::vector<Tensor>& momentum_buffers, const std::vector<Tensor>& grad_avgs,
                  const std::vector<Tensor>& steps, const RMSpropOptions& options);

}  // namespace phalanx::optim
