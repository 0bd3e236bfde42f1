#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"
#include "ops/batch_norm.h"
#include "ops/finite.h"
#include "ops/linear.h"
#include "ops/softmax.h"

namespace phalanx::autograd {

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias,
              const ops::Conv2dParams& params) {
  ops::Conv2dParams p = params;
  // A weight being trained changes at every step, before any reuse of its blocked copy
  // (caching would only hold memory); a frozen one, or any under no_grad, is worth keeping.
  p.cache_weight = !(grad_enabled() && w.requires_grad());
  // A parameter being trained is kept in the convolution's layout between steps.
  p.keep_weight_blocked = grad_enabled() && w.requires_grad() && w.is_leaf();
  Tensor out = ops::conv2d_forward(x, w, bias, p);
  const bool has_bias = bias.defined();
  record("ConvolutionBackward", {out}, {x, w, bias}, {x, w},
         [p, has_bias](const BackwardContext& c) {
           auto g = ops::conv2d_backward(c.grad(), c.saved[0], c.saved[1], has_bias, p,
                                         {c.need(0), c.need(1), c.need(2)});
           return TensorList{g.dx, g.dw, g.db};
         });
  return out;
}

Tensor conv2d_relu(const Tensor& x, const Tensor& w, const Tensor& bias,
                   const ops::Conv2dParams& params) {
  ops::Conv2dParams p = params;
  p.cache_weight = !(grad_enabled() && w.requires_grad());
  p.keep_weight_blocked = grad_enabled() && w.requires_grad() && w.is_leaf();
  p.relu = true;
  Tensor out = ops::conv2d_forward(x, w, bias, p);
  const bool has_bias = bias.defined();
  // The output is saved (as ReLU saves it): it is the mask, and the next layer keeps it anyway.
  record("ConvolutionReluBackward", {out}, {x, w, bias}, {x, w, out},
         [p, has_bias](const BackwardContext& c) {
           Tensor dy = ops::activation_backward(ops::Activation::Relu, c.grad(), c.saved[2]);
           auto g = ops::conv2d_backward(dy, c.saved[0], c.saved[1], has_bias, p,
                                         {c.need(0), c.need(1), c.need(2)});
           return TensorList{g.dx, g.dw, g.db};
         });
  return out;
}

static Tensor linear2d(const Tensor& x, const Tensor& w, const Tensor& bias) {
  Tensor out = ops::linear_forward(x, w, bias);
  const bool has_bias = bias.defined();
  record("AddmmBackward", {out}, {x, w, bias}, {x, w}, [has_bias](const BackwardContext& c) {
    auto g = ops::linear_backward(c.grad(), c.saved[0], c.saved[1], has_bias,
                                  {c.need(0), c.need(1), c.need(2)});
    return TensorList{g.dx, g.dw, g.db};
  });
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  PHX_CHECK(x.dim() >= 1, ValueError, "linear: input must have at least 1 dimension, got ",
            x.describe());
  PHX_CHECK(w.dim() == 2, ValueError,
            "linear: expected a 2-D weight (out_features, in_features), got ", w.describe());
  PHX_CHECK(x.size(-1) == w.size(1), ValueError, "linear: input ", x.describe(), " and weight ",
            w.describe(), " cannot be multiplied (", x.size(-1), " vs ", w.size(1),
            " in_features)");
  if (x.dim() == 2) return linear2d(x, w, bias);
  // leading dims fold into the batch, as in PyTorch
  Shape out_shape(x.sizes().begin(), x.sizes().end() - 1);
  out_shape.push_back(w.size(0));
  Tensor y = linear2d(reshape(x, {-1, x.size(-1)}), w, bias);
  return reshape(y, out_shape);
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps, ops::PlainKernel plain_kernel) {
  // PyTorch allows a scale without a shift (or the reverse): the missing one is constant
  Tensor w = weight, b = bias;
  if (w.defined() != b.defined() && x.dim() >= 2) {
    if (!w.defined()) w = full({x.size(1)}, 1.0);
    if (!b.defined()) b = full({x.size(1)}, 0.0);
  }
  auto r = ops::batch_norm_forward(x, running_mean, running_var, w, b, training, momentum, eps,
                                   /*fuse_relu=*/false, plain_kernel);
  // r.x is x as normalised (possibly converted): saving it spares the backward a conversion;
  // it is x itself, version and all, when no conversion was needed.
  record("NativeBatchNormBackward", {r.y}, {x, weight, bias}, {r.x, w, r.mean, r.var},
         [training, eps, plain_kernel](const BackwardContext& c) {
           auto g = ops::batch_norm_backward(
               c.grad(), c.saved[0], c.saved[2], c.saved[3], c.saved[1], training, eps,
               {c.need(0), c.need(1), c.need(2)}, Tensor(), plain_kernel);
           return TensorList{g.dx, g.dweight, g.dbias};
         });
  return r.y;
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum,
                       double eps) {
  // Fused only on a blocked input (a convolution's output), with weight and bias together or
  // neither; anything else is the two ops one after the other. So is a non-finite input
  // where oneDNN's fuse_norm_relu would run: it maps NaN to 0, where ReLU keeps it (as
  // PyTorch); phalanx's own loops keep it, and spare the check a pass over the input.
  if (!x.is_blocked() || x.dim() != 4 || x.numel() == 0 || weight.defined() != bias.defined() ||
      (!ops::fused_relu_keeps_nan(x) &&
       !ops::all_finite({x, running_mean, running_var, weight, bias})))
    return activation_(
        ops::Activation::Relu,
        batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps), 0.f);
  auto r = ops::batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum,
                                   eps, /*fuse_relu=*/true);
  Tensor ws = r.workspace;
  record("NativeBatchNormReluBackward", {r.y}, {x, weight, bias}, {r.x, weight, r.mean, r.var},
         [training, eps, ws](const BackwardContext& c) {
           auto g =
               ops::batch_norm_backward(c.grad(), c.saved[0], c.saved[2], c.saved[3], c.saved[1],
                                        training, eps, {c.need(0), c.need(1), c.need(2)}, ws);
           return TensorList{g.dx, g.dweight, g.dbias};
         });
  return r.y;
}

