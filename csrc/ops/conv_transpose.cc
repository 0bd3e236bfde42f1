#include "ops/conv_transpose.h"

#include <algorithm>
#include <utility>

#include "core/factory.h"
#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "dnnl/layout.h"
#include "dnnl/weight_cache.h"
#include "ops/window_args.h"
#include "ops/zero_size.h"

namespace phalanx::ops {

using dnnl::memory;
using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

namespace {

constexpr const char* kOp = "conv_transpose2d";

struct DeconvSetup {
  int64_t N, C, H, W, OC, OH, OW, KH, KW;
  Shape src_shape, wei_shape;  // wei_shape: oneDNN's logical (out, in) order
  memory::desc src, wei, wei_stored, bias, dst;
  memory::dims strides, dilates, pl, pr;
  std::string key;
};

// oneDNN's deconvolution weight is logically (OC, IC, kH, kW) (grouped: (G, OC/G, IC/G, kH,
// kW)); PyTorch stores (IC, OC/G, kH, kW). This describes PyTorch's bytes in oneDNN's order,
// so reorders read the weight in place instead of after a transposing copy.
memory::desc pytorch_weight_desc(int64_t g, int64_t ocg, int64_t icg, int64_t kh, int64_t kw) {
  const int64_t k = kh * kw;
  if (g == 1) return memory::desc({ocg, icg, kh, kw}, memory::data_type::f32, {k, ocg * k, kw, 1});
  return memory::desc({g, ocg, icg, kh, kw}, memory::data_type::f32,
                      {icg * ocg * k, k, ocg * k, kw, 1});
}

DeconvSetup setup(const Tensor& x, const Tensor& w, const ConvTranspose2dParams& p) {
  PHX_CHECK(x.dim() == 4, ValueError, kOp, ": expected a 4-D input (N, C, H, W), got ",
            x.describe());
  PHX_CHECK(w.dim() == 4, ValueError, kOp,
            ": expected a 4-D weight (in_channels, out_channels/groups, kH, kW), got ",
            w.describe());
  PHX_CHECK(p.groups > 0, ValueError, kOp, ": groups must be positive, got ", p.groups);
  for (int i = 0; i < 2; ++i) {
    check_window_arg(kOp, "stride", p.stride[i], 1);
    check_window_arg(kOp, "dilation", p.dilation[i], 1);
    check_window_arg(kOp, "padding", p.padding[i], 0);
    check_window_arg(kOp, "output_padding", p.output_padding[i], 0);
    check_window_arg(kOp, "kernel size (weight.shape[2:])", w.size(2 + i), 1);
    PHX_CHECK(p.output_padding[i] < p.stride[i] || p.output_padding[i] < p.dilation[i], ValueError,
              kOp, ": output_padding (", p.output_padding[i],
              ") must be smaller than either stride (", p.stride[i], ") or dilation (",
              p.dilation[i], ")");
  }
  DeconvSetup s{};
  const int64_t g = p.groups;
  s.N = x.size(0), s.C = x.size(1), s.H = x.size(2), s.W = x.size(3);
  s.KH = w.size(2), s.KW = w.size(3);
  s.OC = w.size(1) * g;
  PHX_CHECK(s.C > 0 && w.size(1) > 0, ValueError, kOp,
            ": in_channels and out_channels must be positive, got input ", x.describe(),
            " and weight ", w.describe());
  PHX_CHECK(w.size(0) == s.C && s.C % g == 0, ValueError, kOp, ": input ", x.describe(), " has ",
            s.C, " channels, but weight ", w.describe(), " with groups=", g, " expects ", w.size(0),
            " (divisible by groups)");
  PHX_CHECK(s.N == 0 || (s.H > 0 && s.W > 0), ValueError, kOp,
            ": input height and width must be positive unless the batch is empty, got ",
            x.describe());
  auto out_size = [&](int i, int64_t in, int64_t k) {
    return (in - 1) * p.stride[i] - 2 * p.padding[i] + p.dilation[i] * (k - 1) +
           p.output_padding[i] + 1;
  };
  s.OH = out_size(0, s.H, s.KH), s.OW = out_size(1, s.W, s.KW);
  PHX_CHECK(s.OH > 0 && s.OW > 0, ValueError, kOp, ": the output size (", s.OH, ", ", s.OW,
            ") of input ", x.describe(), " with weight ", w.describe(), " is too small (padding ",
            p.padding[0], ", ", p.padding[1], ")");
  s.src_shape = {s.N, s.C, s.H, s.W};
  s.wei_shape = g == 1 ? Shape{s.OC, s.C, s.KH, s.KW} : Shape{g, s.OC / g, s.C / g, s.KH, s.KW};
  s.src = any_desc(s.src_shape);
  s.wei = any_desc(s.wei_shape);
  s.wei_stored = pytorch_weight_desc(g, s.OC / g, s.C / g, s.KH, s.KW);
  s.bias = plain_desc({s.OC});
  s.dst = any_desc({s.N, s.OC, s.OH, s.OW});
  s.strides = {p.stride[0], p.stride[1]};
  s.dilates = {p.dilation[0] - 1, p.dilation[1] - 1};  // oneDNN counts dilation from 0
  // The output's first row sits `padding` before the first full window; output_padding adds
  // rows at the end, i.e. takes them off the right padding. oneDNN only checks that the sizes
  // agree (floor((OH + pl + pr - extent) / stride) + 1 == H): any right padding in
  // [p - op, p - op + stride - 1] computes the same, so the smallest non-negative one is used;
  // oneDNN refuses negative padding, hence the one refused geometry.
  for (int i = 0; i < 2; ++i) {
    const int64_t lo = p.padding[i] - p.output_padding[i];
    s.pl.push_back(p.padding[i]);
    PHX_CHECK(lo + p.stride[i] - 1 >= 0, ValueError, kOp,
              ": oneDNN's deconvolution needs output_padding < stride + padding, got "
              "output_padding=",
              p.output_padding[i], ", stride=", p.stride[i], ", padding=", p.padding[i],
              " (phalanx.nn.functional.conv_transpose2d computes this case another way)");
    s.pr.push_back(std::max<int64_t>(lo, 0));
  }
  s.key = cache_key(s.N, s.C, s.H, s.W, s.OC, s.KH, s.KW, g, s.strides, s.dilates, s.pl, s.pr);
  return s;
}

struct FwdEntry {
  dnnl::deconvolution_forward::primitive_desc pd;
  dnnl::deconvolution_forward prim;
  memory::desc src, dst;  // what the backward primitives ask for (see conv.cc)
};

std::shared_ptr<FwdEntry> forward_entry(const DeconvSetup& s, bool bias) {
  return PrimitiveCache::global().get_or_create<FwdEntry>(
      cache_key("deconv_fwd", s.key, bias), [&] {
        auto make = [&](const memory::desc& src, const memory::desc& dst) {
          return compat::deconv_fwd(cpu_engine(), dnnl::prop_kind::forward_training, src, s.wei,
                                    bias ? &s.bias : nullptr, dst, s.strides, s.dilates, s.pl,
                                    s.pr);
        };
        auto pd = make(s.src, s.dst);
        memory::desc src = s.src, dst = s.dst;
        // As for convolutions (conv.cc): channel counts off the blocking get channels-last
        // rather than a padded blocked layout on which oneDNN 2.6 falls back to reference code.
        if (compat::md_is_padded(pd.src_desc()) || compat::md_is_padded(pd.dst_desc())) {
          src = channels_last_desc(compat::md_dims(s.src));
          dst = channels_last_desc(compat::md_dims(s.dst));
          pd = make(src, dst);
        }
        return std::make_shared<FwdEntry>(FwdEntry{pd, dnnl::deconvolution_forward(pd), src, dst});
      });
}

}  // namespace

Tensor conv_transpose2d_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in,
                                const ConvTranspose2dParams& p) {
  Tensor x = dnnl_input(x_in, kOp, "input");
  Tensor w = float_input(w_in, kOp, "weight");
  DeconvSetup s = setup(x, w, p);
  Tensor bias;
  if (bias_in.defined()) {
    bias = float_input(bias_in, kOp, "bias");
    PHX_CHECK(bias.dim() == 1 && bias.size(0) == s.OC, ValueError, kOp, ": bias must have shape [",
              s.OC, "], got ", bias.describe());
  }
  if (has_no_elements(x)) return Tensor::empty({s.N, s.OC, s.OH, s.OW});
  auto e = forward_entry(s, bias.defined());
  x = reorder_to(x, e->pd.src_desc(), ReorderKind::Data);
  Tensor wb = reorder_weight(w, s.wei_shape, e->pd.weights_desc(), p.cache_weight, &s.wei_stored);
  Tensor y = empty_like_desc({s.N, s.OC, s.OH, s.OW}, e->pd.dst_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory_of(x, e->pd.src_desc())},
                                       {DNNL_ARG_WEIGHTS, memory_of(wb, e->pd.weights_desc())},
                                       {DNNL_ARG_DST, memory_of(y, e->pd.dst_desc())}};
  if (bias.defined()) args[DNNL_ARG_BIAS] = plain_memory(bias, s.bias);
  execute(e->prim, std::move(args));
  return y;
}

