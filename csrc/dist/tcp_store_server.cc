// The store server's socket handling: one poll() loop, the limits of dist/tcp_store_server.h.
#include "dist/tcp_store_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "dist/tcp_store_connection.h"
#include "dist/tcp_store_wire.h"

namespace phalanx::dist {

using namespace wire;

namespace {

int64_t env_int(const char* name, int64_t fallback, int64_t min) {
  const char* raw = std::getenv(name);
  if (!raw || !*raw) return fallback;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(raw, &end, 10);
  PHX_CHECK(errno == 0 && *end == '\0' && v >= min, ValueError, "environment variable ", name, "='",
            raw, "' must be an integer >= ", min);
  return v;
}

// New connections taken per turn of the loop: a newcomer evicts the oldest unauthenticated
// client when the store is full, so a flood must not evict a client whose first request is
// already waiting to be read.
constexpr int kAcceptBatch = 64;

uint32_t le32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

TCPStoreServer::Limits TCPStoreServer::Limits::from_environment() {
  Limits l;
  l.max_connections = static_cast<size_t>(
      env_int("PHALANX_STORE_MAX_CONNECTIONS", static_cast<int64_t>(l.max_connections), 1));
  l.handshake_timeout =
      Millis(env_int("PHALANX_STORE_HANDSHAKE_TIMEOUT_MS", l.handshake_timeout.count(), 1));
  l.stall_timeout = Millis(env_int("PHALANX_STORE_STALL_TIMEOUT_MS", l.stall_timeout.count(), 1));
  return l;
}

TCPStoreServer::TCPStoreServer(int port, std::string job_id, std::string token, Limits limits)
    : job_id_(std::move(job_id)), token_(std::move(token)), limits_(limits) {
  PHX_CHECK(job_id_.size() <= kMaxIdLength && token_.size() <= kMaxIdLength, ValueError,
            "TCPStore: the job id and the token may have at most ", kMaxIdLength, " bytes");
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw IOError(errno, detail::cat("TCPStore: socket(): ", strerror(errno)));
  int one = 1;
  // SO_REUSEADDR lets a restarted job rebind past TIME_WAIT; it does not allow two listeners.
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    ::close(listen_fd_);
    if (e == EADDRINUSE)
      throw IOError(e, detail::cat("TCPStore: port ", port,
                                   " is already in use (another job or store is listening on it; "
                                   "choose another MASTER_PORT)"));
    throw IOError(e, detail::cat("TCPStore: cannot bind port ", port, ": ", strerror(e)));
  }
  if (::listen(listen_fd_, 1024) != 0 || ::pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    int e = errno;
    ::close(listen_fd_);
    throw IOError(e, detail::cat("TCPStore: listen() on port ", port, ": ", strerror(e)));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { loop(); });
}

TCPStoreServer::~TCPStoreServer() {
  stopping_ = true;
  char byte = 1;
  while (::write(wake_fds_[1], &byte, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_fds_[0]);
  ::close(wake_fds_[1]);
}

void TCPStoreServer::loop() {
  // Named so its CPU time can be told apart from its host's (top -H, /proc/<pid>/task/*/comm):
  // `make bench-scale` reads it to report what the store costs at 138 ranks.
  pthread_setname_np(pthread_self(), "phx-store");
  std::vector<pollfd> fds;
  std::vector<int> to_drop, closed;
  while (!stopping_) {
    try {
      auto now = Clock::now();
      // Poll until the nearest deadline: a handshake, a stalled transfer, a waiter's timeout.
      auto next = now + Millis(1000);
      fds.clear();
      fds.push_back({wake_fds_[0], POLLIN, 0});
      fds.push_back({listen_fd_, static_cast<short>(now >= accept_paused_until_ ? POLLIN : 0), 0});
      for (auto& [fd, c] : connections_) {
        short events = 0;
        if (!c->waiter && !c->close_after_reply) events |= POLLIN;  // one request at a time
        if (c->out_sent < c->out.size()) events |= POLLOUT;
        fds.push_back({fd, events, 0});
        next = std::min(next, c->deadline(limits_));
      }
      if (now < accept_paused_until_) next = std::min(next, accept_paused_until_);
      auto wait = std::chrono::duration_cast<Millis>(next - now).count();
      int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(wait, 0) + 1));
      if (n < 0 && errno != EINTR) throw std::runtime_error(strerror(errno));
      if (stopping_) break;
      to_drop.clear();
      closed.clear();
      for (size_t i = 2; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        auto it = connections_.find(fds[i].fd);
        if (it == connections_.end()) continue;  // replaced by accept_clients above
        Connection& c = *it->second;
        try {
          bool keep = true;
          if (fds[i].revents & POLLOUT) keep = on_writable(c);
          const bool hung_up = fds[i].revents & (POLLHUP | POLLERR);
          if (keep && hung_up && (c.waiter || c.close_after_reply)) {
            // Gone while it waits (not polled for input then): poll would report the hangup
            // again at once, spinning the loop until the waiter's timeout.
            closed.push_back(c.fd);
            keep = false;
          } else if (keep && ((fds[i].revents & POLLIN) || hung_up)) {
            Outcome o = on_readable(c);
            if (o == Outcome::kClosed) closed.push_back(c.fd);
            keep = o == Outcome::kKeep;
          }
          if (keep && c.out_sent < c.out.size()) keep = on_writable(c);
          if (!keep && (closed.empty() || closed.back() != c.fd)) to_drop.push_back(c.fd);
        } catch (const std::exception& e) {
          // A failed allocation, say: this client goes, the store stays.
          std::fprintf(stderr, "phalanx TCPStore: dropping a client on port %d: %s\n", port_,
                       e.what());
          to_drop.push_back(c.fd);
        }
      }
      // Accepted after the clients were read: a client that has sent its first request is
      // authenticated before a flood of newcomers can evict it (accept_clients takes a batch).
      if (n > 0 && (fds[1].revents & POLLIN)) accept_clients();
      now = Clock::now();
      answer_waiters(now);
      for (auto& [fd, c] : connections_) {
        // A reply is sent now where the socket takes it, without waiting for another poll.
        if (c->out_sent < c->out.size() && !c->close_after_reply && !on_writable(*c))
          to_drop.push_back(fd);
        else if (!c->waiter && c->deadline(limits_) <= now)
          to_drop.push_back(fd);  // late: a handshake, a transfer that stalled
      }
      for (int fd : closed) close_connection(fd, /*dropped=*/false);
      for (int fd : to_drop) close_connection(fd, /*dropped=*/true);
    } catch (const std::exception& e) {
      // Out of memory for the poll set, say: keep serving once it passes.
      std::fprintf(stderr, "phalanx TCPStore: server loop on port %d: %s\n", port_, e.what());
      std::this_thread::sleep_for(Millis(10));
    }
  }
  for (auto& [fd, c] : connections_) ::close(fd);
  connections_.clear();
  open_ = 0;
}

