// 2-D pooling: max (oneDNN, with its workspace), average and adaptive average (own loops, so
// PyTorch's divisor rules for padding and ceil_mode hold exactly).
#pragma once
#include <array>

#include "core/tensor.h"

namespace phalanx::ops {

struct Pool2dParams {
  std::array<int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
};

// Which implementation pooled: the backward must be the same one, since each reads its own
// workspace.
enum class MaxPoolKernel {
  OneDnn,  // oneDNN's pooling primitive; workspace: its opaque bytes (uint8)
  Direct,  // the direct loop of max_pool_direct.h; workspace: int32 argmaxes (N, C, OH, OW)
};
struct MaxPoolResult {
  Tensor y;
  Tensor workspace;
  MaxPoolKernel kernel = MaxPoolKernel::OneDnn;
};
MaxPoolResult max_pool2d_forward(const Tensor& x, const Pool2dParams& p);
// `workspace` and `kernel` are the forward's.
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& x, const Tensor& workspace,
                           MaxPoolKernel kernel, const Pool2dParams& p);

Tensor avg_pool2d_forward(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d_backward(const Tensor& dy, const Tensor& x, const Pool2dParams& p);

Tensor adaptive_avg_pool2d_forward(const Tensor& x, std::array<int64_t, 2> out);
Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Tensor& x);

}  // namespace phalanx::ops
