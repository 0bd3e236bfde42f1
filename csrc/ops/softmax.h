// softmax and log_softmax along one dimension, on oneDNN.
#pragma once
#include "core/tensor.h"

namespace phalanx::ops {

Tensor softmax_forward(const Tensor& x, int64_t dim, bool log);
// y is the forward output (softmax needs only it for the gradient).
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim, bool log);

}  // namespace phalanx::ops
