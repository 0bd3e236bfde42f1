// Fused SGD (optionally with momentum, dampening, Nesterov, weight decay, maximize) over all
// parameters of one param group, with PyTorch's exact update order.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace phalanx::optim {

struct SGDOptions {
  double lr = 0;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool maximize = false;
};

// Updates every params[i] in place from grads[i] and bumps its version counter.
// momentum_buffers is ignored when momentum == 0; otherwise it holds one entry per parameter,
// and an undefined entry is created here from the first step's gradient (PyTorch's rule:
// the buffer starts as the gradient, not as zero), so the caller must keep the vector.
void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
              std::vector<Tensor>& momentum_buffers, const SGDOptions& options);

}  // namespace phalanx::optim