void TCPStoreServer::accept_clients() {
  for (int batch = 0; batch < kAcceptBatch; ++batch) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of descriptors or memory: make room by evicting an unauthenticated client, else
      // stop accepting a moment (the listen socket would wake poll at once, spinning).
      if (!evict_unauthenticated()) {
        accept_paused_until_ = Clock::now() + Millis(100);
        return;
      }
      continue;
    }
    if (connections_.size() >= limits_.max_connections && !evict_unauthenticated()) {
      ++dropped_;  // full of authenticated clients: this one waits for its retry
      ::close(fd);
      continue;
    }
    try {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto c = std::make_unique<Connection>();
      c->fd = fd;
      c->opened = c->last_progress = Clock::now();
      connections_.emplace(fd, std::move(c));
      ++open_;
    } catch (const std::exception&) {
      ++dropped_;
      ::close(fd);
    }
  }
}

bool TCPStoreServer::evict_unauthenticated() {
  Connection* oldest = nullptr;
  for (auto& [fd, c] : connections_)
    if (!c->authenticated && (!oldest || c->opened < oldest->opened)) oldest = c.get();
  if (!oldest) return false;
  close_connection(oldest->fd, /*dropped=*/true);
  return true;
}

void TCPStoreServer::close_connection(int fd, bool dropped) {
  auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  if (!stopping_) heartbeat_connection_closed(fd);
  heartbeat_fds_.erase(fd);
  // Counted before the close: a client that sees its connection end must see the count too.
  --open_;
  if (dropped) ++dropped_;
  connections_.erase(it);
  ::close(fd);
}

