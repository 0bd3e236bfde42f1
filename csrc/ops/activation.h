// Pointwise activations on oneDNN eltwise: relu, relu6, leaky_relu, gelu, sigmoid, tanh.
#pragma once
#include "core/tensor.h"

namespace phalanx::ops {

enum class Activation { Relu, Relu6, LeakyRelu, GeluErf, GeluTanh, Sigmoid, Tanh };

// alpha is the negative slope of leaky_relu; unused otherwise.
Tensor activation_forward(Activation kind, const Tensor& x, float alpha = 0.f);

// "relu", "relu6", "leaky_relu", "gelu", "sigmoid", "tanh": for messages.
const char* activation_name(Activation kind);

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
