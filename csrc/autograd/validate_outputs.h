// The engine's check of what a node's backward returned, as PyTorch's validate_outputs: a
// wrong gradient is refused where it is made, naming the node, instead of corrupting a sum or
// a .grad further down the graph.
#pragma once
#include "autograd/node.h"

namespace phalanx::autograd {

// One gradient per next edge; each defined gradient that flows somewhere has exactly the shape
// of the input it belongs to, and is float32 (phalanx computes every gradient in float32, also
// for half and bfloat16 tensors). Error naming the node otherwise.
void validate_outputs(const Node& node, const TensorList& grads);

}  // namespace phalanx::autograd