namespace {

BackwardFn activation_backward_fn(ops::Activation kind, float alpha) {
  return [kind, alpha](const BackwardContext& c) {
    return TensorList{ops::activation_backward(kind, c.grad(), c.saved[0], alpha)};
  };
}

}  // namespace

Tensor activation(ops::Activation kind, const Tensor& x, float alpha) {
  Tensor out = ops::activation_forward(kind, x, alpha);
  // Saving the output when the backward can use it frees the input (a batch norm's output,
  // typically) as soon as the caller drops it.
  const Tensor& saved = ops::activation_backward_uses_output(kind, alpha) ? out : x;
  record(ops::activation_info(kind).backward_name, {out}, {x}, {saved},
         activation_backward_fn(kind, alpha));
  return out;
}

Tensor activation_(ops::Activation kind, const Tensor& x, float alpha) {
  const char* op = ops::activation_name(kind);
  PHX_CHECK(x.defined(), ValueError, op, "_: no input tensor");
  const bool history = needs_history({x});
  PHX_CHECK(!history || ops::activation_backward_uses_output(kind, alpha), Error, op,
            kind == ops::Activation::LeakyRelu ? " with a negative slope" : "",
            " in place cannot be differentiated: its backward needs the input it would "
            "overwrite; call it out of place (inplace=False)");
  PHX_CHECK(!(history && x.is_leaf()), Error, op,
            "_: a leaf Variable that requires grad is being used in an in-place operation.");
  // A view with history shares its base's graph, which only copy_ knows how to rewrite.
  if (!(history && x.impl()->view_base) && ops::activation_forward_in_place(kind, x, alpha)) {
    // x now stands for the output: its history continues from its previous producer, and
    // the node saves x at its new version (a later in-place write to it is then caught).
    record(ops::activation_info(kind).backward_name, {x}, {x}, {x},
           activation_backward_fn(kind, alpha));
    return x;
  }
  copy_(x, activation(kind, x, alpha));
  return x;
}

Tensor max_pool2d(const Tensor& x, const ops::Pool2dParams& p) {
  auto r = ops::max_pool2d_forward(x, p);
  Tensor ws = r.workspace;
  ops::MaxPoolKernel kernel = r.kernel;
  record("MaxPool2DBackward", {r.y}, {x}, {x}, [p, ws, kernel](const BackwardContext& c) {
    return TensorList{ops::max_pool2d_backward(c.grad(), c.saved[0], ws, kernel, p)};
  });
  return r.y;
}

Tensor avg_pool2d(const Tensor& x, const ops::Pool2dParams& p) {
  Tensor out = ops::avg_pool2d_forward(x, p);
  Tensor shape_of = x.alias();  // only its shape is used
  record("AvgPool2DBackward", {out}, {x}, {}, [p, shape_of](const BackwardContext& c) {
    return TensorList{ops::avg_pool2d_backward(c.grad(), shape_of, p)};
  });
  return out;
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> size) {
  Tensor out = ops::adaptive_avg_pool2d_forward(x, size);
  Tensor shape_of = x.alias();
  record("AdaptiveAvgPool2DBackward", {out}, {x}, {}, [shape_of](const BackwardContext& c) {
    return TensorList{ops::adaptive_avg_pool2d_backward(c.grad(), shape_of)};
  });
  return out;
}

Tensor softmax(const Tensor& x, int64_t dim, bool log) {
  Tensor out = ops::softmax_forward(x, dim, log);
  record(log ? "LogSoftmaxBackward" : "SoftmaxBackward", {out}, {x}, {out},
         [dim, log](const BackwardContext& c) {
           return TensorList{ops::softmax_backward(c.grad(), c.saved[0], dim, log)};
         });
  return out;
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight,
                ops::Reduction reduction, int64_t ignore_index) {
  auto r = ops::nll_loss_forward(input, target, weight, reduction, ignore_index);
  Tensor total = r.total_weight, shape_of = input.alias();
  record("NllLossBackward", {r.loss}, {input}, {target, weight},
         [reduction, ignore_index, total, shape_of](const BackwardContext& c) {
           return TensorList{ops::nll_loss_backward(c.grad(), shape_of, c.saved[0], c.saved[1],
                                                    reduction, ignore_index, total)};
         });
  return r.loss;
}

}  // namespace phalanx::autograd
