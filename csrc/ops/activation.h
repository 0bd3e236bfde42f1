// Pointwise activations on oneDNN eltwise: relu, relu6, leaky_relu, gelu, sigmoid, tanh, silu.
#pragma once
#include <iterator>

#include "core/tensor.h"

namespace phalanx::ops {

enum class Activation { Relu, Relu6, LeakyRelu, GeluErf, GeluTanh, Sigmoid, Tanh, Silu };

// Every name an activation has, in one table in enum order: the Python enum's (bindings), the
// one messages use, and its backward node's (PyTorch's grad_fn names).
struct ActivationInfo {
  Activation kind;
  const char* python_name;
  const char* name;
  const char* backward_name;
};
inline constexpr ActivationInfo kActivations[] = {
    {Activation::Relu, "relu", "relu", "ReluBackward"},
    {Activation::Relu6, "relu6", "relu6", "HardtanhBackward"},
    {Activation::LeakyRelu, "leaky_relu", "leaky_relu", "LeakyReluBackward"},
    {Activation::GeluErf, "gelu", "gelu", "GeluBackward"},
    {Activation::GeluTanh, "gelu_tanh", "gelu", "GeluBackward"},
    {Activation::Sigmoid, "sigmoid", "sigmoid", "SigmoidBackward"},
    {Activation::Tanh, "tanh", "tanh", "TanhBackward"},
    {Activation::Silu, "silu", "silu", "SiluBackward"},
};
constexpr const ActivationInfo& activation_info(Activation kind) {
  return kActivations[static_cast<size_t>(kind)];
}
constexpr bool activation_table_in_enum_order() {
  for (size_t i = 0; i < std::size(kActivations); ++i)
    if (kActivations[i].kind != static_cast<Activation>(i)) return false;
  return std::size(kActivations) == static_cast<size_t>(Activation::Silu) + 1;
}
static_assert(activation_table_in_enum_order(), "kActivations must list every Activation in order");

// alpha is the negative slope of leaky_relu; unused otherwise.
Tensor activation_forward(Activation kind, const Tensor& x, float alpha = 0.f);

// "relu", "relu6", "leaky_relu", "gelu", "sigmoid", "tanh": for messages.
constexpr const char* activation_name(Activation kind) {
  return activation_info(kind).name;
}

// Whether the backward needs only the forward's output (relu, relu6, leaky_relu with a slope
// >= 0, sigmoid, tanh). Autograd then saves the output, which the next layer saves anyway, and
// the input is freed right after forward: the memory PyTorch gets from inplace=True, without
// overwriting anything.
bool activation_backward_uses_output(Activation kind, float alpha = 0.f);

// Overwrites x with the activation of itself. Returns false, doing nothing, unless x is
// float32 and dense (blocked, or plain contiguous); the caller then computes out of place.
bool activation_forward_in_place(Activation kind, const Tensor& x, float alpha = 0.f);

// `saved` is the forward's output when activation_backward_uses_output, else its input.
Tensor activation_backward(Activation kind, const Tensor& dy, const Tensor& saved,
                           float alpha = 0.f);

}  // namespace phalanx::ops
