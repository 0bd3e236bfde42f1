#include "dist/tcp_store_wire.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "core/error.h"

namespace phalanx::dist::wire {

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

std::string seconds_str(Clock::duration d) {
  int64_t tenths = std::chrono::duration_cast<Millis>(d).count() / 100;
  return detail::cat(tenths / 10, ".", tenths % 10, " s");
}

}  // namespace phalanx::dist::wire
