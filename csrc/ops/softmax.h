// softmax and log_softmax along one dimension, on oneDNN (or, where oneDNN has only its
// reference implementation, on the portable kernels of softmax_portable.h).
#pragma once
#include "core/tensor.h"

namespace phalanx::ops {

Tensor softmax_forward(const Tensor& x, int64_t dim, bool log);
// y is the forward output (softmax needs only it for the gradient).
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim, bool log);

}  // namespace phalanx::ops
