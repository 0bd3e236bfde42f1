// Resizing the spatial dimensions of an (N, C, L), (N, C, H, W) or (N, C, D, H, W) input:
// oneDNN's resampling, forward and backward.
#pragma once
#include "core/tensor.h"

namespace phalanx::ops {

// Nearest: output index i reads input round((i + 0.5) * in / out - 0.5), which equals
// PyTorch's 'nearest' (floor(i * in / out)) only when out is a whole multiple of in.
// Linear: half-pixel centres, (i + 0.5) * in / out - 0.5 clamped to the input, which is
// PyTorch's (bi)linear with align_corners=False when the scale is in / out.
enum class ResampleMode { Nearest, Linear };

// out_spatial: the output's spatial sizes (x.dim() - 2 of them).
Tensor resample_forward(const Tensor& x, const Shape& out_spatial, ResampleMode mode);
// The gradient for an input of shape in_shape from the output's gradient dy.
Tensor resample_backward(const Tensor& dy, const Shape& in_shape, ResampleMode mode);

}  // namespace phalanx::ops
