#include "ops/max_pool_direct.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "dnnl/engine.h"
#include "dnnl/layout.h"

namespace phalanx::ops {

using namespace phalanx::dnnl_util;

namespace {

// Element strides of an (N, C, H, W) tensor stored plain or channels-last.
struct Layout {
  bool channels_last;
  int64_t n, c, h, w;
};

Layout layout_of(const Shape& s, bool cl) {
  const int64_t C = s[1], H = s[2], W = s[3];
  return cl ? Layout{true, H * W * C, 1, W * C, C} : Layout{false, C * H * W, H * W, W, 1};
}

bool is_channels_last(const Tensor& x) {
  return x.is_blocked() && desc_of(x) == channels_last_desc(x.sizes());
}

Tensor empty_in(const Shape& s, bool cl) {
  return cl ? empty_like_desc(s, channels_last_desc(s)) : Tensor::empty(s);
}

// The pooling windows: the in-bounds input positions (ih, iw) of output (oh, ow), in order.
struct Windows {
  WindowAxis h, w;
  int64_t kh, kw, sh, sw, dh, dw;

  template <typename F>
  void each(int64_t oh, int64_t ow, F&& visit) const {
    for (int64_t i = 0; i < kh; ++i) {
      const int64_t ih = oh * sh - h.pad_l + i * dh;
      if (ih < 0 || ih >= h.in) continue;
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t iw = ow * sw - w.pad_l + j * dw;
        if (iw >= 0 && iw < w.in) visit(ih, iw);
      }
    }
  }
};

// Channels-last max pooling (a convolution's output here): window positions outside, the
// contiguous channels innermost, so bounds are checked once per position, not per value, and
// the channel loop is branch-free.
struct ClPool {
  const float* src;
  float* dst;
  int32_t* arg;  // plain (N, C, OH, OW) argmaxes
  Layout li, lo;
  Windows win;
  int64_t W, C;

  static constexpr int64_t kBlock = 64;  // channels per pass: best values live on the stack

  // kC: the channel count when known at compile time (unrolled), else 0.
  template <int kC>
  void run(int64_t N) const {
#pragma omp parallel for collapse(2)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oh = 0; oh < win.h.out; ++oh)
        for (int64_t c0 = 0; c0 < C; c0 += kBlock) row<kC>(n, oh, c0);
  }

  template <int kC>
  void row(int64_t n, int64_t oh, int64_t c0) const {
    const int64_t cn = kC ? kC : std::min(kBlock, C - c0);
    // Every window has an in-bounds position, so the first one always fills these; GCC cannot
    // see that through the lambda and warns (-Wmaybe-uninitialized). Zeroing once per row is free.
    float best[kBlock] = {};
    int32_t best_at[kBlock] = {};
    // The row's argmaxes, channel-major: written out as one contiguous run per channel below
    // instead of one scattered int per channel and output (planes are OH*OW ints apart).
    const int64_t OW = win.w.out;
    std::vector<int32_t> row_at(static_cast<size_t>(cn * OW));
    for (int64_t ow = 0; ow < win.w.out; ++ow) {
      bool first = true;
      win.each(oh, ow, [&](int64_t ih, int64_t iw) {
        const float* px = src + n * li.n + ih * li.h + iw * li.w + c0;
        const auto at = static_cast<int32_t>(ih * W + iw);
        if (first) {  // every window holds at least one in-bounds position
          for (int64_t c = 0; c < cn; ++c) best[c] = px[c], best_at[c] = at;
          first = false;
          return;
        }
        // NaN wins, as in PyTorch; the first max ties. Bitwise, not short-circuit, operators
        // and simd: GCC otherwise compiles this to a branch per channel (4x slower at 64).
#pragma omp simd
        for (int64_t c = 0; c < cn; ++c) {
          const float v = px[c], b = best[c];
          const bool take = (v > b) | ((v != v) & (b == b));
          best[c] = take ? v : b;
          best_at[c] = take ? at : best_at[c];
        }
      });
      float* out = dst + n * lo.n + oh * lo.h + ow * lo.w + c0;
      for (int64_t c = 0; c < cn; ++c) {
        out[c] = best[c];
        row_at[c * OW + ow] = best_at[c];
      }
    }
    for (int64_t c = 0; c < cn; ++c)
      std::memcpy(arg + ((n * C + c0 + c) * win.h.out + oh) * OW, row_at.data() + c * OW,
                  static_cast<size_t>(OW) * sizeof(int32_t));
  }
};

}  // namespace

bool direct_max_pool_applies(const Tensor& x) {
  return x.dtype() == DType::Float32 && x.dim() == 4 && x.size(1) % 8 != 0 &&
         (is_channels_last(x) || x.is_contiguous()) &&
         x.size(2) * x.size(3) <= std::numeric_limits<int32_t>::max();
}

