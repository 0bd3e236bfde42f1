// ProcessGroup collectives in one process (ranks as threads), mainly so the sanitizer build
// runs them: the ring reduce-scatter and every all-reduce algorithm.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "dist/process_group.h"
#include "dist/tcp_store.h"

using namespace phalanx;
using dist::AllreduceAlgorithm;
using dist::Millis;
using dist::ProcessGroup;
using dist::ReduceOp;
using dist::TCPStore;

namespace {

// phalanx's ranks are Python processes, and CPython ignores SIGPIPE at start-up: a write to a
// peer that closed its socket fails with EPIPE, which the process group reports naming the
// peer. This binary does the same; otherwise Gloo's write to the closed peer in
// AClosedPeerIsNamedByRank kills it with SIGPIPE when it races ahead of the read that sees EOF.
const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

Tensor filled(int64_t n, float first, float step) {
  Tensor t = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = first + step * static_cast<float>(i);
  return t;
}

// Runs body(group, rank) on `world` ranks, one thread each, over one store.
template <typename F>
void on_ranks(int world, const std::string& prefix, F body) {
  TCPStore master("127.0.0.1", 0, true, Millis(10000), "pg", "");
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto store =
            std::make_shared<TCPStore>("127.0.0.1", master.port(), false, Millis(10000), "pg");
        dist::ProcessGroupOptions o;
        o.timeout = Millis(20000);
        o.prefix = prefix;
        ProcessGroup g(store, r, world, o);
        body(g, r);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[static_cast<size_t>(r)], "") << "rank " << r;
}

// Something a task captures, telling on which thread it was destroyed (a stand-in for a
// tensor whose memory belongs to a numpy array, which only a thread that may take the GIL
// can release).
struct Sentinel {
  std::atomic<bool> released{false};
  std::atomic<std::thread::id> released_on{};
  std::shared_ptr<int> make() {
    return std::shared_ptr<int>(new int(0), [this](int* p) {
      released_on = std::this_thread::get_id();
      released = true;
      delete p;
    });
  }
};

}  // namespace

TEST(ProcessGroupCollectives, RingReduceScatter) {
  for (int world : {1, 2, 3}) {
    on_ranks(world, "rs" + std::to_string(world), [world](ProcessGroup& g, int rank) {
      for (int64_t n : {1, 1001}) {
        std::vector<Tensor> inputs;
        for (int i = 0; i < world; ++i) inputs.push_back(filled(n, 100.0f * rank + i, 1.0f));
        Tensor out = Tensor::empty({n});
        g.reduce_scatter(out, inputs, ReduceOp::Sum)->wait();
        for (int64_t k = 0; k < n; ++k) {
          float want = 0;
          for (int r = 0; r < world; ++r) want += 100.0f * r + rank + static_cast<float>(k);
          ASSERT_EQ(out.data<float>()[k], want) << "world " << world << " rank " << rank;
        }
        g.reduce_scatter(out, inputs, ReduceOp::Max)->wait();
        ASSERT_EQ(out.data<float>()[0], 100.0f * (world - 1) + rank);
      }
    });
  }
}

TEST(ProcessGroupCollectives, EveryAllreduceAlgorithmSumsAlike) {
  on_ranks(3, "algorithms", [](ProcessGroup& g, int rank) {
    for (auto a : {AllreduceAlgorithm::Auto, AllreduceAlgorithm::Ring, AllreduceAlgorithm::Bcube}) {
      for (int64_t n : {1, 4099}) {
        Tensor t = filled(n, static_cast<float>(rank), 1.0f);
        g.all_reduce(t, ReduceOp::Sum, Millis(-1), a)->wait();
        for (int64_t k = 0; k < n; k += 97)
          ASSERT_EQ(t.data<float>()[k], 3.0f + 3.0f * static_cast<float>(k))
              << dist::algorithm_name(a);
      }
    }
  });
}

TEST(ProcessGroupCollectives, AutomaticChoice) {
  EXPECT_EQ(dist::choose_allreduce_algorithm(4, 2), AllreduceAlgorithm::Ring);
  EXPECT_EQ(dist::choose_allreduce_algorithm(4, 3), AllreduceAlgorithm::Bcube);
  EXPECT_EQ(dist::choose_allreduce_algorithm(size_t{64} << 20, 4), AllreduceAlgorithm::Ring);
}

