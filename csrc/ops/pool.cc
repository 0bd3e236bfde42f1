#include "ops/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/factory.h"
#include "core/sliding_window.h"
#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "dnnl/layout.h"
#include "ops/max_pool_direct.h"
#include "ops/window_args.h"
#include "ops/zero_size.h"

namespace phalanx::ops {

using dnnl::memory;
using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

namespace {

void check_input(const Tensor& x, const char* op, bool channels_may_be_empty = false) {
  // An empty batch is fine (the output is empty too); PyTorch refuses empty channels, except
  // for adaptive pooling.
  PHX_CHECK(x.dim() == 4, ValueError, op, ": expected a 4-D input (N, C, H, W), got ",
            x.describe());
  PHX_CHECK(channels_may_be_empty || x.size(1) > 0, ValueError, op,
            ": expected a non-empty channel dimension (only the ", "batch may be 0), got input ",
            x.describe());
}

void check_params(const Pool2dParams& p, const char* op, bool dilated) {
  for (int i = 0; i < 2; ++i) {
    check_window_arg(op, "kernel_size", p.kernel[i], 1);
    check_window_arg(op, "stride", p.stride[i], 1);
    check_window_arg(op, "dilation", p.dilation[i], 1);
    int64_t eff = dilated ? p.dilation[i] * (p.kernel[i] - 1) + 1 : p.kernel[i];
    PHX_CHECK(p.padding[i] >= 0 && p.padding[i] <= eff / 2, ValueError, op,
              ": padding should be at most half of effective kernel size, but got pad=",
              p.padding[i], " and kernel_size=", p.kernel[i]);
  }
}

struct MaxSetup {
  int64_t N, C;
  WindowAxis h, w;
  memory::desc src, dst;
  memory::dims strides, kernel, dilation, pl, pr;
  std::string key;
};

MaxSetup max_setup(const Tensor& x, const Pool2dParams& p) {
  check_input(x, "max_pool2d");
  check_params(p, "max_pool2d", true);
  MaxSetup s{};
  s.N = x.size(0), s.C = x.size(1);
  WindowAxis* axes[2] = {&s.h, &s.w};
  for (int i = 0; i < 2; ++i) {
    int64_t in = x.size(2 + i);
    int64_t out = window_out_size(in, p.kernel[i], p.stride[i], p.padding[i], p.dilation[i],
                                  p.ceil_mode, "max_pool2d");
    *axes[i] = window_axis(in, p.kernel[i], p.stride[i], p.padding[i], p.dilation[i], out);
  }
  // The source keeps its layout (blocked after a convolution); the output follows it. A
  // plain source is taken channels-last: oneDNN 2.6 pools plain NCHW with its reference
  // kernel (~2.5x slower than PyTorch, the reorder included), channels-last with its
  // vectorised one. The small-channel direct loop (see max_pool_direct.h) pools plain as is.
  s.src = x.is_blocked() ? desc_of(x) : channels_last_desc(x.sizes());
  s.dst = any_desc({s.N, s.C, s.h.out, s.w.out});
  s.strides = {p.stride[0], p.stride[1]};
  s.kernel = {p.kernel[0], p.kernel[1]};
  s.dilation = {p.dilation[0] - 1, p.dilation[1] - 1};
  s.pl = {s.h.pad_l, s.w.pad_l};
  s.pr = {s.h.pad_r, s.w.pad_r};
  s.key = cache_key(s.N, s.C, x.size(2), x.size(3), s.strides, s.kernel, s.dilation, s.pl, s.pr,
                    layout_key(x));
  return s;
}

using MaxFwdEntry = Cached<compat::pooling_forward>;

std::shared_ptr<MaxFwdEntry> max_forward_entry(const MaxSetup& s) {
  return cached<compat::pooling_forward>(cache_key("maxpool_fwd", s.key), [&] {
    auto pd = compat::pool_fwd(cpu_engine(), dnnl::prop_kind::forward_training,
                               dnnl::algorithm::pooling_max, s.src, s.dst, s.strides, s.kernel,
                               s.dilation, s.pl, s.pr);
    return pd;
  });
}

}  // namespace

MaxPoolResult max_pool2d_forward(const Tensor& x_in, const Pool2dParams& p) {
  Tensor x = dnnl_input(x_in, "max_pool2d", "input");
  MaxSetup s = max_setup(x, p);
  if (has_no_elements(x))
    return {Tensor::empty({s.N, s.C, s.h.out, s.w.out}), Tensor::empty({0}, DType::UInt8)};
  if (direct_max_pool_applies(x)) return direct_max_pool2d_forward(x, p, s.h, s.w);
  x = reorder_to(x, s.src, ReorderKind::Data);
  // A plain input (not a convolution's output: a model's or a test's own tensor) is pooled
  // channels-last by the direct loop, which keeps int32 argmaxes per input plane: its backward
  // then scatters straight into a plain gradient, as PyTorch does, instead of taking the
  // gradient to channels-last for oneDNN and the result back to plain (2x slower than torch).
  if (!x_in.is_blocked() && x.size(2) * x.size(3) <= std::numeric_limits<int32_t>::max())
    return direct_max_pool2d_forward(x, p, s.h, s.w);
  auto e = max_forward_entry(s);
  MaxPoolResult r;
  r.y = empty_like_desc({s.N, s.C, s.h.out, s.w.out}, e->pd.dst_desc());
  auto ws_md = e->pd.workspace_desc();
  r.workspace = Tensor::empty({static_cast<int64_t>(ws_md.get_size())}, DType::UInt8);
  execute(e->prim, {{DNNL_ARG_SRC, memory_of(x, s.src)},
                    {DNNL_ARG_DST, memory_of(r.y, e->pd.dst_desc())},
                    {DNNL_ARG_WORKSPACE, memory(ws_md, cpu_engine(), r.workspace.raw_data())}});
  return r;
}

Tensor max_pool2d_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& workspace,
                           MaxPoolKernel kernel, const Pool2dParams& p) {
  Tensor x = dnnl_input(x_in, "max_pool2d_backward", "input");
  MaxSetup s = max_setup(x, p);
  if (has_no_elements(x)) return zeros(x.sizes());
  if (kernel == MaxPoolKernel::Direct) {
    // x may have gone plain since (the argmaxes index planes, so either layout works); a
    // blocked layout other than channels-last is brought back to plain.
    if (!direct_max_pool_applies(x)) x = x.contiguous();
    return direct_max_pool2d_backward(dnnl_input(dy_in, "max_pool2d_backward", "grad_output"), x,
                                      workspace);
  }
  auto fwd = max_forward_entry(s);
  auto e = cached<compat::pooling_backward>(cache_key("maxpool_bwd", s.key), [&] {
    auto pd =
        compat::pool_bwd(cpu_engine(), dnnl::algorithm::pooling_max, s.src, fwd->pd.dst_desc(),
                         s.strides, s.kernel, s.dilation, s.pl, s.pr, fwd->pd);
    return pd;
  });
  Tensor dy = reorder_to(dnnl_input(dy_in, "max_pool2d_backward", "grad_output"),
                         e->pd.diff_dst_desc(), ReorderKind::Data);
  Tensor dx = empty_like_desc(x.sizes(), e->pd.diff_src_desc());
  execute(e->prim, {{DNNL_ARG_DIFF_DST, memory_of(dy, e->pd.diff_dst_desc())},
                    {DNNL_ARG_DIFF_SRC, memory_of(dx, e->pd.diff_src_desc())},
                    {DNNL_ARG_WORKSPACE,
                     memory(fwd->pd.workspace_desc(), cpu_engine(), workspace.raw_data())}});
  return dx;
}

