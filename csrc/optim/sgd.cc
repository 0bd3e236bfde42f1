#include "optim/sgd.h"

#include "optim/tensor_list.h"

namespace phalanx::optim {

void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads_in,
              std::vector<Tensor>& momentum_buffers, const SGDOptions& o) {
  const char* op = "sgd_step";
  const bool use_momentum = o.momentum != 0;
  check_params(op, params, {&momentum_buffers});
  std::vector<Tensor> grads = grads_for_update(op, params, grads_in);
  if (use_momentum) check_state(op, "momentum buffer", params, momentum_buffers, true);

  // Scalars are rounded to float once, as PyTorch passes them to its float32 kernels.
  const float wd = static_cast<float>(o.weight_decay), mom = static_cast<float>(o.momentum);
  const float keep = static_cast<float>(1 - o.dampening), neg_lr = static_cast<float>(-o.lr);
  const float sign = o.maximize ? -1.0f : 1.0f;
  for (size_t t = 0; t < params.size(); ++t) {
    float* p = params[t].data<float>();
    const float* g = grads[t].data<float>();
    const int64_t n = params[t].stored_numel();
    float* buf = nullptr;
    bool first = false;
    if (use_momentum) {
      first = !momentum_buffers[t].defined();
      if (first) momentum_buffers[t] = make_state(params[t]);
      buf = momentum_buffers[t].data<float>();
      momentum_buffers[t].bump_version();
    }
    const bool nesterov = o.nesterov;
    update_parameter(params[t], n, [=](int64_t i) {
      float d = sign * g[i];
      if (wd != 0) d = d + wd * p[i];
      if (buf) {
        buf[i] = first ? d : buf[i] * mom + keep * d;
        d = nesterov ? d + mom * buf[i] : buf[i];
      }
      p[i] = p[i] + neg_lr * d;
    });
  }
}

}  // namespace phalanx::optim
