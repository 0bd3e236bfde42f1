// Early returns for tensors with no elements. oneDNN creates no primitive for an empty
// dimension (or crashes executing one), so kernels answer these cases before reaching it:
// outputs of the right shape, gradients that are zeros (a sum over no elements).
#pragma once
#include "core/tensor.h"

namespace phalanx::ops {

inline bool has_no_elements(const Tensor& t) {
  return t.numel() == 0;
}

// zeros(shape) when the gradient is needed, else an undefined tensor.
Tensor zero_grad_if(bool needed, const Shape& shape);

}  // namespace phalanx::ops
