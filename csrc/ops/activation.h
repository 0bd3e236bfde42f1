// Pointwise activations on oneDNN eltwise: relu, relu6, leaky_relu, gelu, sigmoid, tanh.
#pragma once
#include "core/tensor.h"

namespace phalanx::ops {

enum class Activation { Relu, Relu6, LeakyRelu, GeluErf, GeluTanh, Sigmoid, Tanh };

// alpha is the negative slope of leaky_relu; unused otherwise.
Tensor activation_forward(Activation kind, const Tensor& x, float alpha = 0.f);
Tensor activation_backward(Activation kind, const Tensor& dy, const Tensor& x, float alpha = 0.f);

}  // namespace phalanx::ops
