// Add, sub and mul of two same-shape float32 tensors when one is in a oneDNN blocked layout
// (a residual add, the engine summing two gradients): done by oneDNN's binary primitive in
// that layout, so neither operand is converted to plain and the result stays blocked for the
// next oneDNN op.
#pragma once
#include "core/tensor.h"
#include "ops/elementwise.h"

namespace phalanx::ops {

// The result, or an undefined tensor when the case does not apply (the caller then runs the
// plain broadcasting loop).
Tensor blocked_binary(BinaryOp op, const Tensor& a, const Tensor& b);

}  // namespace phalanx::ops
