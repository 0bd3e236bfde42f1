#include "ops/conv.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/factory.h"
#include "core/sliding_window.h"
#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "dnnl/layout.h"
#include "dnnl/weight_cache.h"
#include "ops/activation.h"
#include "ops/finite.h"
#include "ops/window_args.h"
#include "ops/zero_size.h"

namespace phalanx::ops {

using dnnl::memory;
using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

namespace {

// At most this many input channels make a layer a first one (an image: grey, RGB, RGBA).
constexpr int64_t kImageChannels = 4;

struct ConvSetup {
  int64_t N, C, H, W, OC, KH, KW;
  WindowAxis h, w;
  Shape src_shape, wei_shape;
  memory::desc src, wei, bias, dst;
  memory::dims strides, dilates, pl, pr;
  dnnl::algorithm alg;
  std::string key;
};

// Whether a convolution runs Winograd where oneDNN 2.6's convolution_auto would not: auto
// takes it only from a batch of 16 on, but at a phone's batches (1-8) Winograd F(4x4, 3x3) on
// AVX-512 measured 1.3-2.2x faster than direct (forward and both backward passes) wherever
// the output has at least 3 positions per channel over the batch, and 0.5-0.8x slower below
// (ResNet-50's last 3x3 layers, 512 channels at 7x7; docs/speed.md). Asked for only where
// oneDNN has Winograd kernels, not reference code, for all three passes of the shape, and
// for channels in whole 16-blocks (others take forward_entry's layout steering).
bool winograd_pays(const ConvSetup& s, int64_t groups, const Conv2dParams& p) {
  const bool shape = s.KH == 3 && s.KW == 3 && groups == 1 &&
                     p.stride == std::array<int64_t, 2>{1, 1} &&
                     p.dilation == std::array<int64_t, 2>{1, 1} && s.N < 16 &&
                     s.N * s.h.out * s.w.out >= 3 * std::max(s.C, s.OC) && s.C % 16 == 0 &&
                     s.OC % 16 == 0;  // whole blocks: no layout steering
  if (!shape) return false;
  static std::mutex lock;
  static std::unordered_map<std::string, bool> known;
  const std::string key = cache_key(s.N, s.C, s.H, s.W, s.OC, s.pl, s.pr);
  {
    std::lock_guard<std::mutex> hold(lock);
    auto it = known.find(key);
    if (it != known.end()) return it->second;
  }
  const auto alg = dnnl::algorithm::convolution_winograd;
  bool pays = true;
  try {
    // with and without a bias and the ReLU post-op: the variants the forward may ask for
    for (const bool with : {false, true}) {
      auto fwd =
          compat::conv_fwd(cpu_engine(), dnnl::prop_kind::forward_training, alg, s.src, s.wei,
                           with ? &s.bias : nullptr, s.dst, s.strides, s.dilates, s.pl, s.pr,
                           with ? compat::user_scratchpad_relu() : compat::user_scratchpad());
      pays = pays && !dnnl_util::is_reference(fwd) &&
             !dnnl_util::is_reference(compat::conv_bwd_data(
                 cpu_engine(), alg, s.src, s.wei, s.dst, s.strides, s.dilates, s.pl, s.pr, fwd)) &&
             !dnnl_util::is_reference(
                 compat::conv_bwd_weights(cpu_engine(), alg, s.src, s.wei, with ? &s.bias : nullptr,
                                          s.dst, s.strides, s.dilates, s.pl, s.pr, fwd));
    }
  } catch (const dnnl::error&) {  // no Winograd here (another ISA, oneDNN 3.x)
    pays = false;
  }
  std::lock_guard<std::mutex> hold(lock);
  return known.emplace(key, pays).first->second;
}

ConvSetup setup(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  PHX_CHECK(x.dim() == 4, ValueError, "conv2d: expected a 4-D input (N, C, H, W), got ",
            x.describe());
  PHX_CHECK(w.dim() == 4, ValueError,
            "conv2d: expected a 4-D weight (out_channels, in_channels/groups, kH, kW), got ",
            w.describe());
  PHX_CHECK(p.groups > 0, ValueError, "conv2d: groups must be positive, got ", p.groups);
  for (int i = 0; i < 2; ++i) {
    check_window_arg("conv2d", "stride", p.stride[i], 1);
    check_window_arg("conv2d", "dilation", p.dilation[i], 1);
    check_window_arg("conv2d", "padding", p.padding[i], 0);
    check_window_arg("conv2d", "kernel size (weight.shape[2:])", w.size(2 + i), 1);
  }
  ConvSetup s{};
  s.N = x.size(0), s.C = x.size(1), s.H = x.size(2), s.W = x.size(3);
  s.OC = w.size(0), s.KH = w.size(2), s.KW = w.size(3);
  const int64_t g = p.groups;
  // PyTorch refuses no output channels and, for no input channels, returns an output whose
  // channel count ignores the weight; both are refused here by name. A batch of 0 is fine.
  PHX_CHECK(s.C > 0, ValueError, "conv2d: in_channels must be positive, got input ", x.describe(),
            " with 0 channels");
  PHX_CHECK(s.OC > 0, ValueError, "conv2d: out_channels must be positive, got weight ",
            w.describe(), " with 0 output channels");
  // With samples but no rows or columns, padding would make a non-empty output from nothing;
  // PyTorch refuses it too (only an empty batch may be empty).
  PHX_CHECK(s.N == 0 || (s.H > 0 && s.W > 0), ValueError,
            "conv2d: input height and width must be positive unless the batch is empty, got ",
            x.describe());
  PHX_CHECK(s.C % g == 0, ValueError, "conv2d: in_channels (", s.C,
            ") must be divisible by groups (", g, ")");
  PHX_CHECK(s.OC % g == 0, ValueError, "conv2d: out_channels (", s.OC,
            ") must be divisible by groups (", g, ")");
  PHX_CHECK(w.size(1) * g == s.C, ValueError, "conv2d: weight ", w.describe(), " with groups=", g,
            " expects input with ", w.size(1) * g, " channels, but got ", s.C, " channels (input ",
            x.describe(), ")");
  int64_t oh =
      window_out_size(s.H, s.KH, p.stride[0], p.padding[0], p.dilation[0], false, "conv2d");
  int64_t ow =
      window_out_size(s.W, s.KW, p.stride[1], p.padding[1], p.dilation[1], false, "conv2d");
  s.h = window_axis(s.H, s.KH, p.stride[0], p.padding[0], p.dilation[0], oh);
  s.w = window_axis(s.W, s.KW, p.stride[1], p.padding[1], p.dilation[1], ow);
  // Activations and weights in whatever layout the primitive prefers (blocked on most CPUs);
  // tensors arrive and leave in those layouts, and only plain ones get reordered.
  s.src_shape = {s.N, s.C, s.H, s.W};
  s.wei_shape = g == 1 ? Shape{s.OC, s.C, s.KH, s.KW} : Shape{g, s.OC / g, s.C / g, s.KH, s.KW};
  s.src = any_desc(s.src_shape);
  s.wei = any_desc(s.wei_shape);
  s.bias = plain_desc({s.OC});
  s.dst = any_desc({s.N, s.OC, oh, ow});
  s.strides = {p.stride[0], p.stride[1]};
  s.dilates = {p.dilation[0] - 1, p.dilation[1] - 1};  // oneDNN counts dilation from 0
  s.pl = {s.h.pad_l, s.w.pad_l};
  s.pr = {s.h.pad_r, s.w.pad_r};
  // convolution_auto lets oneDNN take Winograd where it expects it faster (engine.h); below
  // its batch threshold phalanx asks for Winograd where it measured it faster
  s.alg = !winograd_allowed()      ? dnnl::algorithm::convolution_direct
          : winograd_pays(s, g, p) ? dnnl::algorithm::convolution_winograd
                                   : dnnl::algorithm::convolution_auto;
  s.key = cache_key(s.N, s.C, s.H, s.W, s.OC, s.KH, s.KW, g, s.strides, s.dilates, s.pl, s.pr,
                    static_cast<int>(s.alg));
  return s;
}

struct FwdEntry {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
  // What the backward primitives ask for as (diff_)src and (diff_)dst: `any`, or the
  // channels-last layout the forward was steered to.
  memory::desc src, dst;
};

// Whether oneDNN would compute a convolution's weight gradient with these activation layouts
// on a reference kernel (then the forward is not steered to them). Backward-data has none for
// a plain first-layer input either; it writes its gradient in a layout of its own instead
// (conv2d_backward), an input gradient being rare there.
bool has_reference_backward(const ConvSetup& s, bool bias, const memory::desc& src,
                            const memory::desc& dst,
                            const dnnl::convolution_forward::primitive_desc& hint) {
  return dnnl_util::is_reference(compat::conv_bwd_weights(cpu_engine(), s.alg, src, s.wei,
                                                          bias ? &s.bias : nullptr, dst, s.strides,
                                                          s.dilates, s.pl, s.pr, hint));
}

// relu: the primitive applies a ReLU post-op to its output.
std::shared_ptr<FwdEntry> forward_entry(const ConvSetup& s, bool bias, dnnl::prop_kind prop,
                                        bool relu) {
  return PrimitiveCache::global().get_or_create<FwdEntry>(
      cache_key("conv_fwd", s.key, bias, static_cast<int>(prop), relu), [&] {
        auto make = [&](const memory::desc& src, const memory::desc& dst) {
          return compat::conv_fwd(
              cpu_engine(), prop, s.alg, src, s.wei, bias ? &s.bias : nullptr, dst, s.strides,
              s.dilates, s.pl, s.pr,
              relu ? compat::user_scratchpad_relu() : compat::user_scratchpad());
        };
        auto pd = make(s.src, s.dst);
        memory::desc src = s.src, dst = s.dst;
        // A first layer (an image's 3 channels in, a whole number of blocks out): read the
        // input plain, as it comes from numpy, and write the blocking the next layers use.
        // Channels-last in and out (below) made every next layer's input, and its gradient,
        // cross layouts once more (ResNet-18 with Winograd: 6 data reorders per step).
        if (compat::md_is_padded(pd.src_desc()) && !compat::md_is_padded(pd.dst_desc())) {
          const memory::desc plain = plain_desc(compat::md_dims(s.src));
          auto first = make(plain, s.dst);
          if (!dnnl_util::is_reference(first) &&
              !has_reference_backward(s, bias, plain, first.dst_desc(), first))
            return std::make_shared<FwdEntry>(
                FwdEntry{first, dnnl::convolution_forward(first), plain, first.dst_desc()});
        }
        // A channel count that is not a multiple of the blocking (LeNet's 6) gets a padded
        // blocked layout, on which oneDNN 2.6's eltwise, pooling and weight-gradient kernels
        // fall back to reference code (~20x slower than on 16 channels). Channels-last keeps
        // every op that follows on its vectorised kernels.
        if (compat::md_is_padded(pd.src_desc()) || compat::md_is_padded(pd.dst_desc())) {
          src = channels_last_desc(compat::md_dims(s.src));
          dst = channels_last_desc(compat::md_dims(s.dst));
          pd = make(src, dst);
        } else if (s.C > kImageChannels && pd.src_desc() == plain_desc(compat::md_dims(s.src)) &&
                   pd.dst_desc() != plain_desc(compat::md_dims(s.dst))) {
          // Such a channel count inside the network (LeNet's second layer, 6 in) gets
          // oneDNN's first-layer kernel too: its input read plain, blocks written. Its backward
          // kernels then choose layouts of their own (the weight gradient on AVX2's 8-blocks):
          // 4 data and 2 weight reorders a step. Channels-last in and out, the weight gradient
          // is written in the forward's weight layout and the activations stay as they come.
          const memory::desc cl_src = channels_last_desc(compat::md_dims(s.src));
          const memory::desc cl_dst = channels_last_desc(compat::md_dims(s.dst));
          auto cl = make(cl_src, cl_dst);
          if (!dnnl_util::is_reference(cl) &&
              !has_reference_backward(s, bias, cl_src, cl_dst, cl)) {
            src = cl_src;
            dst = cl_dst;
            pd = cl;
          }
        }
        return std::make_shared<FwdEntry>(FwdEntry{pd, dnnl::convolution_forward(pd), src, dst});
      });
}

// What a backward primitive is asked to use for the weight (or its gradient): the forward's
// weight layout when the weight is stored in it (kept blocked), else `any`.
memory::desc kept_layout(const Tensor& w, const memory::desc& fwd_weights,
                         const memory::desc& any) {
  return w.is_blocked() && desc_of(w) == fwd_weights ? fwd_weights : any;
}

// make(wanted) where oneDNN runs the same kernel for it as for `any`, else make(any) (then the
// weight is reordered per call, as before it was kept blocked). oneDNN always has a reference
// implementation, so "it made a primitive" is not enough: the backward-data kernels of
// oneDNN 2.6 on AVX-512 want the weight as OIhw16o16i, and given the forward's OIhw16i16o they
// took `ref:any`, 500-1000x slower (a ResNet-18 step took 100 s instead of 0.1).
template <typename Make>
auto with_fallback(const Make& make, const memory::desc& wanted, const memory::desc& any) {
  auto chosen = make(any);
  if (wanted == any) return chosen;
  try {
    auto kept = make(wanted);
    // impl_info_str() is a C string (oneDNN 2.x): compared as text, not as pointers
    if (std::string(kept.impl_info_str()) == chosen.impl_info_str()) return kept;
  } catch (const dnnl::error&) {  // no implementation at all for the wanted layout
  }
  return chosen;
}

}  // namespace

Tensor conv2d_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in,
                      const Conv2dParams& p) {
  Tensor x = dnnl_input(x_in, "conv2d", "input");
  Tensor w = dnnl_input(w_in, "conv2d", "weight");  // a weight kept blocked stays so
  ConvSetup s = setup(x, w, p);
  Tensor bias;
  if (bias_in.defined()) {
    bias = float_input(bias_in, "conv2d", "bias");
    PHX_CHECK(bias.dim() == 1 && bias.size(0) == s.OC, ValueError, "conv2d: bias must have shape [",
              s.OC, "], got ", bias.describe());
  }
  // oneDNN makes no primitive for an empty batch (or spatial extent): the output is empty.
  if (has_no_elements(x)) return Tensor::empty({s.N, s.OC, s.h.out, s.w.out});
  // oneDNN's ReLU post-op maps NaN to 0, where ReLU (ops/activation.cc) keeps it as PyTorch
  // does. Finite inputs give no NaN (short of an overflow to inf - inf inside one sum), so a
  // non-finite input takes the convolution and the ReLU in turn: the two paths agree exactly.
  const bool fuse = p.relu && all_finite({x, w, bias});
  auto e = forward_entry(s, bias.defined(), dnnl::prop_kind::forward_training, fuse);
  x = reorder_to(x, e->pd.src_desc(), ReorderKind::Data);
  // w_in, not w: a plain weight's handle is the parameter's own, whose storage changes here.
  if (p.keep_weight_blocked && adopt_layout(w_in, e->pd.weights_desc())) w = w_in.stable();
  Tensor wb = reorder_weight(w, s.wei_shape, e->pd.weights_desc(), p.cache_weight);
  Tensor y = empty_like_desc({s.N, s.OC, s.h.out, s.w.out}, e->pd.dst_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory_of(x, e->pd.src_desc())},
                                       {DNNL_ARG_WEIGHTS, memory_of(wb, e->pd.weights_desc())},
                                       {DNNL_ARG_DST, memory_of(y, e->pd.dst_desc())}};
  if (bias.defined()) args[DNNL_ARG_BIAS] = plain_memory(bias, s.bias);
  execute(e->prim, std::move(args));
  if (p.relu && !fuse) activation_forward_in_place(Activation::Relu, y);
  return y;
}