// ---- average pooling ----------------------------------------------------------------------

namespace {

// One output position's window along one axis: input rows [start, end) and the count the
// average divides by (PyTorch's: padding counts when count_include_pad, the ceil_mode
// overhang never does).
struct Window {
  int64_t start, end, count;
};
using Windows = std::vector<Window>;

Windows avg_windows(int64_t in, int64_t k, int64_t s, int64_t pad, bool ceil_mode,
                    bool include_pad) {
  int64_t out = window_out_size(in, k, s, pad, 1, ceil_mode, "avg_pool2d");
  Windows w(out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t start = o * s - pad, end = std::min(start + k, in + pad);
    int64_t padded = end - start;
    start = std::max<int64_t>(start, 0);
    end = std::min(end, in);
    w[o] = {start, end, include_pad ? padded : end - start};
  }
  return w;
}

Windows adaptive_windows(int64_t in, int64_t out) {
  Windows w(out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t start = (o * in) / out;
    int64_t end = ((o + 1) * in + out - 1) / out;
    w[o] = {start, end, end - start};
  }
  return w;
}

Tensor window_avg_forward(const Tensor& x, const Windows& wh, const Windows& ww) {
  const int64_t NC = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = static_cast<int64_t>(wh.size()), OW = static_cast<int64_t>(ww.size());
  Tensor y = Tensor::empty({x.size(0), x.size(1), OH, OW});
  const float* px = x.data<float>();
  float* py = y.data<float>();
#pragma omp parallel for
  for (int64_t nc = 0; nc < NC; ++nc) {
    const float* plane = px + nc * H * W;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        float acc = 0;
        for (int64_t h = wh[oh].start; h < wh[oh].end; ++h)
          for (int64_t w = ww[ow].start; w < ww[ow].end; ++w) acc += plane[h * W + w];
        py[(nc * OH + oh) * OW + ow] = acc / static_cast<float>(wh[oh].count * ww[ow].count);
      }
  }
  return y;
}

