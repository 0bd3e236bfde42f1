#include "dist/tcp_store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "dist/tcp_store_wire.h"

namespace phalanx::dist {

using namespace wire;

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
  // The hello's answer counts against the same timeout: connecting and being accepted are one
  // phase for the caller.
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  request(kHello, {}, std::max(left, Millis(1)),
          detail::cat("hello (timeout ", ms_str(timeout_), ")"), Millis(0));
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
  PHX_CHECK(value.size() <= kMaxValueBytes, ValueError, "TCPStore.set('", key, "'): a value of ",
            value.size(), " bytes is longer than the store's maximum of ", kMaxValueBytes,
            " bytes");
  Writer w;
  w.str(key);
  w.bytes(value.data(), value.size());
  request(kSet, w.buf, timeout_, "set('" + key + "')");
}

std::vector<char> TCPStore::get(const std::string& key, Millis timeout, Millis slack) {
  timeout = std::max(timeout, Millis(0));
  Writer w;
  w.str(key);
  w.u64(static_cast<uint64_t>(timeout.count()));
  std::vector<char> reply = request(kGet, w.buf, timeout, "get('" + key + "')", slack);
  Reader in{reply};
  try {
    return in.bytes();
  } catch (const ParseError&) {
    throw Error(detail::cat("TCPStore ", where(), ": malformed reply to get('", key, "')"));
  }
}

void TCPStore::wait(const std::vector<std::string>& keys, Millis timeout, Millis slack) {
  if (keys.empty()) return;
  timeout = std::max(timeout, Millis(0));
  Writer w;
  w.u32(static_cast<uint32_t>(keys.size()));
  for (auto& k : keys) w.str(k);
  w.u64(static_cast<uint64_t>(timeout.count()));
  request(kWait, w.buf, timeout, "wait(" + join_keys(keys) + ")", slack);
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
