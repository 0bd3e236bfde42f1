// Runs the backward graph from some roots, in reverse creation order, accumulating into leaves.
#pragma once
#include "autograd/node.h"

namespace phalanx::autograd {

// roots[i] gets gradient grads[i] (undefined: ones, allowed only for scalars).
void backward(const TensorList& roots, const TensorList& grads, bool retain_graph);

}  // namespace phalanx::autograd
