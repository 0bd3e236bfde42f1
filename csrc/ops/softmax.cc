#include "ops/softmax.h"

#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"

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

}  // namespace

Tensor softmax_forward(const Tensor& x_in, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  Tensor x = float_input(x_in, name, "input");
  dim = wrap_dim(dim, x.dim());
  Tensor y = Tensor::empty(x.sizes());
  if (x.numel() == 0) return y;
  Shape s = three_d(x, dim);
  auto e = forward_entry(s, log);
  execute(e->prim, {{DNNL_ARG_SRC, plain_memory(x, plain_desc(s))},
                    {DNNL_ARG_DST, plain_memory(y, plain_desc(s))}});
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
  auto e = cached<compat::softmax_backward>(cache_key("softmax_bwd", s, log), [&] {
    auto pd = compat::softmax_bwd(cpu_engine(), log, plain_desc(s), 1, fwd->pd);
    return pd;
  });
  execute(e->prim, {{DNNL_ARG_DST, plain_memory(y, plain_desc(s))},
                    {DNNL_ARG_DIFF_DST, plain_memory(dy, plain_desc(s))},
                    {DNNL_ARG_DIFF_SRC, plain_memory(dx, plain_desc(s))}});
  return dx;
}

}  // namespace phalanx::ops
