// Size arithmetic never wraps: impossible shapes are refused before anything is allocated,
// and no view can address bytes outside its storage.
#include <gtest/gtest.h>

#include <cstdint>

#include "core/checked_math.h"
#include "core/factory.h"
#include "core/tensor.h"
#include "ops/shape.h"

using namespace phalanx;

constexpr int64_t k2_31 = int64_t(1) << 31, k2_32 = int64_t(1) << 32, k2_62 = int64_t(1) << 62;

TEST(CheckedMath, DetectsOverflow) {
  int64_t r = 0;
  EXPECT_TRUE(mul_fits(int64_t(3), int64_t(4), r));
  EXPECT_EQ(r, 12);
  EXPECT_FALSE(mul_fits(k2_32, k2_32, r));
  EXPECT_FALSE(add_fits(INT64_MAX, int64_t(1), r));
  size_t u = 0;
  EXPECT_FALSE(mul_fits(size_t(k2_62), size_t(4), u));
}

TEST(Sizes, NumelOverflowIsAValueError) {
  EXPECT_THROW(shape_numel({k2_32, k2_32}), ValueError);
  EXPECT_EQ(shape_numel({k2_62, k2_62, 0}), 0);  // a zero dimension makes any shape empty
  EXPECT_EQ(shape_numel({k2_62, 1}), k2_62);
}

TEST(Sizes, ByteCountOverflowIsRefusedBeforeAllocation) {
  // 2**62 elements fit in int64, their 2**64 bytes do not: the old code allocated 0 bytes.
  EXPECT_THROW(Tensor::empty({k2_31, k2_31}), MemoryError);
  EXPECT_THROW(Tensor::empty({int64_t(1) << 21, int64_t(1) << 21, int64_t(1) << 21}), MemoryError);
  EXPECT_THROW(zeros({k2_62, 2}), MemoryError);
  EXPECT_THROW(Tensor::empty({int64_t(1) << 47}), MemoryError);  // 2**49 bytes > the maximum
  EXPECT_THROW(Storage::allocate(kMaxStorageBytes + 1), MemoryError);
  try {
    Tensor::empty({k2_31, k2_31});
  } catch (const MemoryError& e) {
    EXPECT_NE(std::string(e.what()).find("[2147483648, 2147483648]"), std::string::npos)
        << e.what();
  }
}

TEST(Sizes, EmptyTensorsWithHugeDimensionsAreFine) {
  Tensor t = Tensor::empty({int64_t(1) << 50, 0});
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.storage()->nbytes, 0u);
  EXPECT_THROW(Tensor::empty({k2_62, k2_62, 0}), ValueError);  // its strides would not fit
}

TEST(Sizes, NegativeDimensionIsAValueError) {
  EXPECT_THROW(Tensor::empty({2, -1}), ValueError);
}

TEST(Sizes, ExpandBeyondInt64ElementsIsRefused) {
  Tensor one = zeros({1});
  EXPECT_THROW(one.expand({k2_32, k2_32}), ValueError);
  Tensor big = one.expand({k2_62});  // a legal view: every element is the one stored
  EXPECT_EQ(big.numel(), k2_62);
  EXPECT_THROW(big.clone(), MemoryError);  // materializing it is not
}

TEST(Sizes, ViewsMustFitTheirStorage) {
  Tensor t = zeros({4});
  EXPECT_THROW(t.as_strided({5}, {1}, 0), ValueError);
  EXPECT_THROW(t.as_strided({2}, {1}, 3), ValueError);
  EXPECT_THROW(t.as_strided({2}, {k2_62}, 0), ValueError);
  EXPECT_THROW(t.as_strided({1}, {1}, -1), ValueError);
  EXPECT_NO_THROW(t.as_strided({2, 2}, {2, 1}, 0));
  EXPECT_NO_THROW(t.as_strided({0}, {1}, 100));  // addresses nothing
}

TEST(Sizes, NarrowWithAHugeStepDoesNotWrap) {
  Tensor t = zeros({8});
  EXPECT_THROW(t.narrow(0, 1, 3, k2_62), IndexError);
  EXPECT_EQ(t.narrow(0, 1, 1, k2_62).numel(), 1);
}

TEST(Sizes, ReshapeAndCatCheckTheirArithmetic) {
  EXPECT_THROW(zeros({0}).reshape({k2_32, k2_32, -1}), ValueError);
  Tensor half = zeros({1}).expand({k2_62});
  EXPECT_THROW(ops::cat({half, half}, 0), ValueError);
}

TEST(Sizes, ArangeWithTooManyElementsIsAMemoryError) {
  EXPECT_THROW(arange(0, 1e30, 1, DType::Float32), MemoryError);
}
