#include "ops/layer_norm.h"

#include <utility>

#include "core/factory.h"
#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "dnnl/layout.h"
#include "ops/zero_size.h"

namespace phalanx::ops {

using dnnl::memory;
using dnnl::normalization_flags;
using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

namespace {

// oneDNN normalises over the last dimension: the input is seen as (rows, D), D the product of
// the normalised dimensions, so any number of them costs one primitive.
struct Rows {
  int64_t rows, D;
  Shape tail;  // the normalised dimensions: the shape weight and bias must have
};

Rows rows_of(const Tensor& x, int64_t k) {
  PHX_CHECK(k >= 1 && k <= x.dim(), ValueError,
            "layer_norm: normalized_shape must name 1 to input.dim() trailing dimensions, got ", k,
            " for input ", x.describe());
  Rows r{1, 1, Shape(x.sizes().end() - k, x.sizes().end())};
  for (int64_t d : r.tail) r.D *= d;
  for (int64_t i = 0; i < x.dim() - k; ++i) r.rows *= x.size(i);
  return r;
}

Tensor affine_param(const Tensor& t, const Rows& r, const char* name) {
  Tensor c = float_input(t, "layer_norm", name);
  PHX_CHECK(c.sizes() == r.tail, ValueError, "layer_norm: ", name,
            " must have the normalized shape, got ", c.describe());
  return c;
}

normalization_flags flags_for(bool scale, bool shift) {
  auto f = normalization_flags::none;
  if (scale) f = f | normalization_flags::use_scale;
  if (shift) f = f | normalization_flags::use_shift;
  return f;
}

using FwdEntry = Cached<dnnl::layer_normalization_forward>;

std::shared_ptr<FwdEntry> forward_entry(const Rows& r, bool scale, bool shift, double eps) {
  return cached<dnnl::layer_normalization_forward>(
      cache_key("ln_fwd", r.rows, r.D, scale, shift, eps), [&] {
        return compat::ln_fwd(cpu_engine(), dnnl::prop_kind::forward_training,
                              plain_desc({r.rows, r.D}), plain_desc({r.rows}),
                              static_cast<float>(eps), flags_for(scale, shift));
      });
}

}  // namespace

LayerNormResult layer_norm_forward(const Tensor& x_in, int64_t normalized_ndim,
                                   const Tensor& weight, const Tensor& bias, double eps) {
  Tensor x = float_input(x_in, "layer_norm", "input");  // plain: blocked inputs are converted
  PHX_CHECK(eps > 0, ValueError, "layer_norm: eps must be positive, got ", eps);
  const Rows r = rows_of(x, normalized_ndim);
  Tensor w, b;  // held here: oneDNN memory objects only point at the data
  if (weight.defined()) w = affine_param(weight, r, "weight");
  if (bias.defined()) b = affine_param(bias, r, "bias");
  LayerNormResult res;
  res.x = x;
  res.y = Tensor::empty(x.sizes());
  res.mean = Tensor::empty({r.rows});
  res.var = Tensor::empty({r.rows});
  if (has_no_elements(x)) return res;  // oneDNN makes no primitive for an empty dimension
  auto e = forward_entry(r, w.defined(), b.defined(), eps);
  const memory::desc data = plain_desc({r.rows, r.D}), stat = plain_desc({r.rows});
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, plain_memory(x, data)},
                                       {DNNL_ARG_DST, plain_memory(res.y, data)},
                                       {DNNL_ARG_MEAN, plain_memory(res.mean, stat)},
                                       {DNNL_ARG_VARIANCE, plain_memory(res.var, stat)}};
  if (w.defined()) args[DNNL_ARG_SCALE] = plain_memory(w, plain_desc({r.D}));
  if (b.defined()) args[DNNL_ARG_SHIFT] = plain_memory(b, plain_desc({r.D}));
  execute(e->prim, std::move(args));
  return res;
}

LayerNormGrads layer_norm_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& mean,
                                   const Tensor& var, const Tensor& weight, bool has_bias,
                                   int64_t normalized_ndim, double eps, std::array<bool, 3> need) {
  Tensor x = float_input(x_in, "layer_norm_backward", "input");
  Tensor dy = float_input(dy_in, "layer_norm_backward", "grad_output");
  PHX_CHECK(dy.sizes() == x.sizes(), ValueError, "layer_norm_backward: grad_output ", dy.describe(),
            " must have the input's shape ", x.describe());
  const Rows r = rows_of(x, normalized_ndim);
  const bool scale = weight.defined();
  LayerNormGrads g;
  if (has_no_elements(x))  // no rows: every parameter gradient is a sum over nothing
    return {zero_grad_if(need[0], x.sizes()), zero_grad_if(need[1] && scale, r.tail),
            zero_grad_if(need[2] && has_bias, r.tail)};
  Tensor w;
  if (scale) w = affine_param(weight, r, "weight");
  const bool params = scale || has_bias;
  auto fwd = forward_entry(r, scale, has_bias, eps);
  const memory::desc data = plain_desc({r.rows, r.D}), stat = plain_desc({r.rows}),
                     param = plain_desc({r.D});
  auto e = cached<dnnl::layer_normalization_backward>(
      cache_key("ln_bwd", r.rows, r.D, scale, has_bias, eps), [&] {
        return compat::ln_bwd(
            cpu_engine(), params ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data, data,
            stat, static_cast<float>(eps), flags_for(scale, has_bias), fwd->pd);
      });
  Tensor m = mean.contiguous(), v = var.contiguous();
  g.dx = Tensor::empty(x.sizes());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, plain_memory(x, data)},
                                       {DNNL_ARG_DIFF_DST, plain_memory(dy, data)},
                                       {DNNL_ARG_MEAN, plain_memory(m, stat)},
                                       {DNNL_ARG_VARIANCE, plain_memory(v, stat)},
                                       {DNNL_ARG_DIFF_SRC, plain_memory(g.dx, data)}};
  // oneDNN (2.x and 3.x alike) counts the shift among layer norm backward's inputs though it
  // does not read it, and refuses to run without it ("bad number of inputs"). Batch norm
  // differs: 3.x refuses the shift there (compat::bn_bwd_add_shift).
  Tensor unused_shift;
  if (scale) {
    args[DNNL_ARG_SCALE] = plain_memory(w, param);
    g.dweight = Tensor::empty(r.tail);
    args[DNNL_ARG_DIFF_SCALE] = plain_memory(g.dweight, param);
  }
  if (has_bias) {
    unused_shift = Tensor::empty({r.D});
    args[DNNL_ARG_SHIFT] = plain_memory(unused_shift, param);
    g.dbias = Tensor::empty(r.tail);
    args[DNNL_ARG_DIFF_SHIFT] = plain_memory(g.dbias, param);
  }
  execute(e->prim, std::move(args));
  if (!need[0]) g.dx = Tensor();
  if (!need[1]) g.dweight = Tensor();
  if (!need[2]) g.dbias = Tensor();
  return g;
}

}  // namespace phalanx::ops
