#include "dist/tcp_store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace phalanx::dist {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kMagic = 0x31584850;            // "PHX1"
constexpr uint32_t kMaxFrame = 64u * 1024 * 1024;  // no rendezvous message comes near this
constexpr int64_t kMaxWaitMs = 24LL * 3600 * 1000;
constexpr uint32_t kMaxRank = 1u << 20;   // far beyond any rack
constexpr size_t kMaxHostLength = 1024;   // a host description, not a payload
constexpr auto kScanEvery = Millis(100);  // staleness is checked at most this often per group

enum Op : uint8_t {
  kHello = 1,
  kSet = 2,
  kGet = 3,
  kWait = 4,
  kAdd = 5,
  kCheck = 6,
  kHeartbeat = 7,
  kGoodbye = 8,
};
enum Status : uint8_t { kOk = 0, kTimedOut = 1, kRejected = 2, kBadRequest = 3 };

struct ParseError {};

struct Writer {
  std::vector<char> buf;
  void raw(const void* p, size_t n) {
    if (n == 0) return;
    size_t at = buf.size();
    buf.resize(at + n);
    std::memcpy(buf.data() + at, p, n);
  }
  void u8(uint8_t v) { raw(&v, 1); }
  void u32(uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<unsigned char>((v >> (8 * i)) & 0xff);
    raw(b, 4);
  }
  void u64(uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>((v >> (8 * i)) & 0xff);
    raw(b, 8);
  }
  void bytes(const char* p, size_t n) {
    u32(static_cast<uint32_t>(n));
    raw(p, n);
  }
  void str(const std::string& s) { bytes(s.data(), s.size()); }
};

// Reads fields from a received body; any read past the end throws ParseError.
struct Reader {
  const std::vector<char>& buf;
  size_t pos = 0;
  void need(size_t n) const {
    if (n > buf.size() - pos) throw ParseError{};
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(buf[pos++]);
  }
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<uint8_t>(buf[pos++])) << (8 * i);
    return v;
  }
  uint64_t u64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(static_cast<uint8_t>(buf[pos++])) << (8 * i);
    return v;
  }
  std::vector<char> bytes() {
    uint32_t n = u32();
    need(n);
    std::vector<char> v(buf.begin() + pos, buf.begin() + pos + n);
    pos += n;
    return v;
  }
  std::string str() {
    auto v = bytes();
    return std::string(v.begin(), v.end());
  }
  bool done() const { return pos == buf.size(); }
};

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

enum class ReadResult { kOk, kClosed, kTimedOut, kOversized };

// Reads exactly n bytes; a deadline of time_point::max() waits forever.
ReadResult read_all(int fd, char* p, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    if (deadline != Clock::time_point::max()) {
      auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
      if (left <= 0) return ReadResult::kTimedOut;
      pollfd pfd{fd, POLLIN, 0};
      int r = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ReadResult::kClosed;
      if (r == 0) return ReadResult::kTimedOut;
    }
    ssize_t got = ::recv(fd, p, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return ReadResult::kClosed;
    p += got;
    n -= static_cast<size_t>(got);
  }
  return ReadResult::kOk;
}

bool send_frame(int fd, const std::vector<char>& body) {
  Writer w;
  w.u32(static_cast<uint32_t>(body.size()));
  w.raw(body.data(), body.size());
  return write_all(fd, w.buf.data(), w.buf.size());
}

ReadResult read_frame(int fd, std::vector<char>& body, Clock::time_point deadline) {
  char head[4];
  ReadResult r = read_all(fd, head, 4, deadline);
  if (r != ReadResult::kOk) return r;
  std::vector<char> hv(head, head + 4);
  uint32_t n = Reader{hv}.u32();
  if (n > kMaxFrame) return ReadResult::kOversized;
  body.resize(n);
  return read_all(fd, body.data(), n, deadline);
}

std::string join_keys(const std::vector<std::string>& keys) {
  std::string s;
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", '" : "'") + keys[i] + "'";
  return s;
}

std::string ms_str(Millis t) {
  return detail::cat(t.count() / 1000.0, " s");
}

// "10.1 s": one decimal, for reports of silence.
std::string seconds_str(Clock::duration d) {
  int64_t tenths = std::chrono::duration_cast<Millis>(d).count() / 100;
  return detail::cat(tenths / 10, ".", tenths % 10, " s");
}

}  // namespace

// ---------------------------------------------------------------------------------- server

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