Conv2dGrads conv2d_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& w_in,
                            bool has_bias, const Conv2dParams& p, std::array<bool, 3> need) {
  Tensor x = dnnl_input(x_in, "conv2d_backward", "input");
  Tensor w = dnnl_input(w_in, "conv2d_backward", "weight");
  Tensor dy = dnnl_input(dy_in, "conv2d_backward", "grad_output");
  ConvSetup s = setup(x, w, p);
  if (has_no_elements(x))  // no samples: every weight/bias gradient is a sum over nothing
    return {zero_grad_if(need[0], x.sizes()), zero_grad_if(need[1], w.sizes()),
            zero_grad_if(need[2] && has_bias, {s.OC})};
  auto fwd = forward_entry(s, has_bias, dnnl::prop_kind::forward_training, p.relu);
  Conv2dGrads g;
  if (need[0]) {
    // A weight kept in the forward's layout is read as it is, where oneDNN has a kernel for it.
    const memory::desc wei = kept_layout(w, fwd->pd.weights_desc(), s.wei);
    auto e = cached<dnnl::convolution_backward_data>(
        cache_key("conv_bwd_data", s.key, wei == s.wei), [&] {
          return with_fallback(
              [&](const memory::desc& wd) {
                auto make = [&](const memory::desc& diff_src) {
                  return compat::conv_bwd_data(cpu_engine(), s.alg, diff_src, wd, fwd->dst,
                                               s.strides, s.dilates, s.pl, s.pr, fwd->pd);
                };
                // the input gradient in the forward input's layout, or in the kernel's own
                // where oneDNN has no kernel for that (a plain first-layer input)
                auto pd = make(fwd->src);
                return dnnl_util::is_reference(pd) && fwd->src != s.src ? make(s.src) : pd;
              },
              wei, s.wei);
        });
    Tensor dyb = reorder_to(dy, e->pd.diff_dst_desc(), ReorderKind::Data);
    // A kept weight's copy in backward-data's blocking is cached too: the optimizer writes it
    // alongside the weight (dnnl_util::WeightTwins), so the next step finds it current.
    Tensor wb = reorder_weight(w, s.wei_shape, e->pd.weights_desc(),
                               p.cache_weight || (w.is_blocked() && twin_weights_enabled()));
    g.dx = empty_like_desc(s.src_shape, e->pd.diff_src_desc());
    execute(e->prim, {{DNNL_ARG_DIFF_DST, memory_of(dyb, e->pd.diff_dst_desc())},
                      {DNNL_ARG_WEIGHTS, memory_of(wb, e->pd.weights_desc())},
                      {DNNL_ARG_DIFF_SRC, memory_of(g.dx, e->pd.diff_src_desc())}});
  }
  if (need[1] || (need[2] && has_bias)) {
    // The gradient of a weight kept blocked is written in the weight's layout, for the
    // optimizer to update the two element by element.
    const memory::desc dwei = kept_layout(w, fwd->pd.weights_desc(), s.wei);
    auto e = cached<dnnl::convolution_backward_weights>(
        cache_key("conv_bwd_w", s.key, has_bias, dwei == s.wei), [&] {
          return with_fallback(
              [&](const memory::desc& wd) {
                return compat::conv_bwd_weights(cpu_engine(), s.alg, fwd->src, wd,
                                                has_bias ? &s.bias : nullptr, fwd->dst, s.strides,
                                                s.dilates, s.pl, s.pr, fwd->pd);
              },
              dwei, s.wei);
        });
    Tensor xb = reorder_to(x, e->pd.src_desc(), ReorderKind::Data);
    Tensor dyb = reorder_to(dy, e->pd.diff_dst_desc(), ReorderKind::Data);
    // A weight kept blocked gets its gradient in its own layout (written there by oneDNN, or
    // reordered into it where the kernel wrote another: one reorder, where plain and then
    // the optimizer's conversion would be two); any other weight's gradient is plain, as the
    // optimizer and numpy read it.
    const bool keep = w.is_blocked() && e->pd.diff_weights_desc() == desc_of(w);
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
    if (keep || (!dwb.is_blocked() && !w.is_blocked())) {
      g.dw = dwb;
    } else if (w.is_blocked()) {
      g.dw = empty_like_desc(w.sizes(), desc_of(w));
      reorder_into(memory_of(dwb, e->pd.diff_weights_desc()), memory_of(g.dw, desc_of(w)),
                   ReorderKind::Weights);
    } else {
      g.dw = Tensor::empty(w.sizes());
      reorder_into(memory_of(dwb, e->pd.diff_weights_desc()),
                   plain_memory(g.dw, plain_desc(s.wei_shape)), ReorderKind::Weights);
    }
  }
  return g;
}

}  // namespace phalanx::ops
