// Summing gradients: the one place that adds a gradient into a running total, whether the total
// is a node's pending input inside the engine or a tensor's .grad.
#pragma once
#include "core/tensor.h"

namespace phalanx::autograd {

// Where the total lives, which decides what may be reused and what may be written in place.
enum class GradSink {
  // A node's pending input gradient inside one backward pass. The first gradient is kept as is,
  // and sums are out of place: the same gradient tensor may sit in several buffers (an add's
  // backward hands its incoming gradient to both inputs).
  EngineBuffer,
  // A tensor's .grad, which the user and the optimizer hold. The first gradient is copied (it
  // may alias a value the graph still holds); later ones are added in place when the layouts
  // allow, so the .grad object an optimizer captured stays the one that is updated.
  TensorGrad,
};

// total += g (an undefined g adds nothing; an undefined total becomes g, copied for TensorGrad).
void add_gradient(Tensor& total, const Tensor& g, GradSink sink);

// Adds g into t's .grad (the leaf accumulator and retain_grad both end here).
void accumulate_into_grad(const Tensor& t, const Tensor& g);

}  // namespace phalanx::autograd
