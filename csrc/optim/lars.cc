#include "optim/lars.h"

#include <cmath>

#include "core/error.h"
#include "core/factory.h"
#include "optim/tensor_list.h"

namespace phalanx::optim {

// Accumulated in double: a float sum over millions of conv weights loses the small terms.
static double l2_norm(const float* x, int64_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return std::sqrt(s);
}

static double local_lr(const float* w, const float* g, int64_t n, const LARSOptions& o) {
  const double wn = l2_norm(w, n), gn = l2_norm(g, n);
  // A zero norm means a fresh zero-initialised tensor or a dead gradient: the ratio would be
  // 0 (no update ever) or undefined, so LARS falls back to the plain learning rate.
  if (wn == 0 || gn == 0) return 1.0;
  return o.trust_coefficient * wn / (gn + o.weight_decay * wn + o.eps);
}

double lars_local_lr(const Tensor& param, const Tensor& grad, const LARSOptions& o) {
  check_params("lars_local_lr", {param});
  Tensor g = grads_for_update("lars_local_lr", {param}, {grad})[0];
  // a blocked layout's padding holds zeros: the norms are those of the elements
  return local_lr(param.data<float>(), g.data<float>(), param.stored_numel(), o);
}

void lars_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads_in,
               std::vector<Tensor>& momentum_buffers, const std::vector<bool>& excluded,
               const LARSOptions& o) {
  const char* op = "lars_step";
  check_params(op, params, {&momentum_buffers});
  std::vector<Tensor> grads = grads_for_update(op, params, grads_in);
  PHX_CHECK(excluded.size() == params.size(), ValueError, op, ": got ", params.size(),
            " parameters but ", excluded.size(), " exclusion flags");
  const bool use_momentum = o.momentum != 0;
  if (use_momentum) check_state(op, "momentum buffer", params, momentum_buffers, true);

  const float mom = static_cast<float>(o.momentum);
  for (size_t t = 0; t < params.size(); ++t) {
    float* w = params[t].data<float>();
    const float* g = grads[t].data<float>();
    const int64_t n = params[t].stored_numel();
    const double ratio = excluded[t] ? 1.0 : local_lr(w, g, n, o);
    const float wd = excluded[t] ? 0.0f : static_cast<float>(o.weight_decay);
    const float scale = static_cast<float>(o.lr * ratio);
    float* v = nullptr;
    if (use_momentum) {
      if (!momentum_buffers[t].defined()) momentum_buffers[t] = make_state(params[t]);
      v = momentum_buffers[t].data<float>();
      momentum_buffers[t].bump_version();
    }
    update_parameter(params[t], n, [=](int64_t i) {
      const float step = scale * (g[i] + wd * w[i]);
      if (v) {
        v[i] = mom * v[i] + step;
        w[i] -= v[i];
      } else {
        w[i] -= step;
      }
    });
  }
}

}  // namespace phalanx::optim
