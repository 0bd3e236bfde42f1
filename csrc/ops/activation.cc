#include "ops/activation.h"

#include <cstring>

#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "dnnl/layout.h"
#include "ops/finite.h"

namespace phalanx::ops {

using dnnl::algorithm;
using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

namespace {

struct Spec {
  algorithm alg;  // the *_use_dst_for_bwd variant when the backward reads the output
  float alpha, beta;
};

Spec spec(Activation kind, float alpha) {
  // leaky_relu with a negative slope maps negatives to positives: its output does not tell
  // which side of zero the input was on, so its backward reads the input.
  const bool slope_from_output = alpha >= 0.f;
  switch (kind) {
    case Activation::Relu:
      return {algorithm::eltwise_relu_use_dst_for_bwd, 0.f, 0.f};
    case Activation::Relu6:
      // clip_v2's gradient is 0 at both bounds (clip's is 1 at the upper one), as PyTorch's
      return {algorithm::eltwise_clip_v2_use_dst_for_bwd, 0.f, 6.f};
    case Activation::LeakyRelu:
      return {slope_from_output ? algorithm::eltwise_relu_use_dst_for_bwd : algorithm::eltwise_relu,
              alpha, 0.f};
    case Activation::GeluErf:
      return {algorithm::eltwise_gelu_erf, 0.f, 0.f};
    case Activation::GeluTanh:
      return {algorithm::eltwise_gelu_tanh, 0.f, 0.f};
    case Activation::Sigmoid:
      return {algorithm::eltwise_logistic_use_dst_for_bwd, 0.f, 0.f};
    case Activation::Tanh:
      return {algorithm::eltwise_tanh_use_dst_for_bwd, 0.f, 0.f};
    case Activation::Silu:  // swish is x * sigmoid(alpha * x); alpha = 1 is SiLU
      return {algorithm::eltwise_swish, 1.f, 0.f};
  }
  throw Error("internal: unknown activation");
}

bool uses_dst(algorithm alg) {
  switch (alg) {
    case algorithm::eltwise_relu_use_dst_for_bwd:
    case algorithm::eltwise_clip_v2_use_dst_for_bwd:
    case algorithm::eltwise_logistic_use_dst_for_bwd:
    case algorithm::eltwise_tanh_use_dst_for_bwd:
      return true;
    default:
      return false;
  }
}

using FwdEntry = Cached<dnnl::eltwise_forward>;

// Eltwise ops do not care about shape, so a plain tensor is described as a flat vector (one
// primitive serves every shape of that size); a blocked one keeps its layout.
dnnl::memory::desc eltwise_desc(const Tensor& x) {
  return x.is_blocked() ? desc_of(x) : plain_desc({x.numel()});
}

std::shared_ptr<FwdEntry> forward_entry(const Spec& sp, const dnnl::memory::desc& md,
                                        const std::string& key) {
  return cached<dnnl::eltwise_forward>(
      cache_key("eltwise_fwd", static_cast<int>(sp.alg), sp.alpha, sp.beta, key), [&] {
        auto pd = compat::eltwise_fwd(cpu_engine(), dnnl::prop_kind::forward_training, sp.alg, md,
                                      sp.alpha, sp.beta);
        return pd;
      });
}

std::string eltwise_key(const Tensor& x) {
  return x.is_blocked() ? layout_key(x) : std::to_string(x.numel());
}

// relu, relu6 and leaky_relu run as plain loops, not oneDNN eltwise: its relu and clip map
// NaN to 0 and their backward drops the gradient at NaN, where PyTorch propagates NaN (issue
// 16: one NaN pixel must not give a finite loss). The comparisons below are written so a NaN
// falls through to the branch that keeps it, as PyTorch's kernels do.
bool is_piecewise_linear(Activation kind) {
  return kind == Activation::Relu || kind == Activation::Relu6 || kind == Activation::LeakyRelu;
}

// Elements the loops walk: a blocked tensor's whole buffer (padding included, which these
// functions map 0 -> 0), or a plain contiguous tensor's elements.
int64_t stored_elements(const Tensor& x) {
  return x.is_blocked() ? static_cast<int64_t>(desc_of(x).get_size() / sizeof(float)) : x.numel();
}

void piecewise_forward(Activation kind, float alpha, const float* x, float* y, int64_t n) {
  switch (kind) {
    case Activation::Relu:
#pragma omp parallel for if (n > 32768)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] <= 0.f ? 0.f : x[i];
      return;
    case Activation::Relu6:
#pragma omp parallel for if (n > 32768)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] <= 0.f ? 0.f : (x[i] >= 6.f ? 6.f : x[i]);
      return;
    default:  // leaky_relu
#pragma omp parallel for if (n > 32768)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : x[i] * alpha;
      return;
  }
}

// `s` is the forward's output for relu/relu6 (and leaky_relu with alpha >= 0), else its input;
// either has the input's sign, and a NaN input gives a NaN output. PyTorch: relu passes the
// gradient unless out <= 0; hardtanh unless x <= 0 or x >= 6; leaky_relu scales it by alpha
// unless x > 0. So a NaN passes the gradient through (relu, relu6) or scales it (leaky_relu).
void piecewise_backward(Activation kind, float alpha, const float* s, const float* dy, float* dx,
                        int64_t n) {
  // dy[i] is read unconditionally: a load under the condition would keep the compiler from
  // turning the branch into a vector select, and a data-dependent branch on a ReLU mask is
  // mispredicted half the time (the scalar loop took a fifth of a LeNet-5 training step).
  switch (kind) {
    case Activation::Relu:
#pragma omp parallel for simd if (n > 32768)
      for (int64_t i = 0; i < n; ++i) {
        const float g = dy[i];
        dx[i] = s[i] <= 0.f ? 0.f : g;
      }
      return;
    case Activation::Relu6:
#pragma omp parallel for simd if (n > 32768)
      for (int64_t i = 0; i < n; ++i) {
        const float g = dy[i];
        dx[i] = (s[i] <= 0.f || s[i] >= 6.f) ? 0.f : g;
      }
      return;
    default:  // leaky_relu
#pragma omp parallel for simd if (n > 32768)
      for (int64_t i = 0; i < n; ++i) {
        const float g = dy[i];
        dx[i] = s[i] > 0.f ? g : g * alpha;
      }
      return;
  }
}

// oneDNN's other eltwise kernels need not keep NaN either: on aarch64 (oneDNN 3.7) logistic
// maps NaN to 0, forward and backward, where x86-64's keeps it and PyTorch propagates it. So
// there, wherever `s` (the input, or the output a backward reads) is NaN, the result is made
// NaN. Only on aarch64: the all_finite check is a serial pass over memory that made sigmoid
// 1.4-2x slower on x86-64, whose kernels keep NaN (test_nan_propagation checks them there).
#if defined(__aarch64__)
constexpr bool kEltwiseMayDropNan = true;
#else
constexpr bool kEltwiseMayDropNan = false;
#endif

void keep_nan(const float* s, float* out, int64_t n) {
#pragma omp parallel for simd if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    const float r = out[i];
    out[i] = s[i] != s[i] ? s[i] : r;
  }
}

// Runs the forward from x into y (y may be x: it runs in place).
void run_forward(Activation kind, const Spec& sp, const Tensor& x, const Tensor& y) {
  const int64_t n = stored_elements(x);
  if (is_piecewise_linear(kind)) {
    piecewise_forward(kind, sp.alpha, x.data<float>(), y.data<float>(), n);
    return;
  }
  auto md = eltwise_desc(x);
  auto e = forward_entry(sp, md, eltwise_key(x));
  const bool finite = !kEltwiseMayDropNan || all_finite(x);
  Tensor src = x;
  if (!finite && x.data<float>() == y.data<float>()) {  // in place: keep where the NaNs were
    src = empty_like_desc(x.sizes(), x.is_blocked() ? md : plain_desc(x.sizes()));
    std::memcpy(src.data<float>(), x.data<float>(), n * sizeof(float));
  }
  execute(e->prim, {{DNNL_ARG_SRC, memory_of(src, md)}, {DNNL_ARG_DST, memory_of(y, md)}});
  if (!finite) keep_nan(src.data<float>(), y.data<float>(), n);
}

}  // namespace

