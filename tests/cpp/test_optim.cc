// The fused optimizer loops of csrc/optim on values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/factory.h"
#include "core/tensor.h"
#include "optim/adam.h"
#include "optim/lars.h"
#include "optim/sgd.h"

using namespace phalanx;

static Tensor values(std::vector<float> v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}

TEST(OptimSGD, PlainStepAndVersionBump) {
  Tensor p = values({1.0f, -2.0f}), g = values({0.5f, 1.0f});
  uint64_t v0 = p.version();
  std::vector<Tensor> bufs;
  optim::sgd_step({p}, {g}, bufs, {0.1, 0, 0, 0, false, false});
  EXPECT_FLOAT_EQ(p.data<float>()[0], 0.95f);  // 1 - 0.1 * 0.5
  EXPECT_FLOAT_EQ(p.data<float>()[1], -2.1f);
  EXPECT_GT(p.version(), v0);
}

TEST(OptimSGD, MomentumBufferStartsAtGradientThenDampens) {
  // lr 0.1, momentum 0.9, dampening 0.5, weight decay 0.1; p = 1, g = 1 both steps.
  Tensor p = values({1.0f}), g = values({1.0f});
  std::vector<Tensor> bufs(1);
  optim::SGDOptions o{0.1, 0.9, 0.5, 0.1, false, false};
  optim::sgd_step({p}, {g}, bufs, o);
  // d = 1 + 0.1 * 1 = 1.1; buf = d (no dampening on the first step); p = 1 - 0.11 = 0.89
  ASSERT_TRUE(bufs[0].defined());
  EXPECT_FLOAT_EQ(bufs[0].data<float>()[0], 1.1f);
  EXPECT_FLOAT_EQ(p.data<float>()[0], 0.89f);
  optim::sgd_step({p}, {g}, bufs, o);
  // d = 1 + 0.089 = 1.089; buf = 0.9 * 1.1 + 0.5 * 1.089 = 1.5345; p = 0.89 - 0.15345
  EXPECT_NEAR(bufs[0].data<float>()[0], 1.5345f, 1e-6);
  EXPECT_NEAR(p.data<float>()[0], 0.73655f, 1e-6);
}

TEST(OptimSGD, NesterovAndMaximize) {
  Tensor p = values({0.0f}), g = values({2.0f});
  std::vector<Tensor> bufs(1);
  optim::sgd_step({p}, {g}, bufs, {0.5, 0.5, 0, 0, true, true});
  // d = -2; buf = -2; nesterov d = -2 + 0.5 * -2 = -3; p = 0 - 0.5 * -3 = 1.5
  EXPECT_FLOAT_EQ(p.data<float>()[0], 1.5f);
  EXPECT_FLOAT_EQ(bufs[0].data<float>()[0], -2.0f);
}

TEST(OptimSGD, RejectsMismatchedShapesAndDtypes) {
  std::vector<Tensor> bufs;
  optim::SGDOptions o{0.1, 0, 0, 0, false, false};
  EXPECT_THROW(optim::sgd_step({values({1, 2})}, {values({1})}, bufs, o), ValueError);
  EXPECT_THROW(optim::sgd_step({values({1}).to(DType::Float16)}, {values({1})}, bufs, o),
               TypeError);
  EXPECT_THROW(optim::sgd_step({values({1})}, {}, bufs, o), ValueError);
  Tensor strided = zeros({2, 2}).transpose(0, 1);
  EXPECT_THROW(optim::sgd_step({strided}, {zeros({2, 2})}, bufs, o), ValueError);
}

