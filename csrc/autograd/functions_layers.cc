// Differentiable layers beyond the core set (PyTorch-compatibility ops): layer norm.
#include "autograd/functions.h"
#include "ops/layer_norm.h"

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

}  // namespace phalanx::autograd