bool TCPStoreServer::handle(int fd, const std::vector<char>& body) {
  Reader in{body};
  if (in.u32() != kMagic) return false;
  uint8_t op = in.u8();
  if (op < kHello || op > kGoodbye) return false;
  std::string job = in.str(), token = in.str();
  Writer out;
  if (job != job_id_ || token != token_) {
    out.u8(kRejected);
    out.str(job != job_id_ ? detail::cat("job id '", job, "' does not match the store's job id '",
                                         job_id_, "' (set PHALANX_JOB_ID to the same value)")
                           : std::string("the shared token does not match the store's token "
                                         "(set PHALANX_TOKEN to the same value on every rank)"));
    send_frame(fd, out.buf);
    return false;
  }
  switch (op) {
    case kHello:
      if (!in.done()) return false;
      out.u8(kOk);
      break;
    case kSet: {
      std::string key = in.str();
      std::vector<char> value = in.bytes();
      if (!in.done()) return false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        data_[key] = std::move(value);
      }
      changed_.notify_all();
      out.u8(kOk);
      break;
    }
    case kGet:
    case kWait: {
      uint32_t n = op == kGet ? 1 : in.u32();
      if (n == 0 || n > body.size()) return false;  // each key takes at least 4 bytes
      std::vector<std::string> keys;
      for (uint32_t i = 0; i < n; ++i) keys.push_back(in.str());
      int64_t ms = static_cast<int64_t>(std::min<uint64_t>(in.u64(), kMaxWaitMs));
      if (!in.done()) return false;
      std::unique_lock<std::mutex> lock(mu_);
      auto all_there = [&] {
        for (auto& k : keys)
          if (!data_.count(k)) return false;
        return true;
      };
      changed_.wait_for(lock, Millis(ms), [&] { return stopping_ || all_there(); });
      if (stopping_) return false;
      if (!all_there()) {
        std::vector<std::string> missing;
        for (auto& k : keys)
          if (!data_.count(k)) missing.push_back(k);
        out.u8(kTimedOut);
        out.str(join_keys(missing));
      } else {
        out.u8(kOk);
        if (op == kGet) {
          auto& v = data_[keys[0]];
          out.bytes(v.data(), v.size());
        }
      }
      break;
    }
    case kAdd: {
      std::string key = in.str();
      int64_t delta = static_cast<int64_t>(in.u64());
      if (!in.done()) return false;
      int64_t value = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = data_.find(key);
        if (it != data_.end()) {
          std::string s(it->second.begin(), it->second.end());
          char* end = nullptr;
          value = std::strtoll(s.c_str(), &end, 10);
          if (s.empty() || *end != '\0') {
            out.u8(kBadRequest);
            out.str(detail::cat("add: key '", key, "' does not hold an integer"));
            return send_frame(fd, out.buf);
          }
        }
        value += delta;
        std::string s = std::to_string(value);
        data_[key] = std::vector<char>(s.begin(), s.end());
      }
      changed_.notify_all();
      out.u8(kOk);
      out.u64(static_cast<uint64_t>(value));
      break;
    }
    case kCheck: {
      uint32_t n = in.u32();
      if (n > body.size()) return false;
      std::vector<std::string> keys;
      for (uint32_t i = 0; i < n; ++i) keys.push_back(in.str());
      if (!in.done()) return false;
      bool all = true;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& k : keys) all = all && data_.count(k);
      }
      out.u8(kOk);
      out.u8(all ? 1 : 0);
      break;
    }
    case kHeartbeat: {
      std::string group = in.str();
      uint32_t rank = in.u32();
      std::string host = in.str();
      int64_t ms = static_cast<int64_t>(std::min<uint64_t>(in.u64(), kMaxWaitMs));
      if (!in.done() || rank >= kMaxRank || host.size() > kMaxHostLength) return false;
      auto now = Clock::now();
      std::lock_guard<std::mutex> lock(mu_);
      Liveness& g = liveness_[group];
      g.timeout = Millis(std::max<int64_t>(ms, 1));
      Member& m = g.members[rank];
      m.host = host;
      m.last_seen = now;
      m.departed = false;
      m.closed = false;
      heartbeat_fds_[fd] = {group, rank};
      scan(g, now);
      out.u8(kOk);
      out.u8(g.lost ? 1 : 0);
      if (g.lost) {
        out.u32(g.lost_rank);
        out.str(g.lost_host);
        out.str(g.lost_reason);
      }
      break;
    }
    case kGoodbye: {
      std::string group = in.str();
      uint32_t rank = in.u32();
      if (!in.done() || rank >= kMaxRank) return false;
      std::lock_guard<std::mutex> lock(mu_);
      auto g = liveness_.find(group);
      if (g != liveness_.end()) {
        auto m = g->second.members.find(rank);
        if (m != g->second.members.end()) m->second.departed = true;
      }
      out.u8(kOk);
      break;
    }
    default:
      return false;
  }
  return send_frame(fd, out.buf);
}

