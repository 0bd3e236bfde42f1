// Batch normalisation of a plain (N, C, L) input — (N, C, H, W) with L = H*W, or (N, C) with
// L = 1 — by direct loops, one channel per task. oneDNN 2.6 normalises plain NCHW 1.5x
// (forward) to 4x (backward) slower than PyTorch; going channels-last and back costs two
// conversions of the data and of the gradient, and still left the backward at 0.5x PyTorch.
// Inputs in a blocked layout (every batch norm after a convolution) stay on oneDNN.
#pragma once
#include <cstdint>

namespace phalanx::ops::bn_plain {

struct Dims {
  int64_t N, C, L;
};

// y = (x - mean) / sqrt(var + eps) * weight + bias; weight/bias may be null (not affine).
// training: mean and var (biased) are computed from x and written out; else they are read.
void forward(const Dims& d, const float* x, float* y, float* mean, float* var, const float* weight,
             const float* bias, bool training, float eps);

// dx (if not null), dweight and dbias (if not null); training: through the batch statistics.
void backward(const Dims& d, const float* dy, const float* x, const float* mean, const float* var,
              const float* weight, bool training, float eps, float* dx, float* dweight,
              float* dbias);

}  // namespace phalanx::ops::bn_plain