TEST(OptimAdam, FirstTwoStepsByHand) {
  // With bias correction the first Adam step is lr * g / (|g| + eps') = lr * sign(g).
  Tensor p = values({1.0f, 1.0f}), g = values({0.5f, -4.0f});
  Tensor m = zeros({2}), v = zeros({2}), step = zeros({});
  optim::AdamOptions o;  // lr 1e-3, betas (0.9, 0.999), eps 1e-8
  optim::adam_step({p}, {g}, {m}, {v}, {}, {step}, o);
  EXPECT_FLOAT_EQ(step.data<float>()[0], 1.0f);
  EXPECT_NEAR(p.data<float>()[0], 0.999f, 1e-6);
  EXPECT_NEAR(p.data<float>()[1], 1.001f, 1e-6);
  EXPECT_FLOAT_EQ(m.data<float>()[0], 0.05f);
  EXPECT_FLOAT_EQ(v.data<float>()[1], 0.016f);
  // Second step with g = 0 for element 0: m = 0.045, v = 0.00025 * 0.999 = 0.00024975;
  // m_hat = 0.045 / 0.19, v_hat = 0.00024975 / 0.001999 -> step = 1e-3 * m_hat / sqrt(v_hat).
  Tensor g2 = values({0.0f, 0.0f});
  optim::adam_step({p}, {g2}, {m}, {v}, {}, {step}, o);
  double expect = 0.999 - 1e-3 * (0.045 / 0.19) / (std::sqrt(0.00024975 / 0.001999) + 1e-8);
  EXPECT_NEAR(p.data<float>()[0], expect, 1e-6);
}

TEST(OptimAdam, DecoupledDecayAndAmsgrad) {
  Tensor p = values({2.0f}), g = values({1.0f});
  Tensor m = zeros({1}), v = zeros({1}), vmax = zeros({1}), step = zeros({});
  optim::AdamOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.5;
  o.decoupled_weight_decay = true;
  o.amsgrad = true;
  optim::adam_step({p}, {g}, {m}, {v}, {vmax}, {step}, o);
  // p = 2 * (1 - 0.05) = 1.9, then the sign step 0.1: 1.8
  EXPECT_NEAR(p.data<float>()[0], 1.8f, 1e-6);
  EXPECT_FLOAT_EQ(vmax.data<float>()[0], v.data<float>()[0]);
  // A smaller gradient next: the amsgrad maximum keeps the larger second moment.
  Tensor g2 = values({0.0f});
  optim::adam_step({p}, {g2}, {m}, {v}, {vmax}, {step}, o);
  EXPECT_GT(vmax.data<float>()[0], v.data<float>()[0]);
}

TEST(OptimAdam, MissingAmsgradStateIsAValueError) {
  optim::AdamOptions o;
  o.amsgrad = true;
  Tensor p = values({1}), g = values({1});
  EXPECT_THROW(optim::adam_step({p}, {g}, {zeros({1})}, {zeros({1})}, {}, {zeros({})}, o),
               ValueError);
}

TEST(OptimLARS, TrustRatioAndExclusion) {
  // w = (3, 4): ||w|| = 5; g = (0, 1): ||g|| = 1; wd 0.1, eta 0.01, eps 0:
  // local = 0.01 * 5 / (1 + 0.5) = 1/30; v = 2 * local * (g + 0.1 w) = (0.02, 0.0933..).
  Tensor w = values({3.0f, 4.0f}), g = values({0.0f, 1.0f});
  Tensor b = values({1.0f}), gb = values({2.0f});
  std::vector<Tensor> bufs(2);
  optim::LARSOptions o{2.0, 0.9, 0.1, 0.01, 0.0};
  EXPECT_NEAR(optim::lars_local_lr(w, g, o), 1.0 / 30, 1e-12);
  optim::lars_step({w, b}, {g, gb}, bufs, {false, true}, o);
  EXPECT_NEAR(w.data<float>()[0], 3.0f - 2.0f / 30 * 0.3f, 1e-6);
  EXPECT_NEAR(w.data<float>()[1], 4.0f - 2.0f / 30 * 1.4f, 1e-6);
  // Excluded: plain lr, no decay: b = 1 - 2 * 2 = -3.
  EXPECT_FLOAT_EQ(b.data<float>()[0], -3.0f);
  EXPECT_FLOAT_EQ(bufs[1].data<float>()[0], 4.0f);
}

TEST(OptimLARS, ZeroNormFallsBackToOne) {
  Tensor w = zeros({3}), g = values({1, 1, 1});
  optim::LARSOptions o{0.5, 0, 0.1, 0.001, 1e-8};
  EXPECT_EQ(optim::lars_local_lr(w, g, o), 1.0);
  EXPECT_EQ(optim::lars_local_lr(g, zeros({3}), o), 1.0);
}