MaxPoolResult direct_max_pool2d_forward(const Tensor& x, const Pool2dParams& p, const WindowAxis& h,
                                        const WindowAxis& w) {
  const bool cl = is_channels_last(x);
  const int64_t N = x.size(0), C = x.size(1), W = x.size(3);
  const Shape out_shape{N, C, h.out, w.out};
  MaxPoolResult r;
  r.kernel = MaxPoolKernel::Direct;
  r.y = empty_in(out_shape, cl);
  r.workspace = Tensor::empty(out_shape, DType::Int32);  // plain (N, C, OH, OW) argmaxes
  const Layout li = layout_of(x.sizes(), cl), lo = layout_of(out_shape, cl);
  const float* src = static_cast<const float*>(x.raw_data());
  float* dst = static_cast<float*>(r.y.raw_data());
  int32_t* arg = r.workspace.data<int32_t>();
  const Windows win{h,           w,           p.kernel[0],   p.kernel[1],
                    p.stride[0], p.stride[1], p.dilation[0], p.dilation[1]};
  if (cl) {
    const ClPool pool{src, dst, arg, li, lo, win, W, C};
    // the small counts unrolled (LeNet's 6 above all); 0: the count at run time
    using Run = void (ClPool::*)(int64_t) const;
    static constexpr Run runs[] = {&ClPool::run<0>, &ClPool::run<1>, &ClPool::run<2>,
                                   &ClPool::run<3>, &ClPool::run<4>, &ClPool::run<5>,
                                   &ClPool::run<6>, &ClPool::run<7>};
    (pool.*runs[C < 8 ? C : 0])(N);
    return r;
  }
#pragma omp parallel for collapse(2)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const float* plane = src + n * li.n + c * li.c;
      int32_t* a = arg + (n * C + c) * h.out * w.out;
      for (int64_t oh = 0; oh < h.out; ++oh)
        for (int64_t ow = 0; ow < w.out; ++ow) {
          float best = -std::numeric_limits<float>::infinity();
          int64_t best_at = -1;
          win.each(oh, ow, [&](int64_t ih, int64_t iw) {
            const float v = plane[ih * li.h + iw * li.w];
            // NaN wins, as in PyTorch; the first maximum wins ties
            if (best_at < 0 || v > best || (v != v && best == best)) {
              best = v;
              best_at = ih * W + iw;
            }
          });
          dst[n * lo.n + c * lo.c + oh * lo.h + ow * lo.w] = best;
          a[oh * w.out + ow] = static_cast<int32_t>(best_at);
        }
    }
  return r;
}

Tensor direct_max_pool2d_backward(const Tensor& dy_in, const Tensor& x, const Tensor& argmax) {
  const bool cl = is_channels_last(x);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = argmax.size(2), OW = argmax.size(3);
  const Shape out_shape{N, C, OH, OW};
  Tensor dy = reorder_to(dy_in, cl ? channels_last_desc(out_shape) : plain_desc(out_shape),
                         ReorderKind::Data);
  Tensor dx = empty_in(x.sizes(), cl);
  const Layout li = layout_of(x.sizes(), cl), lo = layout_of(out_shape, cl);
  const float* g = static_cast<const float*>(dy.raw_data());
  float* d = static_cast<float*>(dx.raw_data());
  const int32_t* arg = argmax.data<int32_t>();
  // Each thread zeroes the part of the gradient it scatters into, just before: the zeroing is
  // spread over the threads and the part is still in cache when the scatter comes.
  if (cl) {
    // One image per thread (their gradients never overlap); channels innermost, contiguous.
#pragma omp parallel for
    for (int64_t n = 0; n < N; ++n) {
      std::memset(d + n * li.n, 0, static_cast<size_t>(li.n) * sizeof(float));
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const float* go = g + n * lo.n + oh * lo.h + ow * lo.w;
          const int32_t* a = arg + n * C * OH * OW + oh * OW + ow;
          for (int64_t c = 0; c < C; ++c) {
            const int64_t at = a[c * OH * OW];
            d[n * li.n + (at / W) * li.h + (at % W) * li.w + c] += go[c];
          }
        }
    }
    return dx;
  }
  // Plain: an argmax is the offset in its (contiguous) input plane, as in PyTorch.
#pragma omp parallel for
  for (int64_t nc = 0; nc < N * C; ++nc) {
    float* plane = d + nc * H * W;
    std::memset(plane, 0, static_cast<size_t>(H * W) * sizeof(float));
    const int32_t* a = arg + nc * OH * OW;
    const float* go = g + nc * OH * OW;
    for (int64_t o = 0; o < OH * OW; ++o) plane[a[o]] += go[o];
  }
  return dx;
}

}  // namespace phalanx::ops
