#include "autograd/hooks.h"

#include "autograd/grad_accumulation.h"
#include "core/error.h"

namespace phalanx::autograd {

namespace {

TensorHook removable(TensorHook hook, const std::shared_ptr<bool>& active) {
  return [hook = std::move(hook), active](const Tensor& g) -> Tensor {
    return *active ? hook(g) : Tensor();
  };
}

// A hook may change a gradient's values, never its shape or dtype: the gradient still has to
// fit the tensor it belongs to (and the .grad an optimizer holds).
Tensor run_hook(const TensorHook& hook, const Tensor& grad) {
  Tensor r = hook(grad);
  if (!r.defined()) return grad;
  PHX_CHECK(r.sizes() == grad.sizes(), Error,
            "a gradient hook changed the shape of the gradient of a tensor of shape ",
            shape_str(grad.sizes()), " to ", shape_str(r.sizes()),
            ": a hook may return a gradient of the same shape and dtype, or None");
  PHX_CHECK(r.dtype() == grad.dtype(), Error,
            "a gradient hook changed the dtype of the gradient of a tensor of shape ",
            shape_str(grad.sizes()), " from ", dtype_name(grad.dtype()), " to ",
            dtype_name(r.dtype()),
            ": a hook may return a gradient of the same shape and dtype, or None");
  return r;
}

}  // namespace

HookHandle register_hook(const Tensor& t, TensorHook hook) {
  PHX_CHECK(t.requires_grad(), Error,
            "cannot register a hook on a tensor that doesn't require gradient");
  auto active = std::make_shared<bool>(true);
  if (t.is_leaf())
    t.autograd_meta().leaf_hooks.push_back(removable(std::move(hook), active));
  else
    t.grad_fn()->pre_hooks.emplace_back(t.autograd_meta().output_nr,
                                        removable(std::move(hook), active));
  return {active};
}

HookHandle register_post_accumulate_grad_hook(const Tensor& t, PostAccumulateHook hook) {
  PHX_CHECK(t.is_leaf() && t.requires_grad(), Error,
            "post accumulate grad hooks can only be registered on leaf tensors that require grad");
  auto active = std::make_shared<bool>(true);
  t.autograd_meta().post_accumulate_hooks.push_back(
      [hook = std::move(hook), active](const Tensor& var) {
        if (*active) hook(var);
      });
  return {active};
}

void retain_grad(const Tensor& t) {
  PHX_CHECK(t.requires_grad(), Error, "can't retain_grad on Tensor that has requires_grad=False");
  if (t.is_leaf() || t.autograd_meta().retains_grad) return;
  t.autograd_meta().retains_grad = true;
  // Weak: the graph must not keep the tensor alive (its grad_fn is owned by the tensor).
  std::weak_ptr<TensorImpl> weak = t.impl_ptr();
  t.grad_fn()->pre_hooks.emplace_back(t.autograd_meta().output_nr,
                                      [weak](const Tensor& g) -> Tensor {
                                        if (auto impl = weak.lock())
                                          accumulate_into_grad(Tensor(impl), g);
                                        return Tensor();
                                      });
}

Tensor run_hooks(const std::vector<TensorHook>& hooks, Tensor grad) {
  for (const auto& hook : hooks) grad = run_hook(hook, grad);
  return grad;
}

void run_pre_hooks(const Node& node, TensorList& grads) {
  for (const auto& [idx, hook] : node.pre_hooks) grads[idx] = run_hook(hook, grads[idx]);
}

}  // namespace phalanx::autograd
