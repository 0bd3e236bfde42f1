// The blocked-weight cache: an unchanged weight is reordered once; any change to its bytes
// (a version bump, a live external writer such as a numpy view, foreign memory) means a
// fresh reorder, never a stale copy.
#include <gtest/gtest.h>

#include <algorithm>
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

// A parameter kept in a convolution's layout (Tensor::adopt_layout): converted in place with
// its values and version, and only when nothing else holds its bytes.
namespace {

Tensor counting_weight() {
  Tensor w = Tensor::empty({16, 16, 3, 3});
  float* p = w.data<float>();
  for (int64_t i = 0; i < w.numel(); ++i) p[i] = static_cast<float>(i % 97) - 48.0f;
  return w;
}

}  // namespace

TEST(AdoptLayout, ConvertsInPlaceKeepingValuesAndVersion) {
  Tensor w = counting_weight();
  const std::vector<float> before = values(w);
  w.bump_version();
  const uint64_t version = w.version();
  const uint64_t adopted = reorder_counts().to_blocked;
  ASSERT_TRUE(dnnl_util::adopt_layout(w, blocked_desc()));
  EXPECT_TRUE(w.is_blocked());
  EXPECT_EQ(w.version(), version);
  EXPECT_EQ(reorder_counts().to_blocked, adopted + 1);
  EXPECT_TRUE(dnnl_util::adopt_layout(w, blocked_desc()));  // already so: nothing to do
  EXPECT_EQ(reorder_counts().to_blocked, adopted + 1);
  EXPECT_EQ(w.stored_numel(), w.numel());  // 16 channels: OIhw8i8o pads nothing
  EXPECT_EQ(plain_values(w), before);
  w.materialize_plain();
  EXPECT_EQ(values(w), before);
}

TEST(AdoptLayout, RefusedWhileAnythingElseHoldsTheBytes) {
  Tensor w = counting_weight();
  {
    Tensor alias = w.alias();  // a detached alias would keep reading the plain bytes
    EXPECT_FALSE(dnnl_util::adopt_layout(w, blocked_desc()));
  }
  {
    Tensor view = w.narrow(0, 0, 8);
    EXPECT_FALSE(dnnl_util::adopt_layout(w, blocked_desc()));
    EXPECT_FALSE(dnnl_util::adopt_layout(view, blocked_desc()));
  }
  {
    auto writer = Storage::external_writer(w.storage());  // a live numpy view
    EXPECT_FALSE(dnnl_util::adopt_layout(w, blocked_desc()));
  }
  EXPECT_FALSE(w.is_blocked());
  EXPECT_TRUE(dnnl_util::adopt_layout(w, blocked_desc()));  // all of them gone
}

TEST(AdoptLayout, PaddedLayoutsStoreZerosInThePadding) {
  Tensor w = Tensor::empty({6, 16, 3, 3});  // 6 output channels: OIhw8i8o pads to 8
  std::fill(w.data<float>(), w.data<float>() + w.numel(), 1.0f);
  auto md = dnnl::memory::desc({6, 16, 3, 3}, dnnl::memory::data_type::f32,
                               dnnl::memory::format_tag::OIhw8i8o);
  ASSERT_TRUE(dnnl_util::adopt_layout(w, md));
  ASSERT_EQ(w.stored_numel(), 8 * 16 * 9);
  const float* p = w.data<float>();
  double sum = 0;
  for (int64_t i = 0; i < w.stored_numel(); ++i) sum += p[i];
  EXPECT_EQ(sum, 6.0 * 16 * 9);  // the ones, and zeros where the padding is
  Tensor state = w.empty_like_stored();
  EXPECT_TRUE(state.same_layout(w));
  EXPECT_FALSE(state.same_layout(Tensor::empty({6, 16, 3, 3})));
}

namespace {

dnnl::memory::desc tagged(const dnnl::memory::dims& dims, dnnl::memory::format_tag tag) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, tag);
}

