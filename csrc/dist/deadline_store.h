// A view of a TCPStore whose every blocking call ends by one deadline: a rendezvous is many
// store calls (and Gloo's connects between them), and the caller's timeout bounds them all
// together, not each one.
#pragma once
#include <gloo/rendezvous/store.h>

#include <chrono>
#include <string>
#include <vector>

#include "dist/tcp_store.h"

namespace phalanx::dist {

class DeadlineStore : public gloo::rendezvous::Store {
 public:
  using Clock = std::chrono::steady_clock;
  // `timeout` is what the caller asked for in total, for messages.
  DeadlineStore(TCPStore& store, Clock::time_point deadline, Millis timeout)
      : store_(store), deadline_(deadline), timeout_(timeout) {}

  // Time left (0 once passed).
  Millis remaining() const;
  Millis timeout() const { return timeout_; }

  void set(const std::string& key, const std::vector<char>& value) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  // Waits until the deadline whatever `timeout` says: Gloo passes its context timeout here,
  // which ProcessGroup shortens for Gloo's pair connect (see there).
  void wait(const std::vector<std::string>& keys, const Millis& timeout) override;

 private:
  TCPStore& store_;
  Clock::time_point deadline_;
  Millis timeout_;
};

}  // namespace phalanx::dist
