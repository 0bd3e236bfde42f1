// Op families dispatch by their tables and by what the forward reports, not by enum position.
#include <gtest/gtest.h>

#include <string>

#include "core/factory.h"
#include "dnnl/layout.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/pool.h"

using namespace phalanx;
using namespace phalanx::ops;

TEST(OpTables, ComparisonIsATraitOfTheOp) {
  EXPECT_FALSE(is_comparison(BinaryOp::Minimum));
  EXPECT_TRUE(is_comparison(BinaryOp::Eq));
  EXPECT_TRUE(is_comparison(BinaryOp::Ge));
  EXPECT_STREQ(binary_name(BinaryOp::Maximum), "maximum");
  EXPECT_EQ(binary_result_dtype(BinaryOp::Lt, DType::Float32, DType::Float32), DType::Bool);
  EXPECT_STREQ(unary_name(UnaryOp::LogicalNot), "logical_not");
}

TEST(OpTables, ActivationNamesComeFromOneTable) {
  EXPECT_STREQ(activation_name(Activation::GeluTanh), "gelu");
  EXPECT_STREQ(activation_info(Activation::GeluTanh).python_name, "gelu_tanh");
  EXPECT_STREQ(activation_info(Activation::Relu6).backward_name, "HardtanhBackward");
}

TEST(OpTables, MaxPoolReportsItsKernelAndBackwardFollowsIt) {
  Pool2dParams p;
  p.kernel = {2, 2};
  p.stride = {2, 2};
  Tensor x6 = randn({1, 6, 4, 4});  // 6 channels: the direct loop
  MaxPoolResult r6 = max_pool2d_forward(x6, p);
  EXPECT_EQ(r6.kernel, MaxPoolKernel::Direct);
  Tensor dx6 = max_pool2d_backward(ones({1, 6, 2, 2}), x6, r6.workspace, r6.kernel, p);
  EXPECT_EQ(dx6.sizes(), x6.sizes());
  // A plain input with a multiple of 8 channels: the direct loop too, channels-last, so its
  // backward scatters into a plain gradient (issue 17)
  Tensor p16 = randn({1, 16, 4, 4});
  MaxPoolResult rp16 = max_pool2d_forward(p16, p);
  EXPECT_EQ(rp16.kernel, MaxPoolKernel::Direct);
  Tensor dp16 = max_pool2d_backward(ones({1, 16, 2, 2}), p16, rp16.workspace, rp16.kernel, p);
  EXPECT_EQ(dp16.sizes(), p16.sizes());
  // a blocked one (a convolution's output) with a multiple of 8 channels: oneDNN
  Tensor x16 =
      dnnl_util::reorder_to(randn({1, 16, 4, 4}), dnnl_util::channels_last_desc({1, 16, 4, 4}),
                            dnnl_util::ReorderKind::Data);
  ASSERT_TRUE(x16.is_blocked());
  MaxPoolResult r16 = max_pool2d_forward(x16, p);
  EXPECT_EQ(r16.kernel, MaxPoolKernel::OneDnn);
  Tensor dx16 = max_pool2d_backward(ones({1, 16, 2, 2}), x16, r16.workspace, r16.kernel, p);
  EXPECT_EQ(dx16.sizes(), x16.sizes());
}
