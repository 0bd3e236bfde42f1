#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "dist/tcp_store.h"
#include "dist/tcp_store_wire.h"

namespace phalanx::dist {

using namespace wire;

namespace {
constexpr auto kScanEvery = Millis(100);  // staleness is checked at most this often per group
}  // namespace

TCPStoreServer::TCPStoreServer(int port, std::string job_id, std::string token)
    : job_id_(std::move(job_id)), token_(std::move(token)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
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
  if (::listen(listen_fd_, 1024) != 0) {
    int e = errno;
    ::close(listen_fd_);
    throw IOError(e, detail::cat("TCPStore: listen() on port ", port, ": ", strerror(e)));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { accept_loop(); });
}

TCPStoreServer::~TCPStoreServer() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
  accept_thread_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);  // wakes blocked reads
    threads.swap(client_threads_);
  }
  changed_.notify_all();  // wakes blocked gets and waits
  for (auto& t : threads) t.join();
}

void TCPStoreServer::accept_loop() {
  while (!stopping_) {
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      if (stopping_) break;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::this_thread::sleep_for(Millis(50));  // EMFILE and friends: back off, keep serving
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ::close(fd);
      break;
    }
    client_fds_.insert(fd);
    client_threads_.emplace_back([this, fd] { serve(fd); });
  }
}

void TCPStoreServer::serve(int fd) {
  std::vector<char> body;
  while (!stopping_) {
    ReadResult r = read_frame(fd, body, Clock::time_point::max());
    if (r != ReadResult::kOk) {
      if (r == ReadResult::kOversized) ++dropped_;
      break;
    }
    bool keep = false;
    try {
      keep = handle(fd, body);
    } catch (const ParseError&) {
      keep = false;
    }
    if (!keep) {
      ++dropped_;
      break;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!stopping_) heartbeat_connection_closed(fd);
  heartbeat_fds_.erase(fd);
  client_fds_.erase(fd);
  ::close(fd);
}

void TCPStoreServer::note_lost(Liveness& g, uint32_t rank, const std::string& reason) {
  if (g.lost) return;
  g.lost = true;
  g.lost_rank = rank;
  g.lost_host = g.members[rank].host;
  g.lost_reason = reason;
}

void TCPStoreServer::scan(Liveness& g, Clock::time_point now) {
  if (g.lost || now - g.last_scan < kScanEvery) return;
  g.last_scan = now;
  const std::pair<const uint32_t, Member>* stalest = nullptr;
  for (auto& entry : g.members) {
    const Member& m = entry.second;
    if (m.departed || m.closed) continue;
    if (!stalest || m.last_seen < stalest->second.last_seen) stalest = &entry;
  }
  if (stalest && now - stalest->second.last_seen > g.timeout)
    note_lost(g, stalest->first,
              "no heartbeat for " + seconds_str(now - stalest->second.last_seen));
}

void TCPStoreServer::heartbeat_connection_closed(int fd) {
  auto it = heartbeat_fds_.find(fd);
  if (it == heartbeat_fds_.end()) return;
  auto g = liveness_.find(it->second.first);
  if (g == liveness_.end()) return;
  Member& m = g->second.members[it->second.second];
  if (m.departed) return;
  m.closed = true;
  note_lost(g->second, it->second.second, "connection closed without goodbye");
}

}  // namespace phalanx::dist
