// Batch normalisation of an (N, C, H, W) input stored channel-blocked (oneDNN's nChw16c or
// nChw8c: blocks of B channels, the B values of one position adjacent), by direct loops
// vectorised across the B channels of a block. Every batch norm after a convolution sees this
// layout. oneDNN 2.6's JIT kernel for it sums in float over the whole map: its batch mean is
// ~40x and its dgamma/dbeta ~10x further from the float64 result than PyTorch's float32 ones
// (the error grows with N*H*W), which made whole-model gradients 3-4x less accurate than
// PyTorch's. Here sums run in float over chunks of 64 positions and the chunks are combined in
// double; the forward's mean and variance still take one pass over memory (batch_norm_blocked.cc).
#pragma once
#include <cstdint>

namespace phalanx::ops::bn_blocked {

struct Dims {
  int64_t N, C, L;  // L = H * W
  int B;            // channels per block: 8 or 16; C is padded up to a multiple of B
};

// y = (x - mean) / sqrt(var + eps) * weight + bias, then max(y, 0) when relu_mask is not null
// (which records, one byte per stored value, whether y was kept: the backward's mask).
// training: mean and var (biased) are computed from x and written out; else they are read.
// The padding channels of y are written as zeros.
void forward(const Dims& d, const float* x, float* y, float* mean, float* var, const float* weight,
             const float* bias, bool training, float eps, uint8_t* relu_mask);

// dx (if not null), dweight and dbias (if not null); training: through the batch statistics.
// relu_mask (if not null) is the forward's: dy counts only where the ReLU kept its input.
void backward(const Dims& d, const float* dy, const float* x, const float* mean, const float* var,
              const float* weight, bool training, float eps, const uint8_t* relu_mask, float* dx,
              float* dweight, float* dbias);

// Stored values (padding included) of an input with these dims: the size of a relu mask.
int64_t stored_size(const Dims& d);

}  // namespace phalanx::ops::bn_blocked
