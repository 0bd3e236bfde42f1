#include "optim/adagrad.h"

#include <cmath>

#include "optim/tensor_list.h"

namespace phalanx::optim {

void adagrad_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads_in,
                  const std::vector<Tensor>& sums, const std::vector<Tensor>& steps,
                  const AdagradOptions& o) {
  const char* op = "adagrad_step";
  check_params(op, params, {&sums});
  std::vector<Tensor> grads = grads_for_update(op, params, grads_in);
  check_state(op, "sum", params, sums);
  check_steps(op, params, steps);

  const float sign = o.maximize ? -1.0f : 1.0f;
  const float wd = static_cast<float>(o.weight_decay), eps = static_cast<float>(o.eps);
  for (size_t t = 0; t < params.size(); ++t) {
    const double step = increment_step(steps[t]);
    // The decayed rate in double, as PyTorch computes it in Python from the step count.
    const float neg_clr = static_cast<float>(-o.lr / (1 + (step - 1) * o.lr_decay));
    float* p = params[t].data<float>();
    const float* g = grads[t].data<float>();
    float* sum = sums[t].data<float>();
    update_parameter(params[t], params[t].stored_numel(), [=](int64_t i) {
      float d = sign * g[i];
      if (wd != 0) d = d + wd * p[i];
      sum[i] = sum[i] + d * d;
      const float std_dev = std::sqrt(sum[i]) + eps;
      p[i] = p[i] + neg_clr * (d / std_dev);
    });
    sums[t].bump_version();
  }
}

}  // namespace phalanx::optim
