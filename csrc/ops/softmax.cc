#include "ops/softmax.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "ops/softmax_portable.h"

namespace phalanx::ops {

using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

namespace {

// A shape with the softmax axis in the middle: (outer, n, inner). Any contiguous tensor can be
// seen this way, so one primitive serves every rank.
Shape three_d(const Tensor& x, int64_t dim) {
  if (x.dim() == 0) return {1, 1, 1};
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  return {outer, x.size(dim), inner};
}

using FwdEntry = Cached<compat::softmax_forward>;

std::shared_ptr<FwdEntry> forward_entry(const Shape& s, bool log) {
  return cached<compat::softmax_forward>(cache_key("softmax_fwd", s, log), [&] {
    auto pd =
        compat::softmax_fwd(cpu_engine(), dnnl::prop_kind::forward_training, log, plain_desc(s), 1);
    return pd;
  });
}

// oneDNN subtracts the row's maximum with a max that skips NaN and gives [nan, 0, 0] for a row
// holding one NaN (and [nan, 0, 0] for one holding +inf). PyTorch's result for such a row is
// all NaN: its max propagates NaN, and inf - inf is NaN. The same holds for a row of only
// -inf. A row of one element is exactly 1 (log: 0) when finite: oneDNN gives about 1e-6 for
// log_softmax there, and x - x is 0. This pass makes y PyTorch's over (outer, n, inner).
void match_torch_special_rows(const float* x, float* y, const Shape& s, bool log) {
  const int64_t outer = s[0], n = s[1], inner = s[2];
  const float nan = std::numeric_limits<float>::quiet_NaN();
#pragma omp parallel for if (outer * n * inner > 32768)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < inner; ++k) {
      const float* xr = x + o * n * inner + k;
      float* yr = y + o * n * inner + k;
      bool poisoned = false, all_neg_inf = true;
      for (int64_t i = 0; i < n; ++i) {
        float v = xr[i * inner];
        poisoned |= std::isnan(v) || v == std::numeric_limits<float>::infinity();
        all_neg_inf &= v == -std::numeric_limits<float>::infinity();
      }
      if (poisoned || all_neg_inf) {
        for (int64_t i = 0; i < n; ++i) yr[i * inner] = nan;
      } else if (n == 1) {
        yr[0] = log ? 0.f : 1.f;
      }
    }
}

// oneDNN's log_softmax backward gives -inf where PyTorch's dx = dy - exp(y) * sum(dy) is NaN
// (a NaN output, a non-finite gradient). Rows holding those, and rows of one element (exactly
// 0), are recomputed here with PyTorch's formula.
void match_torch_log_softmax_backward(const float* y, const float* dy, float* dx, const Shape& s) {
  const int64_t outer = s[0], n = s[1], inner = s[2];
#pragma omp parallel for if (outer * n * inner > 32768)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < inner; ++k) {
      const int64_t base = o * n * inner + k;
      bool special = n == 1;
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        special |= std::isnan(y[base + i * inner]) || !std::isfinite(dy[base + i * inner]);
        sum += dy[base + i * inner];
      }
      if (!special) continue;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t j = base + i * inner;
        dx[j] = static_cast<float>(dy[j] - std::exp(static_cast<double>(y[j])) * sum);
      }
    }
}

// oneDNN's reference softmax (its only one on aarch64 without SVE) is a hot-path defect on a
// phone: the portable kernel replaces it. The implementation is the primitive's, fixed per
// shape, so the answer is the same on every call.
bool use_portable(const dnnl::primitive_desc_base& pd) {
  return force_portable_softmax() || std::strncmp(pd.impl_info_str(), "ref", 3) == 0;
}

}  // namespace

Tensor softmax_forward(const Tensor& x_in, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  Tensor x = float_input(x_in, name, "input");
  dim = wrap_dim(dim, x.dim());
  Tensor y = Tensor::empty(x.sizes());
  if (x.numel() == 0) return y;
  Shape s = three_d(x, dim);
  auto e = forward_entry(s, log);
  if (use_portable(e->pd)) {
    softmax_portable_forward(x.data<float>(), y.data<float>(), s[0], s[1], s[2], log);
    return y;
  }
  execute(e->prim, {{DNNL_ARG_SRC, plain_memory(x, plain_desc(s))},
                    {DNNL_ARG_DST, plain_memory(y, plain_desc(s))}});
  match_torch_special_rows(x.data<float>(), y.data<float>(), s, log);
  return y;
}

Tensor softmax_backward(const Tensor& dy_in, const Tensor& y_in, int64_t dim, bool log) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  Tensor y = float_input(y_in, name, "output");
  Tensor dy = float_input(dy_in, name, "grad_output");
  dim = wrap_dim(dim, y.dim());
  Tensor dx = Tensor::empty(y.sizes());
  if (y.numel() == 0) return dx;
  Shape s = three_d(y, dim);
  auto fwd = forward_entry(s, log);
  if (use_portable(fwd->pd)) {
    softmax_portable_backward(y.data<float>(), dy.data<float>(), dx.data<float>(), s[0], s[1], s[2],
                              log);
    return dx;
  }
  auto e = cached<compat::softmax_backward>(cache_key("softmax_bwd", s, log), [&] {
    auto pd = compat::softmax_bwd(cpu_engine(), log, plain_desc(s), 1, fwd->pd);
    return pd;
  });
  execute(e->prim, {{DNNL_ARG_DST, plain_memory(y, plain_desc(s))},
                    {DNNL_ARG_DIFF_DST, plain_memory(dy, plain_desc(s))},
                    {DNNL_ARG_DIFF_SRC, plain_memory(dx, plain_desc(s))}});
  if (log) match_torch_log_softmax_backward(y.data<float>(), dy.data<float>(), dx.data<float>(), s);
  return dx;
}

}  // namespace phalanx::ops
