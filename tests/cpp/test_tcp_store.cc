// TCPStore: set/get/wait, timeouts that name what is missing, job id and token checks, a
// client sending garbage, and a port already in use.
#include "dist/tcp_store.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "core/error.h"

using namespace phalanx;
using dist::Millis;
using dist::TCPStore;

namespace {

std::vector<char> bytes(const std::string& s) {
  return {s.begin(), s.end()};
}
std::string str(const std::vector<char>& v) {
  return {v.begin(), v.end()};
}

std::unique_ptr<TCPStore> master(Millis timeout = Millis(5000), const std::string& job = "t",
                                 const std::string& token = "") {
  return std::make_unique<TCPStore>("127.0.0.1", 0, true, timeout, job, token);
}

int raw_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

}  // namespace

TEST(TCPStore, SetGetAcrossClients) {
  auto m = master();
  TCPStore c("127.0.0.1", m->port(), false, Millis(5000), "t");
  m->set("a", bytes("hello"));
  EXPECT_EQ(str(c.get("a")), "hello");
  c.set("b", bytes(std::string(100000, 'x')));
  EXPECT_EQ(m->get("b").size(), 100000u);
  c.set("empty", {});
  EXPECT_TRUE(m->get("empty").empty());
  EXPECT_TRUE(m->check({"a", "b"}));
  EXPECT_FALSE(m->check({"a", "nope"}));
}

TEST(TCPStore, GetBlocksUntilSet) {
  auto m = master();
  TCPStore c("127.0.0.1", m->port(), false, Millis(5000), "t");
  std::thread setter([&] {
    std::this_thread::sleep_for(Millis(200));
    m->set("late", bytes("v"));
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(str(c.get("late")), "v");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, Millis(150));
  setter.join();
  c.wait({"late"}, Millis(100));
}

TEST(TCPStore, GetAndWaitTimeoutsNameTheKeys) {
  auto m = master(Millis(300));
  auto t0 = std::chrono::steady_clock::now();
  try {
    m->get("missing_key");
    FAIL() << "expected a timeout";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("missing_key"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, Millis(3000));
  m->set("here", bytes("1"));
  try {
    m->wait({"here", "absent1", "absent2"}, Millis(200));
    FAIL() << "expected a timeout";
  } catch (const TimeoutError& e) {
    std::string all = e.what();
    std::string w = all.substr(all.find("waiting for"));  // the missing keys only
    EXPECT_NE(w.find("absent1"), std::string::npos) << w;
    EXPECT_NE(w.find("absent2"), std::string::npos) << w;
    EXPECT_EQ(w.find("'here'"), std::string::npos) << w;
  }
  EXPECT_EQ(str(m->get("here")), "1");  // the connection is still usable
}

TEST(TCPStore, AddIsAnAtomicCounter) {
  auto m = master();
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i)
    ts.emplace_back([&] {
      TCPStore c("127.0.0.1", m->port(), false, Millis(5000), "t");
      for (int k = 0; k < 50; ++k) c.add("n", 1);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(m->add("n", 0), 400);
  EXPECT_EQ(m->add("n", -10), 390);
  m->set("s", bytes("abc"));
  EXPECT_THROW(m->add("s", 1), Error);
}

TEST(TCPStore, JobIdAndTokenMismatchAreRejected) {
  auto m = master(Millis(5000), "job-a", "secret");
  try {
    TCPStore c("127.0.0.1", m->port(), false, Millis(2000), "job-b", "secret");
    FAIL() << "expected a rejection";
  } catch (const Error& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("job-b"), std::string::npos) << w;
    EXPECT_NE(w.find("job-a"), std::string::npos) << w;
  }
  try {
    TCPStore c("127.0.0.1", m->port(), false, Millis(2000), "job-a", "wrong");
    FAIL() << "expected a rejection";
  } catch (const Error& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("token"), std::string::npos) << w;
    EXPECT_EQ(w.find("secret"), std::string::npos) << w;  // never echoes the token
  }
  TCPStore ok("127.0.0.1", m->port(), false, Millis(2000), "job-a", "secret");
  ok.set("k", bytes("v"));
  EXPECT_EQ(str(m->get("k")), "v");
}

TEST(TCPStore, ServerSurvivesGarbageClients) {
  auto m = master();
  std::mt19937 rng(42);
  for (int round = 0; round < 20; ++round) {
    int fd = raw_connect(m->port());
    std::vector<char> junk(1 + rng() % 4096);
    for (auto& c : junk) c = static_cast<char>(rng());
    if (round == 0) junk = {'\xff', '\xff', '\xff', '\x7f'};               // a 2 GiB frame length
    if (round == 1) junk = {8, 0, 0, 0, 'P', 'H', 'X', '1', 99, 0, 0, 0};  // bad opcode
    ssize_t sent = ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    EXPECT_GT(sent, 0);
    if (round % 2)
      ::close(fd);  // some vanish at once, some linger half-sent
    else
      ::shutdown(fd, SHUT_WR), ::close(fd);
  }
  // Half a frame, left open: it must not block anyone else.
  int lingering = raw_connect(m->port());
  char partial[] = {100, 0, 0, 0, 'P'};
  ::send(lingering, partial, sizeof(partial), MSG_NOSIGNAL);

  TCPStore c("127.0.0.1", m->port(), false, Millis(5000), "t");
  c.set("after", bytes("garbage"));
  EXPECT_EQ(str(m->get("after")), "garbage");
  for (int i = 0; i < 100 && m->server()->dropped_clients() < 2; ++i)
    std::this_thread::sleep_for(Millis(10));
  EXPECT_GE(m->server()->dropped_clients(), 2);
  ::close(lingering);
}

TEST(TCPStore, PortInUseNamesThePort) {
  auto m = master();
  try {
    TCPStore second("127.0.0.1", m->port(), true, Millis(1000), "t");
    FAIL() << "expected port in use";
  } catch (const IOError& e) {
    EXPECT_EQ(e.errno_value, EADDRINUSE);
    EXPECT_NE(std::string(e.what()).find(std::to_string(m->port())), std::string::npos) << e.what();
  }
}

TEST(TCPStore, UnreachableMasterTimesOutNamingHostAndPort) {
  int port;
  {
    auto m = master();
    port = m->port();
  }  // now nothing listens there
  auto t0 = std::chrono::steady_clock::now();
  try {
    TCPStore c("127.0.0.1", port, false, Millis(700), "t");
    FAIL() << "expected a timeout";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos)
        << e.what();
  }
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, Millis(600));
  EXPECT_LT(took, Millis(3000));
}

