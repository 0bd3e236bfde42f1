// 2-D transposed convolution (NCHW), forward and backward, on oneDNN's deconvolution.
#pragma once
#include <array>

#include "core/tensor.h"

namespace phalanx::ops {

struct ConvTranspose2dParams {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, output_padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  bool cache_weight = false;  // as Conv2dParams::cache_weight
};

// x: (N, in_channels, H, W); w as PyTorch's: (in_channels, out_channels / groups, kH, kW);
// bias (optional): (out_channels). Output height (H - 1) * stride - 2 * padding +
// dilation * (kH - 1) + output_padding + 1, and likewise the width.
Tensor conv_transpose2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias,
                                const ConvTranspose2dParams& p);

struct ConvTranspose2dGrads {
  Tensor dx, dw, db;
};
ConvTranspose2dGrads conv_transpose2d_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                               bool has_bias, const ConvTranspose2dParams& p,
                                               std::array<bool, 3> need);

}  // namespace phalanx::ops
