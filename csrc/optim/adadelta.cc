#include "optim/adadelta.h"

#include <cmath>

#include "optim/tensor_list.h"

namespace phalanx::optim {

void adadelta_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads_in,
                   const std::vector<Tensor>& square_avgs, const std::vector<Tensor>& acc_deltas,
                   const std::vector<Tensor>& steps, const AdadeltaOptions& o) {
  const char* op = "adadelta_step";
  check_params(op, params, {&square_avgs, &acc_deltas});
  std::vector<Tensor> grads = grads_for_update(op, params, grads_in);
  check_state(op, "square_avg", params, square_avgs);
  check_state(op, "acc_delta", params, acc_deltas);
  check_steps(op, params, steps);

  const float sign = o.maximize ? -1.0f : 1.0f;
  const float wd = static_cast<float>(o.weight_decay), eps = static_cast<float>(o.eps);
  const float rho = static_cast<float>(o.rho), w = static_cast<float>(1 - o.rho);
  const float neg_lr = static_cast<float>(-o.lr);
  for (size_t t = 0; t < params.size(); ++t) {
    increment_step(steps[t]);
    float* p = params[t].data<float>();
    const float* g = grads[t].data<float>();
    float* sq = square_avgs[t].data<float>();
    float* acc = acc_deltas[t].data<float>();
    update_parameter(params[t], params[t].stored_numel(), [=](int64_t i) {
      float d = sign * g[i];
      if (wd != 0) d = d + wd * p[i];
      sq[i] = sq[i] * rho + w * d * d;
      const float std_dev = std::sqrt(sq[i] + eps);
      const float delta = std::sqrt(acc[i] + eps) / std_dev * d;
      acc[i] = acc[i] * rho + w * delta * delta;
      p[i] = p[i] + neg_lr * delta;
    });
    square_avgs[t].bump_version();
    acc_deltas[t].bump_version();
  }
}

}  // namespace phalanx::optim