TEST(TCPStore, ServerShutdownUnblocksWaitingClient) {
  auto m = master(Millis(20000));
  TCPStore c("127.0.0.1", m->port(), false, Millis(20000), "t");
  std::thread killer([&] {
    std::this_thread::sleep_for(Millis(200));
    m.reset();
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(c.get("never"), Error);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, Millis(5000));
  killer.join();
}

TEST(TCPStore, SetRefusesAValueOverTheDocumentedMaximum) {
  auto m = master();
  try {
    m->set("big", std::vector<char>(TCPStore::kMaxValueBytes + 1));
    FAIL() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("longer than the store's maximum of 16777216 bytes"),
              std::string::npos)
        << e.what();
  }
  m->set("largest", std::vector<char>(TCPStore::kMaxValueBytes, 'x'));
  EXPECT_EQ(m->get("largest").size(), TCPStore::kMaxValueBytes);
}

// A pending get is a waiter, not a blocked thread: many of them never hold up other clients.
TEST(TCPStore, ManyPendingGetsDoNotBlockOtherClients) {
  auto m = master(Millis(10000));
  std::vector<std::unique_ptr<TCPStore>> waiting;
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i)
    waiting.push_back(
        std::make_unique<TCPStore>("127.0.0.1", m->port(), false, Millis(10000), "t"));
  for (int i = 0; i < 32; ++i)
    threads.emplace_back([&, i] { EXPECT_EQ(str(waiting[i]->get("go")), "now"); });
  std::this_thread::sleep_for(Millis(100));
  auto t0 = std::chrono::steady_clock::now();
  TCPStore c("127.0.0.1", m->port(), false, Millis(5000), "t");
  c.set("other", bytes("v"));
  EXPECT_EQ(str(c.get("other")), "v");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, Millis(2000));
  c.set("go", bytes("now"));
  for (auto& t : threads) t.join();
}

// A client that resets its connection while its get waits is closed at once (its hangup is
// not left for poll to report again and again until the get's timeout).
TEST(TCPStore, AClientGoneWhileItsGetWaitsIsClosedAtOnce) {
  auto m = master();
  auto* server = m->server();
  int64_t before = server->open_connections();
  int fd = raw_connect(m->port());
  std::string body = "PHX1";
  body += '\x03';  // get
  auto str32 = [&](const std::string& s) {
    for (int i = 0; i < 4; ++i) body += static_cast<char>((s.size() >> (8 * i)) & 0xff);
    body += s;
  };
  str32("t");
  str32("");
  str32("never-set");
  for (int i = 0; i < 8; ++i) body += static_cast<char>(i == 1 ? 0x75 : 0);  // 30000 ms
  std::string frame;
  for (int i = 0; i < 4; ++i) frame += static_cast<char>((body.size() >> (8 * i)) & 0xff);
  frame += body;
  ASSERT_EQ(::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(frame.size()));
  for (int i = 0; i < 100 && server->open_connections() == before; ++i)
    std::this_thread::sleep_for(Millis(10));
  ASSERT_EQ(server->open_connections(), before + 1);
  std::this_thread::sleep_for(Millis(100));  // the get is a waiter now
  linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  ::close(fd);
  for (int i = 0; i < 200 && server->open_connections() > before; ++i)
    std::this_thread::sleep_for(Millis(10));
  EXPECT_EQ(server->open_connections(), before);
  m->set("still", bytes("serving"));
  EXPECT_EQ(str(m->get("still")), "serving");
}