// An optimizer step as optim::update_parameter runs it: every stored element of the kept
// weight changed chunk by chunk, each chunk written into the twins right after, then the
// version bump and the commit. `copy`: the cached copy in `twin_md` read after the step.
void step_with_twins(const Tensor& w, const dnnl::memory::desc& twin_md, Tensor* copy) {
  const dnnl_util::WeightTwins twins(w);
  ASSERT_FALSE(twins.empty());
  float* p = w.data<float>();
  const int64_t n = w.stored_numel(), chunk = twins.chunk();
  ASSERT_GT(chunk, 0);
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t end = std::min(n, begin + chunk);
    for (int64_t i = begin; i < end; ++i) p[i] = p[i] * 3.0f;  // zero padding stays zero
    twins.write(p, begin, end);
  }
  w.bump_version();
  twins.commit(w);
  *copy = reorder_weight(w, w.sizes(), twin_md, true);
}

// The copy's bytes (padding included) against a fresh reorder of the weight's plain values.
void expect_same_bytes_as_a_fresh_reorder(const Tensor& copy, const Tensor& w,
                                          const dnnl::memory::desc& md) {
  std::vector<float> plain = plain_values(w);
  Tensor fresh_plain = Tensor::empty(w.sizes());
  std::copy(plain.begin(), plain.end(), fresh_plain.data<float>());
  Tensor want = reorder_weight(fresh_plain, w.sizes(), md, false);
  ASSERT_EQ(md.get_size(), want.stored_numel() * sizeof(float));
  EXPECT_EQ(std::memcmp(copy.raw_data(), want.raw_data(), md.get_size()), 0);
}

// A weight of `dims` kept in layout `kept`, whose backward has cached its copy in `twin`:
// each of `steps` optimizer steps leaves that copy current without a weight reorder, equal
// in value and, padding included, in bytes to a fresh reorder of the updated weight.
void expect_steps_keep_the_twin_current(const dnnl::memory::dims& dims,
                                        dnnl::memory::format_tag kept_tag,
                                        dnnl::memory::format_tag twin_tag, int steps = 1) {
  Tensor w = randn(Shape(dims.begin(), dims.end()));
  const auto kept = tagged(dims, kept_tag), twin = tagged(dims, twin_tag);
  ASSERT_TRUE(dnnl_util::adopt_layout(w, kept));
  reorder_weight(w, w.sizes(), twin, true);   // the backward caches its copy
  for (int step = 0; step < steps; ++step) {  // later steps reuse the map made in the first
    const auto before = weight_reorders();
    Tensor copy;
    ASSERT_NO_FATAL_FAILURE(step_with_twins(w, twin, &copy));
    EXPECT_EQ(weight_reorders(), before);
    EXPECT_EQ(plain_values(copy), plain_values(w));
    expect_same_bytes_as_a_fresh_reorder(copy, w, twin);
  }
}

}  // namespace

// A kept weight whose backward-data copy is its blocking with each block transposed: the
// update writes the copy block by block, and the next backward reorders nothing.
TEST(WeightTwins, TransposedBlocksAreWrittenAlongsideTheUpdate) {
  expect_steps_keep_the_twin_current({32, 32, 3, 3}, dnnl::memory::format_tag::OIhw16i16o,
                                     dnnl::memory::format_tag::OIhw16o16i);
}

// LeNet's second convolution: kept as Acdb16a (6 input channels as they are), read by
// backward-data as ABcd16a16b (input channels padded to 16). Not a transposition of blocks:
// the copy is written element by element, its padding zero; twice, the second step with the
// map made for this pair of layouts.
TEST(WeightTwins, AnyOtherBlockingIsWrittenElementByElementWithZeroPadding) {
  expect_steps_keep_the_twin_current({16, 6, 5, 5}, dnnl::memory::format_tag::Acdb16a,
                                     dnnl::memory::format_tag::ABcd16a16b, 2);
}

// Padding on the kept side (6 output channels in 16-blocks) is not copied, and a twin with
// its own padding elsewhere gets zeros there.
TEST(WeightTwins, PaddingOnBothSidesMapsOnlyTheRealElements) {
  expect_steps_keep_the_twin_current({6, 20, 3, 3}, dnnl::memory::format_tag::OIhw16i16o,
                                     dnnl::memory::format_tag::Acdb16a);
}

// A blocking with two inner blocks on one dimension (OIhw4i16o4i: the input channels split
// 4 x 4 around the output block) maps element by element too.
TEST(WeightTwins, NestedInnerBlocksOnOneDimensionMapElementByElement) {
  expect_steps_keep_the_twin_current({32, 32, 3, 3}, dnnl::memory::format_tag::OIhw4i16o4i,
                                     dnnl::memory::format_tag::OIhw16i16o);
}
