// One client connection of the store server (internal to csrc/dist).
#pragma once
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "dist/tcp_store_server.h"

namespace phalanx::dist {

struct TCPStoreServer::Connection {
  using Clock = std::chrono::steady_clock;
  // A get or wait whose keys are not all there yet: answered by answer_waiters.
  struct Waiter {
    bool get;  // answer with the value of keys[0]
    std::vector<std::string> keys;
    Clock::time_point deadline;
  };

  int fd = -1;
  Clock::time_point opened, last_progress;
  bool authenticated = false;  // presented the job id and token
  std::vector<char> in;        // the request frame so far, its u32 length included
  std::vector<char> out;       // replies not yet sent, from out_sent on
  size_t out_sent = 0;
  bool close_after_reply = false;  // refused: told why, then closed
  std::unique_ptr<Waiter> waiter;

  // When this connection is late: its handshake, a stalled transfer, its waiter's timeout.
  Clock::time_point deadline(const Limits& limits) const {
    auto d = Clock::time_point::max();
    if (!authenticated) d = opened + limits.handshake_timeout;
    if (!in.empty() || out_sent < out.size()) d = std::min(d, last_progress + limits.stall_timeout);
    if (waiter) d = std::min(d, waiter->deadline);
    return d;
  }
};

}  // namespace phalanx::dist
