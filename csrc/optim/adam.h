// Fused Adam and AdamW (decoupled weight decay), with amsgrad and maximize, over all
// parameters of one param group, following PyTorch's single-tensor update exactly.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace phalanx::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
  bool maximize = false;
  bool decoupled_weight_decay = false;  // true: AdamW (p *= 1 - lr * wd before the update)
};

// Updates params in place and bumps their versions. exp_avgs and exp_avg_sqs are the first and
// second moments (zero-initialised by the caller), max_exp_avg_sqs is used only with amsgrad
// (may be empty otherwise). steps are per-parameter 0-d float32 counters incremented here,
// because a parameter that missed a step (no gradient) has its own bias correction.
void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
               const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
               const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& steps,
               const AdamOptions& options);

}  // namespace phalanx::optim
