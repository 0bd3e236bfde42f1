// phalanx._C.optim: the fused optimizer updates of csrc/optim, one call per param group.
// Lazily created state (momentum buffers) crosses as Optional: None in, a tensor back out.
#include <optional>

#include "bindings/convert.h"
#include "optim/adadelta.h"
#include "optim/adagrad.h"
#include "optim/adam.h"
#include "optim/lars.h"
#include "optim/rmsprop.h"
#include "optim/sgd.h"

namespace phalanx::bindings {

using OptionalTensors = std::vector<std::optional<Tensor>>;

static std::vector<Tensor> from_optional(const OptionalTensors& in) {
  std::vector<Tensor> out;
  out.reserve(in.size());
  for (const auto& t : in) out.push_back(t ? *t : Tensor());
  return out;
}

static OptionalTensors to_optional(const std::vector<Tensor>& in) {
  OptionalTensors out;
  out.reserve(in.size());
  for (const auto& t : in) out.push_back(t.defined() ? std::optional<Tensor>(t) : std::nullopt);
  return out;
}

void init_optim(py::module_& m) {
  auto o = m.def_submodule("optim", "fused optimizer updates over the tensors of a param group");

  o.def(
      "sgd_step",
      [](const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
         const OptionalTensors& buffers, double lr, double momentum, double dampening,
         double weight_decay, bool nesterov, bool maximize) {
        std::vector<Tensor> bufs = from_optional(buffers);
        optim::sgd_step(params, grads, bufs,
                        {lr, momentum, dampening, weight_decay, nesterov, maximize});
        return to_optional(bufs);
      },
      py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"), py::kw_only(),
      py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"),
      py::arg("nesterov"), py::arg("maximize"),
      "Updates params in place; returns the momentum buffers (created on the first step).");

  o.def(
      "adam_step",
      [](const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
         const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
         const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& steps, double lr,
         double beta1, double beta2, double eps, double weight_decay, bool amsgrad, bool maximize,
         bool decoupled_weight_decay) {
        optim::adam_step(
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps,
            {lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay});
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"),
      py::arg("max_exp_avg_sqs"), py::arg("steps"), py::kw_only(), py::arg("lr"), py::arg("beta1"),
      py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("amsgrad"),
      py::arg("maximize"), py::arg("decoupled_weight_decay"),
      "Updates params, moments and step counters in place.");

  o.def(
      "rmsprop_step",
      [](const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
         const std::vector<Tensor>& square_avgs, const std::vector<Tensor>& momentum_buffers,
         const std::vector<Tensor>& grad_avgs, const std::vector<Tensor>& steps, double lr,
         double alpha, double eps, double weight_decay, double momentum, bool centered,
         bool maximize) {
        optim::rmsprop_step(params, grads, square_avgs, momentum_buffers, grad_avgs, steps,
                            {lr, alpha, eps, weight_decay, momentum, centered, maximize});
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avgs"), py::arg("momentum_buffers"),
      py::arg("grad_avgs"), py::arg("steps"), py::kw_only(), py::arg("lr"), py::arg("alpha"),
      py::arg("eps"), py::arg("weight_decay"), py::arg("momentum"), py::arg("centered"),
      py::arg("maximize"), "Updates params, averages, buffers and step counters in place.");

  o.def(
      "adagrad_step",
      [](const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
         const std::vector<Tensor>& sums, const std::vector<Tensor>& steps, double lr,
         double lr_decay, double weight_decay, double eps, bool maximize) {
        optim::adagrad_step(params, grads, sums, steps,
                            {lr, lr_decay, weight_decay, eps, maximize});
      },
      py::arg("params"), py::arg("grads"), py::arg("sums"), py::arg("steps"), py::kw_only(),
      py::arg("lr"), py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"),
      py::arg("maximize"), "Updates params, sums of squared gradients and step counters.");

  o.def(
      "adadelta_step",
      [](const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
         const std::vector<Tensor>& square_avgs, const std::vector<Tensor>& acc_deltas,
         const std::vector<Tensor>& steps, double lr, double rho, double eps, double weight_decay,
         bool maximize) {
        optim::adadelta_step(params, grads, square_avgs, acc_deltas, steps,
                             {lr, rho, eps, weight_decay, maximize});
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avgs"), py::arg("acc_deltas"),
      py::arg("steps"), py::kw_only(), py::arg("lr"), py::arg("rho"), py::arg("eps"),
      py::arg("weight_decay"), py::arg("maximize"),
      "Updates params, both running averages and step counters in place.");

  o.def(
      "lars_step",
      [](const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
         const OptionalTensors& buffers, const std::vector<bool>& excluded, double lr,
         double momentum, double weight_decay, double trust_coefficient, double eps) {
        std::vector<Tensor> bufs = from_optional(buffers);
        optim::lars_step(params, grads, bufs, excluded,
                         {lr, momentum, weight_decay, trust_coefficient, eps});
        return to_optional(bufs);
      },
      py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"), py::arg("excluded"),
      py::kw_only(), py::arg("lr"), py::arg("momentum"), py::arg("weight_decay"),
      py::arg("trust_coefficient"), py::arg("eps"),
      "Updates params in place; returns the momentum buffers (created as zeros on the first "
      "step).");

  o.def(
      "lars_local_lr",
      [](const Tensor& param, const Tensor& grad, double weight_decay, double trust_coefficient,
         double eps) {
        return optim::lars_local_lr(param, grad, {0, 0, weight_decay, trust_coefficient, eps});
      },
      py::arg("param"), py::arg("grad"), py::kw_only(), py::arg("weight_decay"),
      py::arg("trust_coefficient"), py::arg("eps"));
}

}  // namespace phalanx::bindings
