// Runs the backward graph from some roots, in reverse creation order, accumulating into leaves.
#pragma once
#include <functional>

#include "autograd/node.h"

namespace phalanx::autograd {

// roots[i] gets gradient grads[i] (undefined: ones, allowed only for scalars).
void backward(const TensorList& roots, const TensorList& grads, bool retain_graph);

// The gradients of the roots with respect to `inputs` (torch.autograd.grad): the same pass as
// backward, except that no leaf's .grad is touched. An input the roots do not depend on gets
// an undefined tensor.
TensorList grad(const TensorList& roots, const TensorList& grads, const TensorList& inputs,
                bool retain_graph);

// Runs `fn` once the backward pass running on this thread has finished (after every gradient
// is accumulated), in the order queued; a callback may queue more. Only valid from inside a
// backward pass (a hook); the data-parallel reducer uses it to wait for its last all-reduce.
void queue_callback(std::function<void()> fn);

}  // namespace phalanx::autograd