// The communication thread lets go of what a task captured (the caller's tensors) before it
// wakes the caller: a Python-owned buffer must never be released there once the caller moved
// on, since CPython kills a thread that asks for the GIL during interpreter shutdown.
TEST(WorkQueue, TaskCapturesAreReleasedBeforeWaitReturns) {
  dist::WorkQueue queue("test");
  for (int i = 0; i < 20; ++i) {
    std::atomic<bool> released{false};
    struct SlowToRelease {
      explicit SlowToRelease(std::atomic<bool>* f) : flag(f) {}
      std::atomic<bool>* flag;
      ~SlowToRelease() {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        flag->store(true);
      }
    };
    auto captured = std::make_shared<SlowToRelease>(&released);
    auto work = queue.push([captured] { (void)captured; });
    captured.reset();  // the task now holds the only reference
    work->wait(Millis(5000));
    EXPECT_TRUE(released.load()) << "round " << i;
  }
}

// After an abort, the aborting thread (the watchdog's) destroys nothing either, and a task
// still running when its queue is abandoned is never destroyed: its thread may be leaving Gloo
// while the interpreter finalizes.
TEST(WorkQueue, AbortAndAbandonLeaveTasksToTheCaller) {
  // Kept reachable for good, as ProcessGroup::shutdown keeps an abandoned queue, and so is
  // what the abandoned task points at.
  auto* q = new dist::WorkQueue("abandoned");
  auto* running = new Sentinel;
  static std::vector<std::pair<dist::WorkQueue*, Sentinel*>> kept;
  kept.emplace_back(q, running);
  Sentinel queued;
  std::promise<void> started, go;
  std::shared_future<void> gate = go.get_future().share();
  auto r = running->make(), d = queued.make();
  auto stuck = q->push([r, gate, &started] {
    started.set_value();
    gate.wait();
  });
  auto dropped = q->push([d] {});
  r.reset();
  d.reset();
  started.get_future().wait();
  std::thread aborter([&] { q->abort(std::make_exception_ptr(Error("aborted by the test"))); });
  aborter.join();
  EXPECT_THROW(stuck->wait(Millis(10000)), Error);
  EXPECT_THROW(dropped->wait(Millis(10000)), Error);
  EXPECT_FALSE(queued.released) << "the aborting thread released a dropped task";
  q->abandon();
  q->release_finished();
  EXPECT_TRUE(queued.released);
  EXPECT_EQ(queued.released_on.load(), std::this_thread::get_id());
  go.set_value();  // the stuck task returns, long after its Work failed
  std::this_thread::sleep_for(Millis(300));
  EXPECT_FALSE(running->released) << "an abandoned thread released its task";
}

// The rendezvous ends by one deadline (connect_timeout) however many store calls and connects
// it makes, and its error names the caller's timeout.
TEST(ProcessGroupRendezvous, EndsByTheConnectDeadlineNamingTheTimeout) {
  auto store = std::make_shared<TCPStore>("127.0.0.1", 0, true, Millis(30000), "pg", "");
  dist::ProcessGroupOptions o;
  o.timeout = Millis(4000);
  o.connect_timeout = Millis(700);
  o.prefix = "alone";
  auto t0 = std::chrono::steady_clock::now();
  try {
    ProcessGroup g(store, 0, 2, o);  // rank 1 never comes
    FAIL() << "expected a timeout";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 did not join within the timeout of 4000 ms"),
              std::string::npos)
        << e.what();
  }
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, Millis(600));
  EXPECT_LT(took, Millis(2500));
  // The store's own timeout is untouched by the rendezvous.
  EXPECT_EQ(store->timeout(), Millis(30000));
}

// A peer whose connections close fails the collective with an error naming it by rank and
// host, read from Gloo's message ("Connection closed by peer [ip]:port") -- with the layout of
// the rendezvous record of whichever Gloo this build links (the bundled one's differs).
TEST(ProcessGroupFailures, AClosedPeerIsNamedByRank) {
  std::promise<void> connected, closed;
  std::shared_future<void> both_connected = connected.get_future().share();
  std::atomic<int> ready{0};
  std::string error;
  on_ranks(2, "closed_peer", [&](ProcessGroup& g, int rank) {
    if (++ready == 2) connected.set_value();
    both_connected.wait();
    if (rank == 1) {
      g.abort("rank 1 leaves");  // closes its Gloo connections: rank 0's pair sees EOF
      closed.set_value();
      return;
    }
    closed.get_future().wait();
    try {
      g.all_reduce(filled(1000, 1.f, 0.f), ReduceOp::Sum, Millis(5000))->wait();
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  EXPECT_NE(error.find("all_reduce on rank 0 of 2"), std::string::npos) << error;
  EXPECT_NE(error.find("the failing peer is rank 1 (host 127.0.0.1)"), std::string::npos) << error;
}
