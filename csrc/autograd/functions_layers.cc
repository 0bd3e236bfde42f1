// Differentiable layers beyond the core set (PyTorch-compatibility ops): layer norm,
// transposed convolution, resampling.
#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "ops/layer_norm.h"
#include "ops/resample.h"

namespace phalanx::autograd {

Tensor layer_norm(const Tensor& x, int64_t normalized_ndim, const Tensor& weight,
                  const Tensor& bias, double eps) {
  auto r = ops::layer_norm_forward(x, normalized_ndim, weight, bias, eps);
  const bool has_bias = bias.defined();
  // r.x is x as normalised (made contiguous if it was not): the backward reads it as is.
  record("NativeLayerNormBackward", {r.y}, {x, weight, bias}, {r.x, weight, r.mean, r.var},
         [normalized_ndim, eps, has_bias](const BackwardContext& c) {
           auto g = ops::layer_norm_backward(c.grad(), c.saved[0], c.saved[2], c.saved[3],
                                             c.saved[1], has_bias, normalized_ndim, eps,
                                             {c.need(0), c.need(1), c.need(2)});
           return TensorList{g.dx, g.dweight, g.dbias};
         });
  return r.y;
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias,
                        const ops::ConvTranspose2dParams& params) {
  ops::ConvTranspose2dParams p = params;
  p.cache_weight = !(grad_enabled() && w.requires_grad());  // as in conv2d (functions_nn.cc)
  Tensor out = ops::conv_transpose2d_forward(x, w, bias, p);
  const bool has_bias = bias.defined();
  record("ConvolutionBackward", {out}, {x, w, bias}, {x, w},
         [p, has_bias](const BackwardContext& c) {
           auto g = ops::conv_transpose2d_backward(c.grad(), c.saved[0], c.saved[1], has_bias, p,
                                                   {c.need(0), c.need(1), c.need(2)});
           return TensorList{g.dx, g.dw, g.db};
         });
  return out;
}

Tensor resample(const Tensor& x, const Shape& out_spatial, ops::ResampleMode mode) {
  Tensor out = ops::resample_forward(x, out_spatial, mode);
  const Shape in_shape = x.sizes();
  record(mode == ops::ResampleMode::Nearest ? "UpsampleNearestBackward" : "UpsampleLinearBackward",
         {out}, {x}, {}, [in_shape, mode](const BackwardContext& c) {
           return TensorList{ops::resample_backward(c.grad(), in_shape, mode)};
         });
  return out;
}

}  // namespace phalanx::autograd
