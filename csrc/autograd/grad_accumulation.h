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
  // may alias a value the graph still holds) unless nothing else can see it (see
  // exclusively_owned); later ones are added in place when the layouts
  // allow, so the .grad object an optimizer captured stays the one that is updated.
  TensorGrad,
};

// total += g (an undefined g adds nothing; an undefined total becomes g, copied for TensorGrad).
void add_gradient(Tensor& total, const Tensor& g, GradSink sink);

// Whether g is the only handle on its bytes: one handle on its TensorImpl (the caller's), one
// on a storage of our own (no numpy owner or view) holding exactly g, plain and contiguous or
// in a blocked layout (a gradient in its kept weight's layout, accumulate_into_grad). A
// leaf's .grad then takes g itself instead of a copy, as PyTorch's AccumulateGrad steals an
// unshared gradient: a parameter's first gradient after zero_grad costs no copy.
bool exclusively_owned(const Tensor& g);

// Adds g into t's .grad (the leaf accumulator and retain_grad both end here). g by value: a
// caller that moves its only handle in lets .grad take the tensor without a copy.
void accumulate_into_grad(const Tensor& t, Tensor g);

}  // namespace phalanx::autograd
