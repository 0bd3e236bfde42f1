// Failure detection: the store's liveness bookkeeping (heartbeat, goodbye, silence, a closed
// connection, malformed heartbeats), ProcessGroup::abort, and the Watchdog that ties them
// together. Everything runs in this process, with ranks as threads.
#include "dist/watchdog.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/error.h"
#include "dist/process_group.h"
#include "dist/tcp_store.h"

using namespace phalanx;
using dist::HeartbeatReply;
using dist::Millis;
using dist::ProcessGroup;
using dist::TCPStore;
using dist::Watchdog;
using Clock = std::chrono::steady_clock;

namespace {

std::unique_ptr<TCPStore> master(const std::string& job = "w") {
  return std::make_unique<TCPStore>("127.0.0.1", 0, true, Millis(10000), job, "");
}

std::unique_ptr<TCPStore> client(const TCPStore& m, const std::string& job = "w") {
  return std::make_unique<TCPStore>("127.0.0.1", m.port(), false, Millis(10000), job, "");
}

// Sends raw bytes as one frame and reports whether the server kept the connection open.
bool server_keeps_connection_after(int port, const std::vector<char>& body) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  std::vector<char> frame(4);
  uint32_t n = static_cast<uint32_t>(body.size());
  for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  frame.insert(frame.end(), body.begin(), body.end());
  EXPECT_EQ(::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(frame.size()));
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char c;
  ssize_t got = ::recv(fd, &c, 1, 0);  // 0: closed by the server; -1: still open (timed out)
  ::close(fd);
  return got != 0;
}

void put_u32(std::vector<char>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_str(std::vector<char>& b, const std::string& s) {
  put_u32(b, static_cast<uint32_t>(s.size()));
  b.insert(b.end(), s.begin(), s.end());
}

// Two groups of world size 2 over one store, built concurrently (rendezvous needs both).
std::pair<std::shared_ptr<ProcessGroup>, std::shared_ptr<ProcessGroup>> pair_of_groups(
    const TCPStore& m, const std::string& prefix, Millis timeout = Millis(20000)) {
  std::shared_ptr<TCPStore> c0 = client(m), c1 = client(m);
  dist::ProcessGroupOptions o;
  o.timeout = timeout;
  o.prefix = prefix;
  std::shared_ptr<ProcessGroup> g1;
  std::thread t([&] { g1 = std::make_shared<ProcessGroup>(c1, 1, 2, o); });
  auto g0 = std::make_shared<ProcessGroup>(c0, 0, 2, o);
  t.join();
  return {g0, g1};
}

Tensor ones(int64_t n) {
  Tensor t = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = 1.0f;
  return t;
}

dist::WatchdogOptions watchdog_options(int rank, Millis interval, Millis timeout) {
  dist::WatchdogOptions o;
  o.interval = interval;
  o.timeout = timeout;
  o.group = "job/liveness";
  o.rank = rank;
  o.host = "10.0.0." + std::to_string(rank + 1);
  o.store_owner = "rank 0";
  return o;
}

// Polls until pred() or the limit passes; returns pred().
template <typename P>
bool eventually(P pred, Millis limit = Millis(10000)) {
  auto end = Clock::now() + limit;
  while (!pred() && Clock::now() < end) std::this_thread::sleep_for(Millis(20));
  return pred();
}

}  // namespace

TEST(Liveness, AliveRanksAreNotLost) {
  auto m = master();
  auto a = client(*m), b = client(*m);
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(a->heartbeat("g", 0, "h0", Millis(2000)).lost);
    EXPECT_FALSE(b->heartbeat("g", 1, "h1", Millis(2000)).lost);
  }
}

