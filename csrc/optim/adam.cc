#include "optim/adam.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "optim/tensor_list.h"

namespace phalanx::optim {

// Torch's lerp: the two algebraically equal forms are chosen by weight for accuracy.
static inline float lerp(float self, float end, float w) {
  return std::abs(w) < 0.5f ? self + w * (end - self) : end - (end - self) * (1.0f - w);
}

void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads_in,
               const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
               const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& steps,
               const AdamOptions& o) {
  const char* op = o.decoupled_weight_decay ? "adamw_step" : "adam_step";
  check_params(op, params, {&exp_avgs, &exp_avg_sqs, &max_exp_avg_sqs});
  std::vector<Tensor> grads = grads_for_update(op, params, grads_in);
  check_state(op, "exp_avg", params, exp_avgs);
  check_state(op, "exp_avg_sq", params, exp_avg_sqs);
  if (o.amsgrad) check_state(op, "max_exp_avg_sq", params, max_exp_avg_sqs);
  PHX_CHECK(steps.size() == params.size(), ValueError, op, ": got ", params.size(),
            " parameters but ", steps.size(), " step counters");
  for (size_t i = 0; i < steps.size(); ++i)
    PHX_CHECK(steps[i].defined() && steps[i].dtype() == DType::Float32 && steps[i].numel() == 1,
              TypeError, op, ": step counter ", i, " must be a one-element float32 tensor, got ",
              steps[i].defined() ? steps[i].describe() : "undefined");

  const float sign = o.maximize ? -1.0f : 1.0f;
  const float wd = static_cast<float>(o.weight_decay);
  const float decay = static_cast<float>(1 - o.lr * o.weight_decay);
  const float w1 = static_cast<float>(1 - o.beta1), b2 = static_cast<float>(o.beta2);
  const float w2 = static_cast<float>(1 - o.beta2), eps = static_cast<float>(o.eps);
  for (size_t t = 0; t < params.size(); ++t) {
    float& step = *steps[t].data<float>();  // one element: always contiguous
    step += 1;
    steps[t].bump_version();
    // Bias corrections in double from the float32 step, as PyTorch computes them in Python.
    const double bc1 = 1 - std::pow(o.beta1, static_cast<double>(step));
    const double bc2 = 1 - std::pow(o.beta2, static_cast<double>(step));
    const float neg_step_size = static_cast<float>(-(o.lr / bc1));
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));

    float* p = params[t].data<float>();
    const float* g = grads[t].data<float>();
    float* m = exp_avgs[t].data<float>();
    float* v = exp_avg_sqs[t].data<float>();
    float* vmax = o.amsgrad ? max_exp_avg_sqs[t].data<float>() : nullptr;
    const bool decoupled = o.decoupled_weight_decay && wd != 0;
    const bool coupled = !o.decoupled_weight_decay && wd != 0;
    update_parameter(params[t], params[t].stored_numel(), [=](int64_t i) {
      if (decoupled) p[i] = p[i] * decay;
      float d = sign * g[i];
      if (coupled) d = d + wd * p[i];
      m[i] = lerp(m[i], d, w1);
      v[i] = v[i] * b2 + w2 * d * d;
      float second = v[i];
      if (vmax) second = vmax[i] = std::max(vmax[i], v[i]);
      const float denom = std::sqrt(second) / bc2_sqrt + eps;
      p[i] = p[i] + neg_step_size * m[i] / denom;
    });
    exp_avgs[t].bump_version();
    exp_avg_sqs[t].bump_version();
    if (vmax) max_exp_avg_sqs[t].bump_version();
  }
}

}  // namespace phalanx::optim
