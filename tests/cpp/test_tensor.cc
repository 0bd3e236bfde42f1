// Core tensor behaviour: views and strides, allocator alignment, the version counter.
#include <gtest/gtest.h>

#include <cstdint>

#include "core/factory.h"
#include "core/tensor.h"

using namespace phalanx;

TEST(Allocator, AlignsEveryAllocation) {
  for (size_t n : {1u, 3u, 63u, 64u, 65u, 4097u}) {
    auto s = Storage::allocate(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(s->data) % kAlignment, 0u) << "size " << n;
    EXPECT_EQ(s->nbytes, n);
  }
}

TEST(TensorViews, ContiguousStrides) {
  Tensor t = Tensor::empty({2, 3, 4});
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.numel(), 24);
}

TEST(TensorViews, TransposeSwapsStridesAndSharesStorage) {
  Tensor t = arange(0, 6, 1, DType::Float32).view({2, 3});
  Tensor tt = t.transpose(0, 1);
  EXPECT_EQ(tt.sizes(), (Shape{3, 2}));
  EXPECT_EQ(tt.strides(), (Shape{1, 3}));
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.storage(), t.storage());
  Tensor c = tt.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.storage(), t.storage());
  // element (2, 1) of the transpose is element (1, 2) of the original: 5
  EXPECT_FLOAT_EQ(c.data<float>()[2 * 2 + 1], 5.0f);
}

TEST(TensorViews, NarrowWithStepAndSelect) {
  Tensor t = arange(0, 20, 1, DType::Float32).view({4, 5});
  Tensor n = t.narrow(1, 1, 2, 2);  // columns 1 and 3
  EXPECT_EQ(n.sizes(), (Shape{4, 2}));
  EXPECT_EQ(n.strides(), (Shape{5, 2}));
  EXPECT_EQ(n.offset(), 1);
  Tensor row = t.select(0, 2);
  EXPECT_EQ(row.sizes(), (Shape{5}));
  EXPECT_FLOAT_EQ(row.narrow(0, 4, 1).item(), 14.0f);
  EXPECT_THROW(t.select(0, 4), IndexError);
  EXPECT_THROW(t.narrow(1, 3, 2, 2), IndexError);
}

TEST(TensorViews, ExpandUsesZeroStride) {
  Tensor t = ones({3, 1});
  Tensor e = t.expand({2, 3, 4});
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  EXPECT_THROW(t.expand({3, 2, 4}), ValueError);
}

TEST(TensorViews, ViewRefusesIncompatibleStrides) {
  Tensor t = Tensor::empty({4, 6}).transpose(0, 1);
  EXPECT_THROW(t.view({24}), ValueError);
  Tensor r = t.reshape({24});  // reshape copies instead
  EXPECT_TRUE(r.is_contiguous());
  EXPECT_EQ(Tensor::empty({4, 6}).view({2, -1, 3}).sizes(), (Shape{2, 4, 3}));
  EXPECT_THROW(Tensor::empty({4, 6}).view({5, -1}), ValueError);
}

TEST(VersionCounter, SharedByViewsAndBumpedByWrites) {
  Tensor t = zeros({3, 3});
  Tensor v = t.select(0, 1);
  uint64_t before = t.version();
  v.fill(2.0);
  EXPECT_EQ(t.version(), before + 1);
  EXPECT_EQ(v.version(), t.version());
  t.copy_from(ones({3, 3}));
  EXPECT_EQ(v.version(), before + 2);
  Tensor c = t.clone();
  EXPECT_NE(c.version(), 99u);
  c.fill(1.0);
  EXPECT_EQ(t.version(), before + 2);  // a clone has its own counter
}

TEST(DTypes, HalfAndBfloat16RoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 1e-5f, 3.14159f}) {
    EXPECT_NEAR(half_to_float(float_to_half(f)), f, std::abs(f) * 1e-3f + 1e-7f) << f;
    EXPECT_NEAR(bfloat16_to_float(float_to_bfloat16(f)), f, std::abs(f) * 1e-2f) << f;
  }
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_bfloat16(1.0f), 0x3f80);
  Tensor t = arange(0, 4, 0.5, DType::Float32).to(DType::Float16).to(DType::Float32);
  EXPECT_FLOAT_EQ(t.data<float>()[3], 1.5f);
}

TEST(Factory, RejectsNegativeSizes) {
  EXPECT_THROW(zeros({2, -1}), ValueError);
  EXPECT_THROW(Tensor::empty({-3}), ValueError);
  EXPECT_THROW(randint(5, 5, {2}), ValueError);
}

TEST(Factory, SeededGeneratorsRepeat) {
  auto g1 = std::make_shared<Generator>(7), g2 = std::make_shared<Generator>(7);
  Tensor a = randn({100}, g1), b = randn({100}, g2);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]);
  std::string state = g1->get_state();
  Tensor c = rand({10}, g1);
  g1->set_state(state);
  Tensor d = rand({10}, g1);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.data<float>()[i], d.data<float>()[i]);
}