// ---------------------------------------------------------------------------------- client

namespace {

// One connection attempt to any address of host:port, bounded by `limit`. Returns the fd or -1
// with `err` describing why.
int try_connect(const std::string& host, int port, Millis limit, std::string& err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port_s = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res);
  if (rc != 0) {
    err = detail::cat("cannot resolve host '", host, "': ", gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) {
      err = strerror(errno);
      continue;
    }
    int flags = ::fcntl(fd, F_GETFL, 0);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int r = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      r = ::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(limit.count(), 1)));
      if (r == 1) {
        int so_err = 0;
        socklen_t len = sizeof(so_err);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &len);
        r = so_err == 0 ? 0 : -1;
        errno = so_err;
      } else {
        if (r == 0) errno = ETIMEDOUT;
        r = -1;
      }
    }
    if (r != 0) {
      err = strerror(errno);
      ::close(fd);
      fd = -1;
      continue;
    }
    ::fcntl(fd, F_SETFL, flags);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ::freeaddrinfo(res);
  return fd;
}

}  // namespace

TCPStore::TCPStore(const std::string& host, int port, bool is_master, Millis timeout,
                   std::string job_id, std::string token)
    : host_(host),
      port_(port),
      timeout_(timeout),
      job_id_(std::move(job_id)),
      token_(std::move(token)) {
  PHX_CHECK(port >= 0 && port < 65536, ValueError, "TCPStore: port ", port, " out of range");
  if (is_master) {
    server_ = std::make_unique<TCPStoreServer>(port, job_id_, token_);
    port_ = server_->port();
  } else {
    PHX_CHECK(port > 0, ValueError, "TCPStore: a client needs the server's port, got 0");
  }
  auto deadline = Clock::now() + timeout_;
  std::string err = "no attempt made";
  Millis backoff(20);
  while (true) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) break;
    fd_ = try_connect(host_, port_, std::min(left, Millis(2000)), err);
    if (fd_ >= 0) break;
    std::this_thread::sleep_for(std::min(backoff, left));
    backoff = std::min(backoff * 2, Millis(500));
  }
  if (fd_ < 0)
    throw TimeoutError(detail::cat("TCPStore: could not connect to the store at ", where(),
                                   " within ", ms_str(timeout_), " (last error: ", err,
                                   "); is rank 0 / the launcher running and MASTER_ADDR and "
                                   "MASTER_PORT right?"));
  request(kHello, {}, timeout_, "hello");
}

TCPStore::~TCPStore() {
  if (fd_ >= 0) ::close(fd_);
}

std::string TCPStore::where() const {
  return detail::cat(host_, ":", port_);
}

std::vector<char> TCPStore::request(uint8_t op, const std::vector<char>& fields,
                                    Millis reply_timeout, const std::string& what, Millis slack) {
  Writer w;
  w.u32(kMagic);
  w.u8(op);
  w.str(job_id_);
  w.str(token_);
  w.raw(fields.data(), fields.size());
  std::lock_guard<std::mutex> lock(mu_);
  PHX_CHECK(fd_ >= 0, Error, "TCPStore: the connection to ", where(),
            " was lost by an earlier failure");
  auto fail = [&](const std::string& msg) {
    ::close(fd_);
    fd_ = -1;
    return Error(detail::cat("TCPStore ", where(), ": ", what, ": ", msg));
  };
  if (!send_frame(fd_, w.buf)) throw fail("the store server closed the connection");
  std::vector<char> reply;
  ReadResult r = read_frame(fd_, reply, Clock::now() + reply_timeout + slack);
  if (r == ReadResult::kTimedOut) {
    ::close(fd_);
    fd_ = -1;
    throw TimeoutError(detail::cat("TCPStore ", where(), ": ", what, ": no reply within ",
                                   ms_str(reply_timeout + slack)));
  }
  if (r != ReadResult::kOk || reply.empty()) throw fail("the store server closed the connection");
  Reader in{reply};
  uint8_t status = in.u8();
  std::vector<char> rest(reply.begin() + 1, reply.end());
  if (status == kOk) return rest;
  std::string msg;
  try {
    msg = in.str();
  } catch (const ParseError&) {
    throw fail("malformed reply");
  }
  if (status == kTimedOut)
    throw TimeoutError(detail::cat("TCPStore ", where(), ": ", what, " timed out after ",
                                   ms_str(reply_timeout), " waiting for key(s) ", msg));
  if (status == kRejected) {
    ::close(fd_);
    fd_ = -1;
    throw Error(detail::cat("TCPStore ", where(), " rejected this client: ", msg));
  }
  throw Error(detail::cat("TCPStore ", where(), ": ", what, ": ", msg));
}

