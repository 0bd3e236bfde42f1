#include "ops/linear.h"

#include <utility>

#include "core/factory.h"
#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "ops/reduce.h"

namespace phalanx::ops {

using dnnl::memory;
using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

namespace {

void check_linear(const Tensor& x, const Tensor& w) {
  PHX_CHECK(x.dim() == 2, ValueError, "linear: expected a 2-D input, got ", x.describe());
  PHX_CHECK(w.dim() == 2, ValueError,
            "linear: expected a 2-D weight (out_features, in_features), got ", w.describe());
  PHX_CHECK(x.size(1) == w.size(1), ValueError, "linear: input ", x.describe(), " and weight ",
            w.describe(), " cannot be multiplied (", x.size(1), " vs ", w.size(1), " in_features)");
}

}  // namespace

Tensor linear_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in) {
  Tensor x = float_input(x_in, "linear", "input");
  Tensor w = float_input(w_in, "linear", "weight");
  check_linear(x, w);
  const int64_t N = x.size(0), I = x.size(1), O = w.size(0);
  Tensor bias;
  if (bias_in.defined()) {
    bias = float_input(bias_in, "linear", "bias");
    PHX_CHECK(bias.dim() == 1 && bias.size(0) == O, ValueError, "linear: bias must have shape [", O,
              "], got ", bias.describe());
  }
  Tensor y = Tensor::empty({N, O});
  if (N == 0 || O == 0) return y;
  if (I == 0) {
    y.fill(0);
    if (bias.defined()) y.copy_from(bias.expand({N, O}));
    return y;
  }
  // y = x w^T on oneDNN's matmul, the weight seen as its transpose (I, O) with strides
  // (1, I), no copy: oneDNN 2.6's inner product runs its gemm there at 0.74x PyTorch's
  // speed with two threads (64x2048 -> 1000), its matmul (brgemm) at 1.1x. The backward is
  // on matmul too (linear_backward).
  const memory::desc wt({I, O}, memory::data_type::f32, memory::dims{1, I});
  auto e = cached<dnnl::matmul>(cache_key("linear_mm", N, I, O, bias.defined()), [&] {
    if (bias.defined())
      return compat::matmul_bias_pd(cpu_engine(), plain_desc({N, I}), wt, plain_desc({1, O}),
                                    plain_desc({N, O}));
    return compat::matmul_pd(cpu_engine(), plain_desc({N, I}), wt, plain_desc({N, O}));
  });
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, plain_memory(x)},
                                       {DNNL_ARG_WEIGHTS, memory(wt, cpu_engine(), w.raw_data())},
                                       {DNNL_ARG_DST, plain_memory(y)}};
  if (bias.defined())
    args[DNNL_ARG_BIAS] = memory(plain_desc({1, O}), cpu_engine(), bias.raw_data());
  execute(e->prim, std::move(args));
  return y;
}