TCPStoreServer::Step TCPStoreServer::next_read(Connection& c, size_t& want) {
  const size_t have = c.in.size();
  if (have < 4) {
    want = 4;
    return Step::kMore;
  }
  const uint32_t n = le32(c.in.data());
  if (n < kHeaderFixed || n > kMaxSetFrame) return Step::kDrop;
  // The header, read and checked before anything the client declared is allocated.
  size_t need = 4 + 4 + 1 + 4;
  if (have < need) {
    want = need;
    return Step::kMore;
  }
  const Operation* op = find_operation(static_cast<uint8_t>(c.in[8]));
  if (le32(c.in.data() + 4) != kMagic || !op) return Step::kDrop;
  const uint32_t job_length = le32(c.in.data() + 9);
  if (job_length > kMaxIdLength) return Step::kDrop;
  need += job_length + 4;
  if (need > 4 + size_t{n}) return Step::kDrop;
  if (have < need) {
    want = need;
    return Step::kMore;
  }
  const uint32_t token_length = le32(c.in.data() + need - 4);
  if (token_length > kMaxIdLength) return Step::kDrop;
  need += token_length;
  if (need > 4 + size_t{n}) return Step::kDrop;
  if (have < need) {
    want = need;
    return Step::kMore;
  }
  {  // every request is checked, the connection's first one before its handshake deadline
    std::string job(c.in.data() + 13, job_length);
    std::string token(c.in.data() + 13 + job_length + 4, token_length);
    if (job != job_id_ || token != token_) {
      Writer out;
      out.u8(kRejected);
      out.str(job != job_id_ ? detail::cat("job id '", job, "' does not match the store's job id '",
                                           job_id_, "' (set PHALANX_JOB_ID to the same value)")
                             : std::string("the shared token does not match the store's token "
                                           "(set PHALANX_TOKEN to the same value on every rank)"));
      queue_reply(c, out);
      c.close_after_reply = true;
      return Step::kRefused;
    }
    c.authenticated = true;
  }
  if (n > op->max_frame) return Step::kDrop;
  want = 4 + size_t{n};
  return have == want ? Step::kComplete : Step::kMore;
}

TCPStoreServer::Outcome TCPStoreServer::on_readable(Connection& c) {
  while (!c.waiter && !c.close_after_reply) {
    size_t want = 0;
    switch (next_read(c, want)) {
      case Step::kDrop:
        return Outcome::kDrop;
      case Step::kRefused:
        return Outcome::kKeep;  // the refusal goes out, then the connection closes
      case Step::kComplete: {
        std::vector<char> body(c.in.begin() + 4, c.in.end());
        c.in.clear();
        if (c.in.capacity() > kMaxSmallFrame) c.in.shrink_to_fit();  // a set's value goes
        if (!handle(c, body)) return Outcome::kDrop;
        continue;
      }
      case Step::kMore:
        break;
    }
    const size_t have = c.in.size();
    c.in.resize(want);  // bounded by next_read's checks
    ssize_t got = ::recv(c.fd, c.in.data() + have, want - have, MSG_DONTWAIT);
    c.in.resize(have + static_cast<size_t>(std::max<ssize_t>(got, 0)));
    if (got > 0) {
      c.last_progress = Clock::now();
      continue;
    }
    if (got == 0) return have == 0 ? Outcome::kClosed : Outcome::kDrop;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Outcome::kKeep;
    return Outcome::kClosed;
  }
  return Outcome::kKeep;
}

void TCPStoreServer::queue_reply(Connection& c, const Writer& body) {
  if (c.out_sent == c.out.size()) {
    c.out.clear();
    c.out_sent = 0;
    c.last_progress = Clock::now();  // the stall clock of a reply starts when it is queued
  }
  Writer frame;
  frame.u32(static_cast<uint32_t>(body.buf.size()));
  c.out.insert(c.out.end(), frame.buf.begin(), frame.buf.end());
  c.out.insert(c.out.end(), body.buf.begin(), body.buf.end());
}

bool TCPStoreServer::on_writable(Connection& c) {
  while (c.out_sent < c.out.size()) {
    ssize_t w = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (w > 0) {
      c.out_sent += static_cast<size_t>(w);
      c.last_progress = Clock::now();
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  c.out.clear();
  if (c.out.capacity() > kMaxSmallFrame) c.out.shrink_to_fit();  // a get's value goes
  c.out_sent = 0;
  return !c.close_after_reply;
}

}  // namespace phalanx::dist