Tensor window_avg_backward(const Tensor& dy_in, const Tensor& x, const Windows& wh,
                           const Windows& ww) {
  Tensor dy = float_input(dy_in, "avg_pool2d_backward", "grad_output");
  const int64_t NC = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = static_cast<int64_t>(wh.size()), OW = static_cast<int64_t>(ww.size());
  PHX_CHECK(dy.numel() == NC * OH * OW, ValueError, "avg_pool2d_backward: grad_output ",
            dy.describe(), " does not match the pooled shape");
  // The divisor is a product of a row and a column count, so the gradient spreads in two
  // passes: along each output row into a (OH, W) buffer, then whole rows at a time (a
  // vectorised loop over W) into the input rows each window covers. The plane is zeroed by
  // the thread that fills it, just before, instead of all at once on one thread.
  Tensor dx = Tensor::empty(x.sizes());
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
#pragma omp parallel
  {
    std::vector<float> rows(static_cast<size_t>(OH * W));
#pragma omp for
    for (int64_t nc = 0; nc < NC; ++nc) {
      const float* g = pdy + nc * OH * OW;
      std::fill(rows.begin(), rows.end(), 0.f);
      for (int64_t oh = 0; oh < OH; ++oh) {
        float* row = rows.data() + oh * W;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const float v = g[oh * OW + ow] / static_cast<float>(ww[ow].count);
          for (int64_t w = ww[ow].start; w < ww[ow].end; ++w) row[w] += v;
        }
      }
      float* plane = pdx + nc * H * W;
      std::fill(plane, plane + H * W, 0.f);
      for (int64_t oh = 0; oh < OH; ++oh) {
        const float* row = rows.data() + oh * W;
        const float scale = 1.f / static_cast<float>(wh[oh].count);
        for (int64_t h = wh[oh].start; h < wh[oh].end; ++h) {
          float* out = plane + h * W;
#pragma omp simd
          for (int64_t w = 0; w < W; ++w) out[w] += row[w] * scale;
        }
      }
    }
  }
  return dx;
}

}  // namespace

Tensor avg_pool2d_forward(const Tensor& x_in, const Pool2dParams& p) {
  Tensor x = float_input(x_in, "avg_pool2d", "input");
  check_input(x, "avg_pool2d");
  check_params(p, "avg_pool2d", false);
  return window_avg_forward(x,
                            avg_windows(x.size(2), p.kernel[0], p.stride[0], p.padding[0],
                                        p.ceil_mode, p.count_include_pad),
                            avg_windows(x.size(3), p.kernel[1], p.stride[1], p.padding[1],
                                        p.ceil_mode, p.count_include_pad));
}

Tensor avg_pool2d_backward(const Tensor& dy, const Tensor& x, const Pool2dParams& p) {
  return window_avg_backward(dy, x,
                             avg_windows(x.size(2), p.kernel[0], p.stride[0], p.padding[0],
                                         p.ceil_mode, p.count_include_pad),
                             avg_windows(x.size(3), p.kernel[1], p.stride[1], p.padding[1],
                                         p.ceil_mode, p.count_include_pad));
}

Tensor adaptive_avg_pool2d_forward(const Tensor& x_in, std::array<int64_t, 2> out) {
  Tensor x = float_input(x_in, "adaptive_avg_pool2d", "input");
  check_input(x, "adaptive_avg_pool2d", true);
  PHX_CHECK(out[0] > 0 && out[1] > 0, ValueError,
            "adaptive_avg_pool2d: output_size must be positive, got (", out[0], ", ", out[1], ")");
  PHX_CHECK(x.size(2) > 0 && x.size(3) > 0, ValueError, "adaptive_avg_pool2d: empty spatial input ",
            x.describe());
  // The window tables below have one entry per output row and column: an output no tensor
  // could hold is refused (MemoryError naming its shape) before they are built.
  storage_nbytes({x.size(0), x.size(1), out[0], out[1]}, x.dtype());
  return window_avg_forward(x, adaptive_windows(x.size(2), out[0]),
                            adaptive_windows(x.size(3), out[1]));
}

Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Tensor& x) {
  return window_avg_backward(dy, x, adaptive_windows(x.size(2), dy.size(2)),
                             adaptive_windows(x.size(3), dy.size(3)));
}

}  // namespace phalanx::ops
