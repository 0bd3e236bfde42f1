// Gradient hooks on tensors (register_hook, register_post_accumulate_grad_hook, retain_grad)
// and how the engine runs them.
#pragma once
#include <memory>

#include "autograd/node.h"

namespace phalanx::autograd {

// Returned by a registration; remove() disables the hook (it stays in its list, inert, so a
// backward pass iterating the list is never invalidated).
struct HookHandle {
  std::shared_ptr<bool> active;
  void remove() { *active = false; }
};

// A hook on t's gradient: for a leaf it runs before accumulation into .grad, for a non-leaf
// when the gradient of t reaches t's grad_fn. It may return a replacement gradient (undefined:
// keep the gradient). Error when t does not require grad.
HookHandle register_hook(const Tensor& t, TensorHook hook);
// Runs with the leaf itself after its .grad was updated. Error unless t is a leaf requiring grad.
HookHandle register_post_accumulate_grad_hook(const Tensor& t, PostAccumulateHook hook);
// Makes a non-leaf keep its gradient in .grad (summed over backward passes), as leaves do.
void retain_grad(const Tensor& t);

// Runs `hooks` in order on `grad`, each seeing the previous one's result.
Tensor run_hooks(const std::vector<TensorHook>& hooks, Tensor grad);
// Runs node's pre-hooks on the gradients of its outputs, before node->apply.
void run_pre_hooks(const Node& node, TensorList& grads);

}  // namespace phalanx::autograd