ConvTranspose2dGrads conv_transpose2d_backward(const Tensor& dy_in, const Tensor& x_in,
                                               const Tensor& w_in, bool has_bias,
                                               const ConvTranspose2dParams& p,
                                               std::array<bool, 3> need) {
  Tensor x = dnnl_input(x_in, "conv_transpose2d_backward", "input");
  Tensor w = float_input(w_in, "conv_transpose2d_backward", "weight");
  Tensor dy = dnnl_input(dy_in, "conv_transpose2d_backward", "grad_output");
  DeconvSetup s = setup(x, w, p);
  if (has_no_elements(x))  // no samples: every weight/bias gradient is a sum over nothing
    return {zero_grad_if(need[0], x.sizes()), zero_grad_if(need[1], w.sizes()),
            zero_grad_if(need[2] && has_bias, {s.OC})};
  auto fwd = forward_entry(s, has_bias);
  ConvTranspose2dGrads g;
  if (need[0]) {
    auto e = cached<dnnl::deconvolution_backward_data>(cache_key("deconv_bwd_data", s.key), [&] {
      return compat::deconv_bwd_data(cpu_engine(), fwd->src, s.wei, fwd->dst, s.strides, s.dilates,
                                     s.pl, s.pr, fwd->pd);
    });
    Tensor dyb = reorder_to(dy, e->pd.diff_dst_desc(), ReorderKind::Data);
    Tensor wb = reorder_weight(w, s.wei_shape, e->pd.weights_desc(), p.cache_weight, &s.wei_stored);
    g.dx = empty_like_desc(s.src_shape, e->pd.diff_src_desc());
    execute(e->prim, {{DNNL_ARG_DIFF_DST, memory_of(dyb, e->pd.diff_dst_desc())},
                      {DNNL_ARG_WEIGHTS, memory_of(wb, e->pd.weights_desc())},
                      {DNNL_ARG_DIFF_SRC, memory_of(g.dx, e->pd.diff_src_desc())}});
  }
  if (need[1] || (need[2] && has_bias)) {
    auto e = cached<dnnl::deconvolution_backward_weights>(
        cache_key("deconv_bwd_w", s.key, has_bias), [&] {
          return compat::deconv_bwd_weights(cpu_engine(), fwd->src, s.wei,
                                            has_bias ? &s.bias : nullptr, fwd->dst, s.strides,
                                            s.dilates, s.pl, s.pr, fwd->pd);
        });
    Tensor xb = reorder_to(x, e->pd.src_desc(), ReorderKind::Data);
    Tensor dyb = reorder_to(dy, e->pd.diff_dst_desc(), ReorderKind::Data);
    Tensor dwb = empty_like_desc(w.sizes(), e->pd.diff_weights_desc());
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory_of(xb, e->pd.src_desc())},
        {DNNL_ARG_DIFF_DST, memory_of(dyb, e->pd.diff_dst_desc())},
        {DNNL_ARG_DIFF_WEIGHTS, memory_of(dwb, e->pd.diff_weights_desc())}};
    if (has_bias) {
      g.db = Tensor::empty({s.OC});
      args[DNNL_ARG_DIFF_BIAS] = plain_memory(g.db, s.bias);
    }
    execute(e->prim, std::move(args));
    // Parameters and their gradients stay plain, in PyTorch's (in, out) order.
    g.dw = Tensor::empty(w.sizes());
    reorder_into(memory_of(dwb, e->pd.diff_weights_desc()),
                 dnnl::memory(s.wei_stored, cpu_engine(), g.dw.raw_data()), ReorderKind::Weights);
    if (!need[1]) g.dw = Tensor();
  }
  return g;
}

}  // namespace phalanx::ops
