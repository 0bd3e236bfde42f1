// Threads hammering the process-wide state: the primitive cache, primitives shared by threads
// (each execution with its own scratchpad), a blocked tensor converted while others read it,
// the version counter, and gradient accumulation into one leaf. Run under ThreadSanitizer by
// `make test-tsan`; here, every result must equal the serial one.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "core/factory.h"
#include "dnnl/engine.h"
#include "dnnl/layout.h"
#include "dnnl/primitive_cache.h"
#include "ops/batch_norm.h"
#include "ops/conv.h"

using namespace phalanx;

namespace {

constexpr int kThreads = 4;

// Runs fn(i) on kThreads threads started as close together as possible.
template <typename F>
void run_threads(F fn) {
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      fn(i);
    });
  for (auto& t : threads) t.join();
}

std::vector<float> values(const Tensor& t) {
  Tensor c = t.alias();
  c.materialize_plain();
  c = c.contiguous();
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

// Conv then batch norm in training mode: a blocked activation between them and the batch
// norm kernel whose threads meet at barriers kept in its scratchpad.
Tensor conv_bn(const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& var) {
  ops::Conv2dParams p;
  p.padding = {1, 1};
  Tensor y = ops::conv2d_forward(x, w, Tensor(), p);
  return ops::batch_norm_forward(y, mean, var, Tensor(), Tensor(), true, 0.1, 1e-5).y;
}

}  // namespace

TEST(Threads, PrimitiveCacheCountsEveryCallAndKeepsItsBound) {
  dnnl_util::PrimitiveCache cache(16);
  constexpr int kCalls = 3000;
  run_threads([&](int i) {
    for (int k = 0; k < kCalls; ++k) {
      const std::string key = std::to_string((k * 7 + i) % 40);
      auto v =
          cache.get_or_create<std::string>(key, [&] { return std::make_shared<std::string>(key); });
      ASSERT_EQ(*v, key);
      ASSERT_LE(cache.size(), 16u);
    }
  });
  EXPECT_EQ(cache.hits() + cache.misses(), uint64_t(kThreads) * kCalls);
}

TEST(Threads, SharedPrimitivesGiveTheSerialResults) {
  Tensor w = randn({16, 8, 3, 3});
  std::vector<Tensor> xs;
  std::vector<std::vector<float>> expected;
  for (int i = 0; i < kThreads; ++i) {
    xs.push_back(randn({4, 8, 10, 10}));
    expected.push_back(values(conv_bn(xs[i], w, Tensor(), Tensor())));
  }
  run_threads([&](int i) {
    for (int it = 0; it < 40; ++it)
      ASSERT_EQ(values(conv_bn(xs[i], w, Tensor(), Tensor())), expected[i])
          << "thread " << i << " iteration " << it;
  });
}

TEST(Threads, BlockedTensorConvertedWhileOthersReadIt) {
  const Shape s{2, 16, 6, 6};
  const auto blocked_md = dnnl::memory::desc({2, 16, 6, 6}, dnnl::memory::data_type::f32,
                                             dnnl::memory::format_tag::nChw16c);
  for (int round = 0; round < 200; ++round) {
    Tensor plain = randn(s);
    const std::vector<float> expected = values(plain);
    Tensor shared = dnnl_util::reorder_to(plain, blocked_md, dnnl_util::ReorderKind::Data);
    ASSERT_TRUE(shared.is_blocked());
    run_threads([&](int i) {
      // Half convert the shared handle in place; half read its bytes through oneDNN.
      Tensor got = i % 2 ? shared.contiguous()
                         : dnnl_util::reorder_to(shared, dnnl_util::plain_desc(s),
                                                 dnnl_util::ReorderKind::Data);
      ASSERT_EQ(values(got), expected) << "thread " << i << " round " << round;
    });
    ASSERT_FALSE(shared.is_blocked());
  }
}

TEST(Threads, NoVersionBumpIsLost) {
  Tensor t = zeros({4});
  const uint64_t before = t.version();
  constexpr int kBumps = 20000;
  run_threads([&](int) {
    for (int k = 0; k < kBumps; ++k) t.bump_version();
  });
  EXPECT_EQ(t.version(), before + uint64_t(kThreads) * kBumps);
}

TEST(Threads, BackwardOfSeparateGraphsAccumulatesIntoOneLeaf) {
  Tensor w = randn({8, 4, 3, 3});
  w.autograd_meta().requires_grad = true;
  Tensor x = randn({2, 4, 6, 6});
  ops::Conv2dParams p;
  constexpr int kIters = 25;
  auto step = [&] {
    Tensor loss = autograd::sum(autograd::conv2d(x, w, Tensor(), p), {}, false);
    autograd::backward({loss}, {Tensor()}, false);
  };
  step();
  const std::vector<float> once = values(Tensor(w.autograd_meta().grad));
  w.autograd_meta().grad.reset();
  run_threads([&](int) {
    for (int k = 0; k < kIters; ++k) step();
  });
  const std::vector<float> total = values(Tensor(w.autograd_meta().grad));
  ASSERT_EQ(total.size(), once.size());
  for (size_t k = 0; k < once.size(); ++k)
    ASSERT_NEAR(total[k], once[k] * kThreads * kIters,
                1e-3f * (1 + std::abs(once[k]) * kThreads * kIters));
}
