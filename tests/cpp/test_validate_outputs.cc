// The engine refuses a backward function's wrong gradients, naming the node.
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "core/factory.h"

using namespace phalanx;
namespace ag = phalanx::autograd;

namespace {

Tensor leaf(const Shape& s) {
  Tensor t = ones(s);
  t.autograd_meta().requires_grad = true;
  return t;
}

// out = a + b recorded with a deliberately broken backward function, then backward from it.
void backward_through(ag::BackwardFn fn, const Shape& sa = {3}, const Shape& sb = {3}) {
  Tensor a = leaf(sa), b = leaf(sb);
  Tensor out = ops::binary(ops::BinaryOp::Add, a, b);
  ag::record("BrokenBackward", {out}, {a, b}, {}, std::move(fn));
  ag::backward({out}, {ones(out.sizes())}, false);
}

std::string message_of(ag::BackwardFn fn) {
  try {
    backward_through(std::move(fn));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ValidateOutputs, TooFewGradientsNameTheNode) {
  std::string m = message_of([](const ag::BackwardContext& c) { return ag::TensorList{c.grad()}; });
  EXPECT_NE(m.find("BrokenBackward"), std::string::npos) << m;
  EXPECT_NE(m.find("incorrect number of gradients (expected 2, got 1)"), std::string::npos) << m;
}

TEST(ValidateOutputs, TooManyGradientsAreRefused) {
  std::string m = message_of([](const ag::BackwardContext& c) {
    return ag::TensorList{c.grad(), c.grad(), c.grad()};
  });
  EXPECT_NE(m.find("(expected 2, got 3)"), std::string::npos) << m;
}

TEST(ValidateOutputs, AGradientOfTheWrongShapeIsRefused) {
  std::string m = message_of([](const ag::BackwardContext& c) {
    return ag::TensorList{c.grad(), ones({7})};
  });
  EXPECT_NE(m.find("BrokenBackward returned an invalid gradient at index 1"), std::string::npos)
      << m;
  EXPECT_NE(m.find("[7]"), std::string::npos) << m;
  EXPECT_NE(m.find("[3]"), std::string::npos) << m;
}

TEST(ValidateOutputs, BroadcastableIsNotEnoughTheShapeMustMatch) {
  std::string m = message_of([](const ag::BackwardContext& c) {
    return ag::TensorList{ones({1}), c.grad()};
  });
  EXPECT_NE(m.find("index 0"), std::string::npos) << m;
}

TEST(ValidateOutputs, AGradientOfTheWrongDtypeIsRefused) {
  std::string m = message_of([](const ag::BackwardContext& c) {
    return ag::TensorList{c.grad(), ones({3}, DType::Float16)};
  });
  EXPECT_NE(m.find("expected dtype float32"), std::string::npos) << m;
}

TEST(ValidateOutputs, UndefinedGradientsAndGradientsForUnneededInputsPass) {
  EXPECT_NO_THROW(backward_through([](const ag::BackwardContext& c) {
    return ag::TensorList{c.grad(), Tensor()};
  }));
  // b does not require grad: whatever comes back for it is dropped, unchecked, as in PyTorch
  Tensor a = leaf({3}), b = ones({3});
  Tensor out = ops::binary(ops::BinaryOp::Add, a, b);
  ag::record("PartialBackward", {out}, {a, b}, {}, [](const ag::BackwardContext& c) {
    return ag::TensorList{c.grad(), ones({9})};
  });
  EXPECT_NO_THROW(ag::backward({out}, {ones({3})}, false));
}
