#include "ops/activation.h"

#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "dnnl/primitive_cache.h"

namespace phalanx::ops {

using dnnl::algorithm;
using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

namespace {

struct Spec {
  algorithm alg;
  float alpha, beta;
  const char* name;
};

Spec spec(Activation kind, float alpha) {
  switch (kind) {
    case Activation::Relu: return {algorithm::eltwise_relu, 0.f, 0.f, "relu"};
    case Activation::Relu6: return {algorithm::eltwise_clip, 0.f, 6.f, "relu6"};
    case Activation::LeakyRelu: return {algorithm::eltwise_relu, alpha, 0.f, "leaky_relu"};
    case Activation::GeluErf: return {algorithm::eltwise_gelu_erf, 0.f, 0.f, "gelu"};
    case Activation::GeluTanh: return {algorithm::eltwise_gelu_tanh, 0.f, 0.f, "gelu"};
    case Activation::Sigmoid: return {algorithm::eltwise_logistic, 0.f, 0.f, "sigmoid"};
    case Activation::Tanh: return {algorithm::eltwise_tanh, 0.f, 0.f, "tanh"};
  }
  throw Error("internal: unknown activation");
}

struct FwdEntry {
  dnnl::eltwise_forward::primitive_desc pd;
  dnnl::eltwise_forward prim;
};

std::shared_ptr<FwdEntry> forward_entry(const Spec& sp, int64_t n) {
  return PrimitiveCache::global().get_or_create<FwdEntry>(
      cache_key("eltwise_fwd", static_cast<int>(sp.alg), sp.alpha, sp.beta, n), [&] {
        auto pd = compat::eltwise_fwd(cpu_engine(), dnnl::prop_kind::forward_training, sp.alg,
                                      plain_desc({n}), sp.alpha, sp.beta);
        return std::make_shared<FwdEntry>(FwdEntry{pd, dnnl::eltwise_forward(pd)});
      });
}

}  // namespace

// Eltwise ops do not care about shape, so tensors are described as flat vectors: one cached
// primitive serves every shape with the same element count.
Tensor activation_forward(Activation kind, const Tensor& x_in, float alpha) {
  Spec sp = spec(kind, alpha);
  Tensor x = float_input(x_in, sp.name, "input");
  Tensor y = Tensor::empty(x.sizes());
  const int64_t n = x.numel();
  if (n == 0) return y;
  auto e = forward_entry(sp, n);
  execute(e->prim, {{DNNL_ARG_SRC, plain_memory(x, plain_desc({n}))},
                    {DNNL_ARG_DST, plain_memory(y, plain_desc({n}))}});
  return y;
}

Tensor activation_backward(Activation kind, const Tensor& dy_in, const Tensor& x_in, float alpha) {
  Spec sp = spec(kind, alpha);
  Tensor x = float_input(x_in, sp.name, "input");
  Tensor dy = float_input(dy_in, sp.name, "grad_output");
  Tensor dx = Tensor::empty(x.sizes());
  const int64_t n = x.numel();
  if (n == 0) return dx;
  auto fwd = forward_entry(sp, n);
  struct Entry {
    dnnl::eltwise_backward::primitive_desc pd;
    dnnl::eltwise_backward prim;
  };
  auto e = PrimitiveCache::global().get_or_create<Entry>(
      cache_key("eltwise_bwd", static_cast<int>(sp.alg), sp.alpha, sp.beta, n), [&] {
        auto pd = compat::eltwise_bwd(cpu_engine(), sp.alg, plain_desc({n}), sp.alpha, sp.beta, fwd->pd);
        return std::make_shared<Entry>(Entry{pd, dnnl::eltwise_backward(pd)});
      });
  execute(e->prim, {{DNNL_ARG_SRC, plain_memory(x, plain_desc({n}))},
                    {DNNL_ARG_DIFF_DST, plain_memory(dy, plain_desc({n}))},
                    {DNNL_ARG_DIFF_SRC, plain_memory(dx, plain_desc({n}))}});
  return dx;
}

}  // namespace phalanx::ops
