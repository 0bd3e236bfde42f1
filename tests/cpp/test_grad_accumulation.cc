// Gradient summing: the engine's buffers and a tensor's .grad go through one function.
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/grad_accumulation.h"
#include "core/factory.h"

using namespace phalanx;
using namespace phalanx::autograd;

namespace {
Tensor leaf(const Shape& s, double v) {
  Tensor t = full(s, v, DType::Float32);
  t.autograd_meta().requires_grad = true;
  return t;
}
}  // namespace

TEST(GradAccumulation, FirstGradIntoTensorIsACopyLaterOnesAddInPlace) {
  Tensor t = leaf({3}, 0);
  Tensor g = full({3}, 2, DType::Float32);
  accumulate_into_grad(t, g);
  Tensor first(t.autograd_meta().grad);
  EXPECT_NE(first.raw_data(), g.raw_data());  // .grad must not alias a gradient the graph holds
  accumulate_into_grad(t, g);
  EXPECT_EQ(t.autograd_meta().grad.get(), first.impl_ptr().get());  // same .grad object
  EXPECT_DOUBLE_EQ(Tensor(t.autograd_meta().grad).select(0, 2).item(), 4.0);
  EXPECT_DOUBLE_EQ(g.select(0, 0).item(), 2.0);  // the incoming gradient is untouched
}

TEST(GradAccumulation, EngineBufferNeverWritesAGradientInPlace) {
  Tensor g = full({2}, 1, DType::Float32);
  Tensor total;
  add_gradient(total, g, GradSink::EngineBuffer);
  EXPECT_EQ(total.impl_ptr().get(), g.impl_ptr().get());  // kept as is, no copy
  add_gradient(total, g, GradSink::EngineBuffer);
  EXPECT_DOUBLE_EQ(total.select(0, 0).item(), 2.0);
  EXPECT_DOUBLE_EQ(g.select(0, 0).item(), 1.0);           // shared gradients stay intact
  add_gradient(total, Tensor(), GradSink::EngineBuffer);  // undefined adds nothing
  EXPECT_DOUBLE_EQ(total.select(0, 1).item(), 2.0);
}

TEST(GradAccumulation, BackwardTwiceSumsIntoTheSameGrad) {
  Tensor x = leaf({2}, 3);
  Tensor y = autograd::sum(autograd::binary(ops::BinaryOp::Mul, x, x), {}, false);
  backward({y}, {Tensor()}, /*retain_graph=*/true);
  auto first = x.autograd_meta().grad;
  backward({y}, {Tensor()}, false);
  EXPECT_EQ(x.autograd_meta().grad.get(), first.get());
  EXPECT_DOUBLE_EQ(Tensor(first).select(0, 0).item(), 12.0);  // 2 * (2x) at x = 3
}
