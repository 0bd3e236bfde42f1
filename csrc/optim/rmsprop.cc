#include "optim/rmsprop.h"

#include <cmath>

#include "optim/tensor_list.h"

namespace phalanx::optim {

// Torch's lerp: the two algebraically equal forms are chosen by weight for accuracy.
static inline float lerp(float self, float end, float w) {
  return std::abs(w) < 0.5f ? self + w * (end - self) : end - (end - self) * (1.0f - w);
}

void rmsprop_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads_in,
                  const std::vector<Tensor>& square_avgs,
                  const std::vector<Tensor>& momentum_buffers, const std::vector<Tensor>& grad_avgs,
                  const std::vector<Tensor>& steps, const RMSpropOptions& o) {
  const char* op = "rmsprop_step";
  check_params(op, params, {&square_avgs, &momentum_buffers, &grad_avgs});
  std::vector<Tensor> grads = grads_for_update(op, params, grads_in);
  check_state(op, "square_avg", params, square_avgs);
  const bool use_momentum = o.momentum > 0;
  if (use_momentum) check_state(op, "momentum_buffer", params, momentum_buffers);
  if (o.centered) check_state(op, "grad_avg", params, grad_avgs);
  check_steps(op, params, steps);

  // Scalars are rounded to float once, as PyTorch passes them to its float32 kernels.
  const float sign = o.maximize ? -1.0f : 1.0f;
  const float wd = static_cast<float>(o.weight_decay), alpha = static_cast<float>(o.alpha);
  const float w = static_cast<float>(1 - o.alpha), eps = static_cast<float>(o.eps);
  const float mom = static_cast<float>(o.momentum), neg_lr = static_cast<float>(-o.lr);
  const bool centered = o.centered;
  for (size_t t = 0; t < params.size(); ++t) {
    increment_step(steps[t]);
    float* p = params[t].data<float>();
    const float* g = grads[t].data<float>();
    float* sq = square_avgs[t].data<float>();
    float* buf = use_momentum ? momentum_buffers[t].data<float>() : nullptr;
    float* gavg = centered ? grad_avgs[t].data<float>() : nullptr;
    update_parameter(params[t], params[t].stored_numel(), [=](int64_t i) {
      float d = sign * g[i];
      if (wd != 0) d = d + wd * p[i];
      sq[i] = sq[i] * alpha + w * d * d;
      float avg;
      if (centered) {
        gavg[i] = lerp(gavg[i], d, w);
        avg = std::sqrt(sq[i] - gavg[i] * gavg[i]);
      } else {
        avg = std::sqrt(sq[i]);
      }
      avg = avg + eps;
      if (buf) {
        buf[i] = buf[i] * mom + d / avg;
        p[i] = p[i] + neg_lr * buf[i];
      } else {
        p[i] = p[i] + neg_lr * (d / avg);
      }
    });
    square_avgs[t].bump_version();
    if (buf) momentum_buffers[t].bump_version();
    if (gavg) grad_avgs[t].bump_version();
  }
}

}  // namespace phalanx::optim