TEST(Liveness, ClosedConnectionWithoutGoodbyeIsReportedAtOnce) {
  auto m = master();
  auto a = client(*m);
  a->heartbeat("g", 0, "10.0.0.1", Millis(10000));
  {
    auto b = client(*m);
    b->heartbeat("g", 3, "10.0.0.4", Millis(10000));
  }  // b's process "died": its connection closed
  ASSERT_TRUE(eventually([&] { return a->heartbeat("g", 0, "10.0.0.1", Millis(10000)).lost; }));
  HeartbeatReply r = a->heartbeat("g", 0, "10.0.0.1", Millis(10000));
  EXPECT_EQ(r.rank, 3);
  EXPECT_EQ(r.host, "10.0.0.4");
  EXPECT_EQ(r.reason, "connection closed without goodbye");
  // Another liveness group of the same store is unaffected.
  EXPECT_FALSE(a->heartbeat("other", 0, "10.0.0.1", Millis(10000)).lost);
}

TEST(Liveness, GoodbyeIsACleanDeparture) {
  auto m = master();
  auto a = client(*m);
  a->heartbeat("g", 0, "h0", Millis(300));
  {
    auto b = client(*m);
    b->heartbeat("g", 1, "h1", Millis(300));
    b->goodbye("g", 1, Millis(2000));
  }
  std::this_thread::sleep_for(Millis(500));  // longer than the timeout, too
  EXPECT_FALSE(a->heartbeat("g", 0, "h0", Millis(300)).lost);
}

TEST(Liveness, SilenceLongerThanTheTimeoutIsReported) {
  auto m = master();
  auto a = client(*m), b = client(*m);
  b->heartbeat("g", 1, "h1", Millis(300));  // then silent, connection open (frozen)
  auto t0 = Clock::now();
  HeartbeatReply r;
  while (!(r = a->heartbeat("g", 0, "h0", Millis(300))).lost && Clock::now() - t0 < Millis(5000))
    std::this_thread::sleep_for(Millis(50));
  ASSERT_TRUE(r.lost);
  EXPECT_GE(Clock::now() - t0, Millis(250));
  EXPECT_EQ(r.rank, 1);
  EXPECT_EQ(r.host, "h1");
  EXPECT_EQ(r.reason.rfind("no heartbeat for 0.", 0), 0u) << r.reason;
  // The first loss sticks, even once the frozen rank speaks again.
  b->heartbeat("g", 1, "h1", Millis(300));
  EXPECT_EQ(a->heartbeat("g", 0, "h0", Millis(300)).rank, 1);
}

TEST(Liveness, MalformedHeartbeatsDropTheClientAndTheServerGoesOn) {
  auto m = master();
  auto frame = [](uint8_t op, auto fields) {
    std::vector<char> b;
    put_u32(b, 0x31584850);  // magic
    b.push_back(static_cast<char>(op));
    put_str(b, "w");  // job id
    put_str(b, "");   // token
    fields(b);
    return b;
  };
  // A rank beyond any world, a truncated rank, a host string longer than the frame, a huge
  // host, trailing bytes after a goodbye.
  EXPECT_FALSE(server_keeps_connection_after(m->port(), frame(7, [](auto& b) {
                                               put_str(b, "g");
                                               put_u32(b, 0xffffffffu);
                                               put_str(b, "h");
                                               for (int i = 0; i < 8; ++i) b.push_back(0);
                                             })));
  EXPECT_FALSE(server_keeps_connection_after(m->port(), frame(7, [](auto& b) {
                                               put_str(b, "g");
                                               b.push_back(1);
                                             })));
  EXPECT_FALSE(server_keeps_connection_after(m->port(), frame(7, [](auto& b) {
                                               put_str(b, "g");
                                               put_u32(b, 0);
                                               put_u32(b, 1000000);
                                             })));
  EXPECT_FALSE(server_keeps_connection_after(m->port(), frame(7, [](auto& b) {
                                               put_str(b, "g");
                                               put_u32(b, 0);
                                               put_str(b, std::string(5000, 'h'));
                                               for (int i = 0; i < 8; ++i) b.push_back(0);
                                             })));
  EXPECT_FALSE(server_keeps_connection_after(m->port(), frame(8, [](auto& b) {
                                               put_str(b, "g");
                                               put_u32(b, 0);
                                               b.push_back(0);
                                             })));
  EXPECT_GE(m->server()->dropped_clients(), 5);
  // A well-formed heartbeat on a raw connection is answered and keeps the connection.
  EXPECT_TRUE(server_keeps_connection_after(m->port(), frame(7, [](auto& b) {
                                              put_str(b, "g");
                                              put_u32(b, 0);
                                              put_str(b, "h");
                                              put_u32(b, 1000);
                                              put_u32(b, 0);
                                            })));
  auto c = client(*m);
  EXPECT_THROW(c->heartbeat("g", -1, "h", Millis(1000)), ValueError);
  c->set("still", {'o', 'k'});
  EXPECT_EQ(m->get("still").size(), 2u);
}

