// The primitive cache: a second identical op creates nothing; a different shape creates one.
#include <gtest/gtest.h>

#include "core/factory.h"
#include "dnnl/primitive_cache.h"
#include "ops/conv.h"

using namespace phalanx;

TEST(PrimitiveCache, ReusesPrimitivesForTheSameShapes) {
  auto& cache = dnnl_util::PrimitiveCache::global();
  ops::Conv2dParams p;
  p.padding = {1, 1};
  Tensor x = randn({2, 3, 9, 9}), w = randn({4, 3, 3, 3}), b = randn({4});
  ops::conv2d_forward(x, w, b, p);
  const auto created = cache.misses();
  const auto hits = cache.hits();
  Tensor y = ops::conv2d_forward(x, w, b, p);
  EXPECT_EQ(cache.misses(), created);
  EXPECT_EQ(cache.hits(), hits + 1);
  ops::conv2d_forward(randn({2, 3, 11, 9}), w, b, p);
  EXPECT_EQ(cache.misses(), created + 1);
  EXPECT_EQ(y.sizes(), (Shape{2, 4, 9, 9}));
}

TEST(PrimitiveCache, EvictsLeastRecentlyUsed) {
  dnnl_util::PrimitiveCache cache(2);
  int made = 0;
  auto make = [&] {
    ++made;
    return std::make_shared<int>(made);
  };
  cache.get_or_create<int>("a", make);
  cache.get_or_create<int>("b", make);
  cache.get_or_create<int>("a", make);  // a is now the most recent
  cache.get_or_create<int>("c", make);  // evicts b
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(made, 3);
  cache.get_or_create<int>("a", make);
  EXPECT_EQ(made, 3);
  cache.get_or_create<int>("b", make);
  EXPECT_EQ(made, 4);
}

TEST(PrimitiveCache, KeysSeparateParts) {
  EXPECT_NE(dnnl_util::cache_key("x", std::vector<int64_t>{1, 23}),
            dnnl_util::cache_key("x", std::vector<int64_t>{12, 3}));
}

TEST(PrimitiveCache, KeysSpellEveryPart) {
  // KeyWriter replaced std::ostringstream: the same text for integers, strings and bools
  EXPECT_EQ(dnnl_util::cache_key("conv_fwd", std::vector<int64_t>{1, 2, 3}, 3, true, int64_t{-7}),
            "conv_fwd|1,2,3,|3|1|-7|");
  // floats in their shortest exact form: values that agree to 6 digits still differ
  EXPECT_NE(dnnl_util::cache_key("elt", 1.0000001f), dnnl_util::cache_key("elt", 1.0f));
  EXPECT_EQ(dnnl_util::cache_key("elt", 0.5f, 1e-5), "elt|0.5|1e-05|");
}
