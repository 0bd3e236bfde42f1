// The blocked-weight cache: an unchanged weight is reordered once; any change to its bytes
// (a version bump, a live external writer such as a numpy view, foreign memory) means a
// fresh reorder, never a stale copy.
#include <gtest/gtest.h>

#include <cstring>

#include "core/factory.h"
#include "dnnl/layout.h"
#include "dnnl/weight_cache.h"

using namespace phalanx;
using dnnl_util::reorder_counts;
using dnnl_util::reorder_weight;

namespace {

dnnl::memory::desc blocked_desc() {
  return dnnl::memory::desc({16, 16, 3, 3}, dnnl::memory::data_type::f32,
                            dnnl::memory::format_tag::OIhw8i8o);
}

uint64_t weight_reorders() {
  return reorder_counts().weights;
}

// The plain values of a blocked copy, to compare against the weight.
std::vector<float> plain_values(const Tensor& blocked) {
  Tensor t = blocked.alias();
  t.materialize_plain();
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

std::vector<float> values(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

}  // namespace

TEST(WeightCache, ReordersAnUnchangedWeightOnce) {
  Tensor w = randn({16, 16, 3, 3});
  auto before = weight_reorders();
  Tensor a = reorder_weight(w, w.sizes(), blocked_desc(), true);
  Tensor b = reorder_weight(w, w.sizes(), blocked_desc(), true);
  EXPECT_EQ(weight_reorders(), before + 1);
  EXPECT_TRUE(a.same(b));
  EXPECT_EQ(plain_values(b), values(w));
}

TEST(WeightCache, AnInPlaceWriteMeansAFreshReorder) {
  Tensor w = randn({16, 16, 3, 3});
  Tensor a = reorder_weight(w, w.sizes(), blocked_desc(), true);
  std::weak_ptr<TensorImpl> cached = a.impl_ptr();
  a = Tensor();
  w.fill(0.5);  // bumps the version, which frees the cached copy
  EXPECT_TRUE(cached.expired());
  auto before = weight_reorders();
  Tensor b = reorder_weight(w, w.sizes(), blocked_desc(), true);
  EXPECT_EQ(weight_reorders(), before + 1);
  EXPECT_EQ(plain_values(b), values(w));
  // a write through another view of the same storage counts too
  w.view({16 * 16 * 9}).narrow(0, 0, 1).fill(-1);
  Tensor c = reorder_weight(w, w.sizes(), blocked_desc(), true);
  EXPECT_EQ(weight_reorders(), before + 2);
  EXPECT_EQ(plain_values(c), values(w));
}

TEST(WeightCache, NothingIsCachedWhileAnExternalWriterLives) {
  Tensor w = randn({16, 16, 3, 3});
  reorder_weight(w, w.sizes(), blocked_desc(), true);
  auto before = weight_reorders();
  {
    auto handle = Storage::external_writer(w.storage());  // e.g. a numpy view
    float* p = static_cast<float*>(w.storage()->data);
    p[0] = 123.f;  // no version bump, as numpy would write
    Tensor a = reorder_weight(w, w.sizes(), blocked_desc(), true);
    EXPECT_EQ(plain_values(a)[0], 123.f);
    p[1] = 7.f;
    Tensor b = reorder_weight(w, w.sizes(), blocked_desc(), true);
    EXPECT_EQ(plain_values(b)[1], 7.f);
    EXPECT_EQ(weight_reorders(), before + 2);
    p[2] = 9.f;  // the last write before the view goes
  }
  Tensor c = reorder_weight(w, w.sizes(), blocked_desc(), true);
  EXPECT_EQ(plain_values(c), values(w));
  Tensor d = reorder_weight(w, w.sizes(), blocked_desc(), true);
  EXPECT_TRUE(c.same(d));
  EXPECT_EQ(weight_reorders(), before + 3);
}

TEST(WeightCache, ForeignMemoryIsNeverCached) {
  auto buffer = std::make_shared<std::vector<float>>(16 * 16 * 9, 1.f);
  auto storage =
      Storage::wrap(buffer->data(), buffer->size() * sizeof(float), std::shared_ptr<void>(buffer));
  Tensor w = Tensor::from_blob(storage, {16, 16, 3, 3}, contiguous_strides({16, 16, 3, 3}), 0,
                               DType::Float32);
  auto before = weight_reorders();
  reorder_weight(w, w.sizes(), blocked_desc(), true);
  (*buffer)[0] = 5.f;  // its owner writes without telling us
  Tensor b = reorder_weight(w, w.sizes(), blocked_desc(), true);
  EXPECT_EQ(plain_values(b)[0], 5.f);
  EXPECT_EQ(weight_reorders(), before + 2);
}

TEST(WeightCache, ViewsOfOneStorageAreToldApart) {
  Tensor flat = randn({2 * 16 * 16 * 9});
  Tensor w0 = flat.narrow(0, 0, 16 * 16 * 9).view({16, 16, 3, 3});
  Tensor w1 = flat.narrow(0, 16 * 16 * 9, 16 * 16 * 9).view({16, 16, 3, 3});
  Tensor a = reorder_weight(w0, w0.sizes(), blocked_desc(), true);
  Tensor b = reorder_weight(w1, w1.sizes(), blocked_desc(), true);
  EXPECT_FALSE(a.same(b));
  EXPECT_EQ(plain_values(a), values(w0.contiguous()));
  EXPECT_EQ(plain_values(b), values(w1.contiguous()));
}

TEST(WeightCache, OffMeansAReorderEveryTime) {
  Tensor w = randn({16, 16, 3, 3});
  auto before = weight_reorders();
  Tensor a = reorder_weight(w, w.sizes(), blocked_desc(), false);
  Tensor b = reorder_weight(w, w.sizes(), blocked_desc(), false);
  EXPECT_EQ(weight_reorders(), before + 2);
  EXPECT_FALSE(a.same(b));
}

TEST(WeightCache, TheCopyDiesWithTheWeight) {
  std::weak_ptr<TensorImpl> cached;
  {
    Tensor w = randn({16, 16, 3, 3});
    cached = reorder_weight(w, w.sizes(), blocked_desc(), true).impl_ptr();
    EXPECT_FALSE(cached.expired());
  }
  EXPECT_TRUE(cached.expired());
}
