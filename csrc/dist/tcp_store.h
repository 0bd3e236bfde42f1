// A TCP key-value store for rendezvous: one server (in rank 0 or the launcher), one client per
// rank. The client is a gloo::rendezvous::Store, so Gloo's full-mesh connect runs on it.
//
// Wire protocol (all integers little-endian), one request then one reply per round trip:
//   frame   = u32 length, then `length` bytes of body
//   request = u32 magic "PHX1", u8 opcode, str job_id, str token, op-specific fields
//   reply   = u8 status, op-specific fields (or str message when status != OK)
//   str     = u32 length, bytes
// The server checks every length, opcode and the job id/token of every request, and drops a
// client that sends anything malformed; it never trusts a length before checking it, and
// allocates nothing a client declared before the job id and token are checked (limits:
// dist/tcp_store_server.h).
//
// Liveness: ranks heartbeat on their own connection (see dist/watchdog.h). The server records
// when each rank of a group was last seen and answers every heartbeat with the first rank found
// lost: silent for longer than the heartbeat timeout (a frozen or unplugged device), or whose
// heartbeat connection closed without a goodbye (a killed process). Staleness is computed when
// a heartbeat arrives, at most once per kScanEvery per group, so no server thread ticks.
#pragma once
#include <gloo/rendezvous/store.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dist/tcp_store_server.h"

namespace phalanx::dist {

using Millis = std::chrono::milliseconds;

// What the store answered to a heartbeat: whether some rank of the group is lost, and why.
struct HeartbeatReply {
  bool lost = false;
  int rank = -1;
  std::string host;
  std::string reason;  // "no heartbeat for 10.1 s" / "connection closed without goodbye"
};

// The client. Every method is thread-safe (one request at a time per client).
class TCPStore : public gloo::rendezvous::Store {
 public:
  // The largest value set() takes (the server refuses longer requests unread).
  static constexpr size_t kMaxValueBytes = 16u << 20;
  // How much longer than a get's or wait's timeout a reply may take (the server answers at
  // the timeout; this covers a slow network) before the store host counts as unreachable.
  static constexpr Millis kReplySlack{10000};

  // Connects to host:port and says hello, retrying until `timeout` passes in total (then
  // TimeoutError naming host:port). With is_master a server is started in this process first (port
  // 0: a free port; port() tells which). A job id or token the server does not share is refused
  // with an Error.
  TCPStore(const std::string& host, int port, bool is_master, Millis timeout,
           std::string job_id = "phalanx", std::string token = "");
  ~TCPStore() override;

  void set(const std::string& key, const std::vector<char>& value) override;
  // Blocks until the key exists, up to timeout(); TimeoutError names the key.
  std::vector<char> get(const std::string& key) override { return get(key, timeout_); }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const Millis& timeout) override {
    wait(keys, timeout, kReplySlack);
  }
  // With an explicit timeout, and how much longer than it to wait for the server's answer
  // before calling the store host unreachable (a rendezvous bound by a deadline passes less).
  std::vector<char> get(const std::string& key, Millis timeout, Millis slack = kReplySlack);
  void wait(const std::vector<std::string>& keys, Millis timeout, Millis slack);
  // Adds n to the integer counter at key (created at 0) and returns the new value.
  int64_t add(const std::string& key, int64_t n);
  // True if every key exists now; never blocks.
  bool check(const std::vector<std::string>& keys);
  // Records that `rank` of liveness group `group` is alive (host describes it in reports) and
  // returns the group's failure status. `timeout` is both the silence after which the server
  // calls a rank lost and how long this call waits for the reply (TimeoutError after).
  HeartbeatReply heartbeat(const std::string& group, int rank, const std::string& host,
                           Millis timeout);
  // Marks a clean departure: the rank is never reported lost afterwards.
  void goodbye(const std::string& group, int rank, Millis timeout);

  Millis timeout() const { return timeout_; }
  void set_timeout(Millis t) { timeout_ = t; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  const std::string& job_id() const { return job_id_; }
  const std::string& token() const { return token_; }
  TCPStoreServer* server() const { return server_.get(); }

 private:
  // Waits reply_timeout + slack for the reply (the slack covers a slow network when the
  // server itself waits up to reply_timeout).
  std::vector<char> request(uint8_t op, const std::vector<char>& fields, Millis reply_timeout,
                            const std::string& what, Millis slack = kReplySlack);
  std::string where() const;

  std::string host_;
  int port_;
  Millis timeout_;
  std::string job_id_, token_;
  std::unique_ptr<TCPStoreServer> server_;
  int fd_ = -1;
  std::mutex mu_;
};

}  // namespace phalanx::dist