void TCPStore::set(const std::string& key, const std::vector<char>& value) {
  Writer w;
  w.str(key);
  w.bytes(value.data(), value.size());
  request(kSet, w.buf, timeout_, "set('" + key + "')");
}

std::vector<char> TCPStore::get(const std::string& key) {
  Writer w;
  w.str(key);
  w.u64(static_cast<uint64_t>(timeout_.count()));
  std::vector<char> reply = request(kGet, w.buf, timeout_, "get('" + key + "')");
  Reader in{reply};
  try {
    return in.bytes();
  } catch (const ParseError&) {
    throw Error(detail::cat("TCPStore ", where(), ": malformed reply to get('", key, "')"));
  }
}

void TCPStore::wait(const std::vector<std::string>& keys, const Millis& timeout) {
  if (keys.empty()) return;
  Writer w;
  w.u32(static_cast<uint32_t>(keys.size()));
  for (auto& k : keys) w.str(k);
  w.u64(static_cast<uint64_t>(std::max<int64_t>(timeout.count(), 0)));
  request(kWait, w.buf, timeout, "wait(" + join_keys(keys) + ")");
}

int64_t TCPStore::add(const std::string& key, int64_t n) {
  Writer w;
  w.str(key);
  w.u64(static_cast<uint64_t>(n));
  std::vector<char> reply = request(kAdd, w.buf, timeout_, "add('" + key + "')");
  Reader in{reply};
  try {
    return static_cast<int64_t>(in.u64());
  } catch (const ParseError&) {
    throw Error(detail::cat("TCPStore ", where(), ": malformed reply to add('", key, "')"));
  }
}

bool TCPStore::check(const std::vector<std::string>& keys) {
  Writer w;
  w.u32(static_cast<uint32_t>(keys.size()));
  for (auto& k : keys) w.str(k);
  std::vector<char> reply = request(kCheck, w.buf, timeout_, "check");
  return !reply.empty() && reply[0] != 0;
}

HeartbeatReply TCPStore::heartbeat(const std::string& group, int rank, const std::string& host,
                                   Millis timeout) {
  PHX_CHECK(rank >= 0 && static_cast<uint32_t>(rank) < kMaxRank, ValueError, "heartbeat: rank ",
            rank, " out of range");
  PHX_CHECK(host.size() <= kMaxHostLength, ValueError, "heartbeat: host description longer than ",
            kMaxHostLength, " bytes");
  Writer w;
  w.str(group);
  w.u32(static_cast<uint32_t>(rank));
  w.str(host);
  w.u64(static_cast<uint64_t>(std::max<int64_t>(timeout.count(), 1)));
  std::vector<char> reply = request(kHeartbeat, w.buf, timeout, "heartbeat", Millis(0));
  Reader in{reply};
  HeartbeatReply out;
  try {
    out.lost = in.u8() != 0;
    if (out.lost) {
      out.rank = static_cast<int>(in.u32());
      out.host = in.str();
      out.reason = in.str();
    }
  } catch (const ParseError&) {
    throw Error(detail::cat("TCPStore ", where(), ": malformed reply to heartbeat"));
  }
  return out;
}

void TCPStore::goodbye(const std::string& group, int rank, Millis timeout) {
  PHX_CHECK(rank >= 0 && static_cast<uint32_t>(rank) < kMaxRank, ValueError, "goodbye: rank ", rank,
            " out of range");
  Writer w;
  w.str(group);
  w.u32(static_cast<uint32_t>(rank));
  request(kGoodbye, w.buf, timeout, "goodbye", Millis(0));
}

}  // namespace phalanx::dist