LinearGrads linear_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& w_in,
                            bool has_bias, std::array<bool, 3> need) {
  Tensor x = float_input(x_in, "linear_backward", "input");
  Tensor w = float_input(w_in, "linear_backward", "weight");
  Tensor dy = float_input(dy_in, "linear_backward", "grad_output");
  check_linear(x, w);
  const int64_t N = x.size(0), I = x.size(1), O = w.size(0);
  LinearGrads g;
  if (N == 0 || I == 0 || O == 0) {  // oneDNN has no empty inner product: the sums are empty
    if (need[0]) g.dx = zeros({N, I});
    if (need[1]) g.dw = zeros({O, I});
    if (need[2] && has_bias) g.db = N ? sum(dy, {0}, false) : zeros({O});
    return g;
  }
  // Both products on oneDNN's matmul, as the forward (oneDNN 2.6's inner-product backward ran
  // at 0.9x / 0.4x PyTorch's speed at 1 / 2 threads for 64x2048 -> 1000): dx = dy w, and
  // dw = dy^T x with dy^T seen through strides (1, O), no copy. db is dy summed over rows.
  if (need[0]) {
    auto e = cached<dnnl::matmul>(cache_key("linear_mm_dx", N, I, O), [&] {
      return compat::matmul_pd(cpu_engine(), plain_desc({N, O}), plain_desc({O, I}),
                               plain_desc({N, I}));
    });
    g.dx = Tensor::empty({N, I});
    execute(e->prim, {{DNNL_ARG_SRC, plain_memory(dy)},
                      {DNNL_ARG_WEIGHTS, plain_memory(w)},
                      {DNNL_ARG_DST, plain_memory(g.dx)}});
  }
  if (need[1]) {
    const memory::desc dyt({O, N}, memory::data_type::f32, memory::dims{1, O});
    auto e = cached<dnnl::matmul>(cache_key("linear_mm_dw", N, I, O), [&] {
      return compat::matmul_pd(cpu_engine(), dyt, plain_desc({N, I}), plain_desc({O, I}));
    });
    g.dw = Tensor::empty({O, I});
    execute(e->prim, {{DNNL_ARG_SRC, memory(dyt, cpu_engine(), dy.raw_data())},
                      {DNNL_ARG_WEIGHTS, plain_memory(x)},
                      {DNNL_ARG_DST, plain_memory(g.dw)}});
  }
  if (need[2] && has_bias) g.db = sum(dy, {0}, false);
  return g;
}

namespace {

// A matmul operand as oneDNN can read it in place: a plain float32 3-D tensor whose matrices
// run along rows or along columns (one of the last two strides 1: a transpose, x.t() or
// k.transpose(-2, -1), is no copy), any batch stride. Anything else is made contiguous.
Tensor matmul_operand(const Tensor& t_in, const char* arg) {
  Tensor t = t_in.defined() && !t_in.is_blocked() ? t_in : Tensor();
  if (t.defined() && t.dtype() == DType::Float32 && t.dim() == 3) {
    const auto& st = t.strides();
    const int64_t r = t.size(1), c = t.size(2);
    const bool rows = st[2] == 1 && st[1] >= c, cols = st[1] == 1 && st[2] >= r;
    if ((rows || cols) && st[0] >= 0) return t;
  }
  return float_input(t_in, "matmul", arg);
}

memory::desc strided_desc(const Tensor& t) {
  const auto& st = t.strides();
  return memory::desc({t.size(0), t.size(1), t.size(2)}, memory::data_type::f32,
                      memory::dims(st.begin(), st.end()));
}

}  // namespace

Tensor bmm(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = matmul_operand(a_in, "input");
  Tensor b = matmul_operand(b_in, "other");
  PHX_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(2) == b.size(1) &&
                (a.size(0) == b.size(0) || a.size(0) == 1 || b.size(0) == 1),
            ValueError, "matmul: shapes ", a.describe(), " and ", b.describe(),
            " cannot be multiplied");
  const int64_t B = std::max(a.size(0), b.size(0)), M = a.size(1), K = a.size(2), N = b.size(2);
  Tensor c = Tensor::empty({B, M, N});
  if (c.numel() == 0) return c;
  if (K == 0) {
    c.fill(0);
    return c;
  }
  const memory::desc ad = strided_desc(a), bd = strided_desc(b);
  auto e = cached<dnnl::matmul>(
      cache_key("matmul", a.size(0), b.size(0), M, K, N, a.strides(), b.strides()),
      [&] { return compat::matmul_pd(cpu_engine(), ad, bd, plain_desc(c.sizes())); });
  execute(e->prim, {{DNNL_ARG_SRC, memory(ad, cpu_engine(), a.raw_data())},
                    {DNNL_ARG_WEIGHTS, memory(bd, cpu_engine(), b.raw_data())},
                    {DNNL_ARG_DST, plain_memory(c)}});
  return c;
}

}  // namespace phalanx::ops