TEST(Work, FirstFinishWins) {
  dist::Work w;
  w.finish(std::make_exception_ptr(Error("first")));
  w.finish(nullptr);
  EXPECT_TRUE(w.is_completed());
  try {
    w.wait();
    FAIL() << "expected the first error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "first");
  }
}

TEST(ProcessGroupAbort, FailsPendingAndLaterOperationsAtOnce) {
  auto m = master();
  auto [g0, g1] = pair_of_groups(*m, "abort");
  Tensor t = ones(16);
  auto pending = g0->all_reduce(t, dist::ReduceOp::Sum);  // rank 1 never joins
  auto queued = g0->barrier();
  std::this_thread::sleep_for(Millis(100));
  EXPECT_FALSE(pending->is_completed());
  auto t0 = Clock::now();
  g0->abort("rank 1 (host 10.0.0.2) lost: testing");
  for (auto& w : {pending, queued}) {
    try {
      w->wait(Millis(2000));
      FAIL() << "expected the abort";
    } catch (const TimeoutError&) {
      FAIL() << "the abort did not finish the work";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("aborted: rank 1 (host 10.0.0.2) lost: testing"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(g0->all_reduce(t, dist::ReduceOp::Sum), Error);
  EXPECT_TRUE(g0->aborted());
  g0->abort("ignored");
  EXPECT_EQ(g0->abort_reason(), "rank 1 (host 10.0.0.2) lost: testing");
  g0->shutdown();  // does not wait for the thread inside Gloo (20 s timeout)
  g0.reset();      // nor does the destructor; what that thread uses stays alive
  EXPECT_LT(Clock::now() - t0, Millis(3000));
  // The peer's connections were closed: its next collective fails fast instead of hanging.
  auto w1 = g1->all_reduce(t, dist::ReduceOp::Sum);
  EXPECT_THROW(w1->wait(Millis(10000)), Error);
  g1->abort("done");
}

TEST(WatchdogTest, AbortsGroupsWhenAPeerDiesWithoutGoodbye) {
  auto m = master();
  auto [g0, g1] = pair_of_groups(*m, "wd");
  Watchdog w0("127.0.0.1", m->port(), "w", "", watchdog_options(0, Millis(100), Millis(2000)));
  w0.watch(g0);
  auto w1 = std::make_unique<Watchdog>("127.0.0.1", m->port(), "w", "",
                                       watchdog_options(1, Millis(100), Millis(2000)));
  w1->watch(g1);
  Tensor t = ones(8);
  g0->all_reduce(t, dist::ReduceOp::Sum);
  g1->all_reduce(t, dist::ReduceOp::Sum)->wait();
  auto pending = g0->all_reduce(t, dist::ReduceOp::Sum);  // rank 1 "dies" instead
  auto t0 = Clock::now();
  w1.reset();  // its connection closes without a goodbye
  EXPECT_THROW(pending->wait(Millis(5000)), Error);
  EXPECT_LT(Clock::now() - t0, Millis(2000));  // well before the heartbeat timeout
  EXPECT_EQ(w0.failure(), "rank 1 (host 10.0.0.2) lost: connection closed without goodbye");
  EXPECT_EQ(g0->abort_reason(), w0.failure());
  // A group watched after the failure is aborted at once.
  auto late = pair_of_groups(*m, "late");
  w0.watch(late.first);
  EXPECT_TRUE(late.first->aborted());
  late.second->abort("done");
  g1->abort("done");
}

TEST(WatchdogTest, GoodbyeIsNotAFailureForTheOthers) {
  auto m = master();
  Watchdog w0("127.0.0.1", m->port(), "w", "", watchdog_options(0, Millis(50), Millis(400)));
  {
    Watchdog w1("127.0.0.1", m->port(), "w", "", watchdog_options(1, Millis(50), Millis(400)));
    w1.goodbye();
  }
  std::this_thread::sleep_for(Millis(800));
  EXPECT_EQ(w0.failure(), "");
}

TEST(WatchdogTest, NamesAFrozenPeer) {
  auto m = master();
  Watchdog w0("127.0.0.1", m->port(), "w", "", watchdog_options(0, Millis(50), Millis(400)));
  // A "frozen" rank 2: heartbeats once, keeps its connection, never speaks again.
  auto frozen = client(*m);
  frozen->heartbeat("job/liveness", 2, "10.0.0.3", Millis(400));
  ASSERT_TRUE(eventually([&] { return !w0.failure().empty(); }, Millis(5000)));
  EXPECT_EQ(w0.failure().rfind("rank 2 (host 10.0.0.3) lost: no heartbeat for ", 0), 0u)
      << w0.failure();
}

TEST(WatchdogTest, NamesTheStoreWhenItsHostIsGone) {
  auto m = master();
  int port = m->port();
  Watchdog w("127.0.0.1", port, "w", "", watchdog_options(1, Millis(50), Millis(1000)));
  auto t0 = Clock::now();
  m.reset();  // the store's host is gone
  ASSERT_TRUE(eventually([&] { return !w.failure().empty(); }, Millis(5000)));
  EXPECT_LT(Clock::now() - t0, Millis(2000));
  EXPECT_EQ(
      w.failure().rfind(
          "the store at 127.0.0.1:" + std::to_string(port) + " (hosted by rank 0) is gone", 0),
      0u)
      << w.failure();
  w.goodbye();  // nobody to say it to: returns at once
}

TEST(WatchdogTest, RejectsATimeoutNotLongerThanTheInterval) {
  auto m = master();
  EXPECT_THROW(
      Watchdog("127.0.0.1", m->port(), "w", "", watchdog_options(0, Millis(1000), Millis(1000))),
      ValueError);
}

TEST(WatchdogTest, HeartbeatSettingsAreCheckedInOnePlace) {
  EXPECT_TRUE(dist::check_heartbeat_settings(Millis(1000), Millis(10000)));
  EXPECT_FALSE(dist::check_heartbeat_settings(Millis(0), Millis(10000)));  // disabled
  EXPECT_FALSE(dist::check_heartbeat_settings(Millis(1000), Millis(0)));   // disabled
  auto message = [](Millis interval, Millis timeout) {
    try {
      dist::check_heartbeat_settings(interval, timeout);
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(Millis(-500), Millis(1000)).find("heartbeat_interval must be >= 0, got -0.5 s"),
            std::string::npos);
  EXPECT_NE(message(Millis(100), Millis(-1000)).find("heartbeat_timeout must be >= 0, got -1 s"),
            std::string::npos);
  EXPECT_NE(message(Millis(2000), Millis(1000))
                .find("heartbeat_timeout (1 s) must be longer than heartbeat_interval (2 s)"),
            std::string::npos);
  // The watchdog refuses disabled settings: the caller starts none then.
  auto m = master();
  EXPECT_THROW(Watchdog("127.0.0.1", m->port(), "w", "", watchdog_options(0, Millis(0), Millis(0))),
               ValueError);
}
