// The typed primitive helper: one descriptor and primitive per key, made once.
#include <gtest/gtest.h>

#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"

using namespace phalanx;
using namespace phalanx::dnnl_util;

TEST(CachedPrimitive, MakesThePrimitiveOncePerKey) {
  int made = 0;
  auto make = [&] {
    ++made;
    return dnnl_compat::matmul_pd(cpu_engine(), plain_desc({2, 3}), plain_desc({3, 4}),
                                  plain_desc({2, 4}));
  };
  auto a = cached<dnnl::matmul>(cache_key("test_cached_matmul", 2, 3, 4), make);
  auto b = cached<dnnl::matmul>(cache_key("test_cached_matmul", 2, 3, 4), make);
  EXPECT_EQ(made, 1);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(a->pd.dst_desc(), plain_desc({2, 4}));
  auto c = cached<dnnl::matmul>(cache_key("test_cached_matmul", 2, 3, 5), [&] {
    ++made;
    return dnnl_compat::matmul_pd(cpu_engine(), plain_desc({2, 3}), plain_desc({3, 5}),
                                  plain_desc({2, 5}));
  });
  EXPECT_EQ(made, 2);
  EXPECT_NE(a.get(), c.get());
}
