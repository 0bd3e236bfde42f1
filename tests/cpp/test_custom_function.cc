// The node behind phalanx.autograd.Function: a backward given at run time, outputs that are
// inputs aliased (never overwriting an input's history), non-differentiable outputs, saved
// tensors freed after backward.
#include <gtest/gtest.h>

#include "autograd/custom_function.h"
#include "autograd/engine.h"
#include "core/factory.h"
#include "ops/elementwise.h"

using namespace phalanx;
namespace ag = phalanx::autograd;

namespace {

Tensor leaf(const Shape& s) {
  Tensor t = ones(s);
  t.autograd_meta().requires_grad = true;
  return t;
}

}  // namespace

TEST(CustomFunction, BackwardGetsOutputGradientsAndFeedsInputs) {
  Tensor a = leaf({2}), b = ones({2});  // b needs no gradient
  std::vector<bool> seen;
  auto node = std::make_shared<ag::CustomFunctionNode>(
      "TwiceBackward", [&](const ag::TensorList& g, const std::vector<bool>& needs) {
        seen = needs;
        return ag::TensorList{ops::binary(ops::BinaryOp::Mul, g[0], full({2}, 2.f)), Tensor()};
      });
  Tensor out = ops::binary(ops::BinaryOp::Add, a, b);
  auto outs = ag::record_custom(node, {out}, {a, b}, {true});
  ASSERT_EQ(outs[0].grad_fn().get(), node.get());
  ag::backward({outs[0]}, {ones({2})}, false);
  EXPECT_EQ(seen, (std::vector<bool>{true, false}));
  EXPECT_DOUBLE_EQ(Tensor(a.autograd_meta().grad).select(0, 1).item(), 2.0);
}

TEST(CustomFunction, AnInputReturnedAsOutputIsAliasedNotRewired) {
  Tensor a = leaf({3});
  auto node = std::make_shared<ag::CustomFunctionNode>(
      "IdentityBackward",
      [](const ag::TensorList& g, const std::vector<bool>&) { return ag::TensorList{g[0]}; });
  auto outs = ag::record_custom(node, {a}, {a}, {true});
  EXPECT_NE(outs[0].impl_ptr(), a.impl_ptr());
  EXPECT_TRUE(a.is_leaf());
  EXPECT_EQ(a.grad_fn(), nullptr);
  EXPECT_EQ(outs[0].grad_fn().get(), node.get());
}

TEST(CustomFunction, NonDifferentiableOutputsGetNoHistory) {
  Tensor a = leaf({2});
  auto node = std::make_shared<ag::CustomFunctionNode>(
      "PairBackward",
      [](const ag::TensorList& g, const std::vector<bool>&) { return ag::TensorList{g[0]}; });
  auto outs = ag::record_custom(node, {ones({2}), zeros({2})}, {a}, {true, false});
  EXPECT_TRUE(outs[0].requires_grad());
  EXPECT_FALSE(outs[1].requires_grad());
}

TEST(CustomFunction, SavedTensorsAreFreedAfterBackwardAndVersionChecked) {
  Tensor a = leaf({2});
  Tensor s = ones({2});
  auto node = std::make_shared<ag::CustomFunctionNode>(
      "SaveBackward",
      [](const ag::TensorList& g, const std::vector<bool>&) { return ag::TensorList{g[0]}; });
  auto outs = ag::record_custom(node, {ones({2})}, {a}, {true});
  node->save({s});
  EXPECT_EQ(node->saved_tensors().size(), 1u);
  s.bump_version();
  EXPECT_THROW(node->saved_tensors(), Error);
  ag::backward({outs[0]}, {ones({2})}, false);
  try {
    node->saved_tensors();
    FAIL() << "saved tensors readable after backward";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SaveBackward"), std::string::npos) << e.what();
  }
}