Tensor activation_forward(Activation kind, const Tensor& x_in, float alpha) {
  Spec sp = spec(kind, alpha);
  const char* name = activation_name(kind);
  Tensor x = dnnl_input(x_in, name, "input");
  if (x.numel() == 0) return Tensor::empty(x.sizes());
  Tensor y = empty_like_desc(x.sizes(), x.is_blocked() ? desc_of(x) : plain_desc(x.sizes()));
  run_forward(kind, sp, x, y);
  return y;
}

bool activation_forward_in_place(Activation kind, const Tensor& x, float alpha) {
  if (!x.defined() || x.dtype() != DType::Float32 || !(x.is_blocked() || x.is_contiguous()))
    return false;
  if (x.numel() == 0) return true;
  run_forward(kind, spec(kind, alpha), x, x);
  x.bump_version();
  return true;
}

bool activation_backward_uses_output(Activation kind, float alpha) {
  return uses_dst(spec(kind, alpha).alg);
}

Tensor activation_backward(Activation kind, const Tensor& dy_in, const Tensor& saved, float alpha) {
  Spec sp = spec(kind, alpha);
  const bool from_output = uses_dst(sp.alg);
  // x: the forward's input or output, whichever the primitive reads (both share a layout)
  const char* name = activation_name(kind);
  Tensor x = dnnl_input(saved, name, from_output ? "output" : "input");
  if (x.numel() == 0) return Tensor::empty(x.sizes());
  auto md = eltwise_desc(x);
  Tensor dy = dnnl_input(dy_in, name, "grad_output");
  dy = x.is_blocked() ? reorder_to(dy, md, ReorderKind::Data) : dy.contiguous();
  if (is_piecewise_linear(kind)) {
    Tensor dx = empty_like_desc(x.sizes(), x.is_blocked() ? md : plain_desc(x.sizes()));
    piecewise_backward(kind, sp.alpha, x.data<float>(), dy.data<float>(), dx.data<float>(),
                       stored_elements(x));
    return dx;
  }
  auto fwd = forward_entry(sp, md, eltwise_key(x));
  auto e = cached<dnnl::eltwise_backward>(
      cache_key("eltwise_bwd", static_cast<int>(sp.alg), sp.alpha, sp.beta, eltwise_key(x)), [&] {
        auto pd = compat::eltwise_bwd(cpu_engine(), sp.alg, md, sp.alpha, sp.beta, fwd->pd);
        return pd;
      });
  Tensor dx = empty_like_desc(x.sizes(), x.is_blocked() ? md : plain_desc(x.sizes()));
  execute(e->prim, {{from_output ? DNNL_ARG_DST : DNNL_ARG_SRC, memory_of(x, md)},
                    {DNNL_ARG_DIFF_DST, memory_of(dy, md)},
                    {DNNL_ARG_DIFF_SRC, memory_of(dx, md)}});
  if (kEltwiseMayDropNan && !all_finite(x))
    keep_nan(x.data<float>(), dx.data<float>(), stored_elements(x));
  return dx;
}

}  // namespace phalanx::ops
