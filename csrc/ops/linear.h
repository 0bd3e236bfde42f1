// Fully connected layer y = x W^T + b on oneDNN inner product, and matmul.
#pragma once
#include <array>

#include "core/tensor.h"

namespace phalanx::ops {

// x: [N, in], w: [out, in], bias: [out] or undefined.
Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias);
struct LinearGrads {
  Tensor dx, dw, db;
};
LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, bool has_bias,
                            std::array<bool, 3> need);

// Batched matrix product of contiguous float32 [B, M, K] x [B, K, N] (B may be 1 on one side).
Tensor bmm(const Tensor& a, const Tensor& b);

}  // namespace phalanx::ops
