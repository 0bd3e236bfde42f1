// 2-D convolution (NCHW), forward and backward, on oneDNN.
#pragma once
#include <array>

#include "core/tensor.h"

namespace phalanx::ops {

struct Conv2dParams {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  // Keep the weight's blocked copies on its storage for reuse while it is unchanged (see
  // dnnl/weight_cache.h). Off where the weight is about to change anyway (training it).
  bool cache_weight = false;
  // The weight is a parameter being trained: the forward stores it in its primitive's weight
  // layout, in place, when nothing else holds its bytes (Tensor::adopt_layout), and the
  // backward writes its gradient in that layout; the optimizer then updates both as they are,
  // and writes the copy backward-data reads where that is the layout with its blocks
  // transposed (dnnl_util::WeightTwins), so a training step reorders no weight. Whatever
  // reads the parameter otherwise (numpy, state_dict, another op) converts it back to plain
  // in place, and the next forward adopts the layout again.
  bool keep_weight_blocked = false;
  // Forward: y = relu(conv(x)) in the same pass (a oneDNN post-op), equal to the two ops in
  // turn, NaN included.
  bool relu = false;
};

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);

struct Conv2dGrads {
  Tensor dx, dw, db;
};
// With p.relu, dy must already be masked by the ReLU (autograd::conv2d_relu does it).
Conv2dGrads conv2d_backward(const Tensor& dy, const Tensor& x, const Tensor& w, bool has_bias,
                            const Conv2dParams& p, std::array<bool, 3> need);

}  // namespace phalanx::ops
