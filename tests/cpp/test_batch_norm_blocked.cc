// Batch norm on channel-blocked inputs (ops/batch_norm_blocked.h), for both block widths:
// nChw16c is what convolutions give on AVX-512 (tested against PyTorch from Python), nChw8c
// what they give on AVX2 machines, which this test reaches by reordering. Each is checked
// against the plain loops (batch_norm_plain.h) on the same values.
#include <gtest/gtest.h>

#include <cmath>

#include "core/factory.h"
#include "core/generator.h"
#include "dnnl/layout.h"
#include "ops/batch_norm.h"

using namespace phalanx;

namespace {

using Tag = dnnl::memory::format_tag;

Tensor blocked(const Tensor& plain, Tag tag) {
  auto md = dnnl::memory::desc(plain.sizes(), dnnl::memory::data_type::f32, tag);
  Tensor t = dnnl_util::reorder_to(plain, md, dnnl_util::ReorderKind::Data);
  EXPECT_TRUE(t.is_blocked());
  return t;
}

std::vector<float> plain_values(const Tensor& t) {
  Tensor c = t.alias();
  if (c.is_blocked()) c.materialize_plain();
  const float* p = c.data<float>();
  return std::vector<float>(p, p + c.numel());
}

void expect_near(const Tensor& a, const Tensor& b, float tol, const char* what) {
  auto va = plain_values(a), vb = plain_values(b);
  ASSERT_EQ(va.size(), vb.size()) << what;
  for (size_t i = 0; i < va.size(); ++i)
    ASSERT_NEAR(va[i], vb[i], tol * (1 + std::fabs(vb[i]))) << what << " at " << i;
}

class BlockedBatchNorm : public ::testing::TestWithParam<std::tuple<Tag, int64_t, bool>> {};

TEST_P(BlockedBatchNorm, MatchesThePlainLoops) {
  const auto [tag, C, training] = GetParam();
  auto gen = std::make_shared<Generator>(11);
  Tensor x = randn({3, C, 5, 7}, gen), dy = randn({3, C, 5, 7}, gen);
  Tensor w = randn({C}, gen), b = randn({C}, gen);
  Tensor rm_plain = randn({C}, gen), rv_plain = full({C}, 1.5);
  Tensor rm_blocked = rm_plain.clone(), rv_blocked = rv_plain.clone();
  auto ref = ops::batch_norm_forward(x, rm_plain, rv_plain, w, b, training, 0.1, 1e-5);
  auto got =
      ops::batch_norm_forward(blocked(x, tag), rm_blocked, rv_blocked, w, b, training, 0.1, 1e-5);
  ASSERT_TRUE(got.y.is_blocked());  // the output keeps the input's layout
  expect_near(got.y, ref.y, 1e-5f, "y");
  expect_near(got.mean, ref.mean, 1e-6f, "mean");
  expect_near(got.var, ref.var, 1e-5f, "var");
  expect_near(rm_blocked, rm_plain, 1e-6f, "running_mean");
  expect_near(rv_blocked, rv_plain, 1e-5f, "running_var");
  auto gref =
      ops::batch_norm_backward(dy, x, ref.mean, ref.var, w, training, 1e-5, {true, true, true});
  auto ggot = ops::batch_norm_backward(blocked(dy, tag), got.x, got.mean, got.var, w, training,
                                       1e-5, {true, true, true});
  ASSERT_TRUE(ggot.dx.is_blocked());
  expect_near(ggot.dx, gref.dx, 1e-4f, "dx");
  expect_near(ggot.dweight, gref.dweight, 1e-4f, "dweight");
  expect_near(ggot.dbias, gref.dbias, 1e-4f, "dbias");
}

// The fused ReLU: the output is relu(y) and the gradient flows only where it was kept.
TEST_P(BlockedBatchNorm, FusedReluMasksTheGradient) {
  const auto [tag, C, training] = GetParam();
  auto gen = std::make_shared<Generator>(12);
  Tensor x = randn({2, C, 4, 3}, gen), dy = randn({2, C, 4, 3}, gen);
  Tensor w = randn({C}, gen), b = randn({C}, gen);
  Tensor rm = randn({C}, gen), rv = full({C}, 0.7);
  auto plain = ops::batch_norm_forward(x, rm.clone(), rv.clone(), w, b, training, 0.1, 1e-5);
  auto fused = ops::batch_norm_forward(blocked(x, tag), rm.clone(), rv.clone(), w, b, training, 0.1,
                                       1e-5, /*fuse_relu=*/true);
  auto y = plain_values(plain.y), yf = plain_values(fused.y), g = plain_values(dy);
  Tensor masked = dy.clone();
  float* m = masked.data<float>();
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_NEAR(yf[i], y[i] > 0 ? y[i] : 0.f, 1e-5f * (1 + std::fabs(y[i]))) << i;
    m[i] = yf[i] > 0 ? g[i] : 0.f;  // the statistics may differ in the last bit: its own mask
  }
  auto gref = ops::batch_norm_backward(masked, x, plain.mean, plain.var, w, training, 1e-5,
                                       {true, true, true});
  auto ggot = ops::batch_norm_backward(blocked(dy, tag), fused.x, fused.mean, fused.var, w,
                                       training, 1e-5, {true, true, true}, fused.workspace);
  expect_near(ggot.dx, gref.dx, 1e-4f, "dx");
  expect_near(ggot.dweight, gref.dweight, 1e-4f, "dweight");
  expect_near(ggot.dbias, gref.dbias, 1e-4f, "dbias");
}

// Whole blocks and a padded last block (C = 12, 20), training and eval.
INSTANTIATE_TEST_SUITE_P(Layouts, BlockedBatchNorm,
                         ::testing::Combine(::testing::Values(Tag::nChw8c, Tag::nChw16c),
                                            ::testing::Values<int64_t>(16, 12, 20),
                                            ::testing::Bool()));

TEST(BlockedBatchNorm, AWorkspaceFromAnotherInputIsRejected) {
  auto gen = std::make_shared<Generator>(13);
  Tensor x = blocked(randn({2, 16, 4, 4}, gen), Tag::nChw16c);
  auto r = ops::batch_norm_forward(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5,
                                   /*fuse_relu=*/true);
  Tensor wrong = Tensor::empty({7}, DType::UInt8);
  EXPECT_THROW(ops::batch_norm_backward(x, r.x, r.mean, r.var, Tensor(), true, 1e-5,
                                        {true, false, false}, wrong),
               ValueError);
}

}  // namespace
