// Gradient hooks and retain_grad, reached without Python.
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/hooks.h"
#include "core/factory.h"

using namespace phalanx;
namespace ag = phalanx::autograd;

namespace {
Tensor leaf(const Shape& s, double v) {
  Tensor t = full(s, v, DType::Float32);
  t.autograd_meta().requires_grad = true;
  return t;
}
Tensor grad_of(const Tensor& t) {
  return Tensor(t.autograd_meta().grad);
}
Tensor times(const Tensor& a, double k) {
  return ag::binary(ops::BinaryOp::Mul, a, full(a.sizes(), k, DType::Float32));
}
}  // namespace

TEST(Hooks, LeafHookReplacesTheGradientAndRemoveDisablesIt) {
  Tensor x = leaf({2}, 1);
  int calls = 0;
  ag::HookHandle h = ag::register_hook(x, [&](const Tensor& g) {
    ++calls;
    return ops::binary(ops::BinaryOp::Mul, g, full(g.sizes(), 10, DType::Float32));
  });
  ag::backward({ag::sum(times(x, 3), {}, false)}, {Tensor()}, false);
  EXPECT_EQ(calls, 1);
  EXPECT_DOUBLE_EQ(grad_of(x).select(0, 0).item(), 30.0);
  h.remove();
  ag::backward({ag::sum(times(x, 3), {}, false)}, {Tensor()}, false);
  EXPECT_EQ(calls, 1);
  EXPECT_DOUBLE_EQ(grad_of(x).select(0, 0).item(), 33.0);
}

TEST(Hooks, NonLeafHookSeesTheOutputGradient) {
  Tensor x = leaf({2}, 1);
  Tensor y = times(x, 2);
  double seen = 0;
  ag::register_hook(y, [&](const Tensor& g) {
    seen = g.select(0, 0).item();
    return Tensor();  // keep the gradient
  });
  ag::backward({ag::sum(times(y, 5), {}, false)}, {Tensor()}, false);
  EXPECT_DOUBLE_EQ(seen, 5.0);
  EXPECT_DOUBLE_EQ(grad_of(x).select(0, 1).item(), 10.0);
}

TEST(Hooks, RetainGradSumsOverBackwardPasses) {
  Tensor x = leaf({2}, 1);
  Tensor y = times(x, 2);
  ag::retain_grad(y);
  Tensor loss = ag::sum(times(y, 3), {}, false);
  ag::backward({loss}, {Tensor()}, /*retain_graph=*/true);
  EXPECT_DOUBLE_EQ(grad_of(y).select(0, 0).item(), 3.0);
  ag::backward({loss}, {Tensor()}, false);
  EXPECT_DOUBLE_EQ(grad_of(y).select(0, 0).item(), 6.0);
}

TEST(Hooks, PostAccumulateHookSeesTheUpdatedGrad) {
  Tensor x = leaf({1}, 1);
  double seen = 0;
  ag::register_post_accumulate_grad_hook(x, [&](const Tensor& var) { seen = grad_of(var).item(); });
  ag::backward({ag::sum(times(x, 4), {}, false)}, {Tensor()}, false);
  EXPECT_DOUBLE_EQ(seen, 4.0);
}

TEST(Hooks, RegistrationRefusesTensorsWithoutGrad) {
  Tensor x = zeros({2});
  EXPECT_THROW(ag::register_hook(x, [](const Tensor&) { return Tensor(); }), Error);
  EXPECT_THROW(ag::retain_grad(x), Error);
  Tensor y = times(leaf({2}, 1), 2);
  EXPECT_THROW(ag::register_post_accumulate_grad_hook(y, [](const Tensor&) {}), Error);
}

TEST(Hooks, AHookMayNotChangeTheGradientsShapeOrDtype) {
  Tensor x = leaf({3}, 1);
  ag::register_hook(x, [](const Tensor&) { return ones({7}); });
  try {
    ag::backward({ag::sum(times(x, 2), {}, false)}, {Tensor()}, false);
    FAIL() << "a hook returning [7] for a [3] tensor was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor of shape [3] to [7]"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(x.autograd_meta().grad);  // nothing was accumulated

  Tensor y = times(leaf({2}, 1), 3);
  ag::register_hook(y, [](const Tensor& g) { return g.to(DType::Float16); });
  EXPECT_THROW(ag::backward({ag::sum(y, {}, false)}, {Tensor()}, false), Error);
}
