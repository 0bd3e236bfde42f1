// A TCP key-value store for rendezvous: one server (in rank 0 or the launcher), one client per
// rank. The client is a gloo::rendezvous::Store, so Gloo's full-mesh connect runs on it.
//
// Wire protocol (all integers little-endian), one request then one reply per round trip:
//   frame   = u32 length, then `length` bytes of body
//   request = u32 magic "PHX1", u8 opcode, str job_id, str token, op-specific fields
//   reply   = u8 status, op-specific fields (or str message when status != OK)
//   str     = u32 length, bytes
// The server checks every length, opcode and the job id/token of every request, and drops a
// client that sends anything malformed; it never trusts a length before checking it.
//
// Liveness: ranks heartbeat on their own connection (see dist/watchdog.h). The server records
// when each rank of a group was last seen and answers every heartbeat with the first rank found
// lost: silent for longer than the heartbeat timeout (a frozen or unplugged device), or whose
// heartbeat connection closed without a goodbye (a killed process). Staleness is computed when
// a heartbeat arrives, at most once per kScanEvery per group, so no server thread ticks.
#pragma once
#include <gloo/rendezvous/store.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace phalanx::dist {

using Millis = std::chrono::milliseconds;

// The server: a listening socket and one thread per connected client. Destruction stops it.
class TCPStoreServer {
 public:
  // A rank of a liveness group, as the server last saw it.
  struct Member {
    std::string host;
    std::chrono::steady_clock::time_point last_seen;
    bool departed = false;  // said goodbye: never reported lost
    bool closed = false;    // its heartbeat connection closed without a goodbye
  };
  struct Liveness {
    std::map<uint32_t, Member> members;
    Millis timeout{10000};  // silence longer than this is a loss (the heartbeaters' setting)
    std::chrono::steady_clock::time_point last_scan{};
    bool lost = false;  // the first loss sticks: later ones are consequences
    uint32_t lost_rank = 0;
    std::string lost_host, lost_reason;
  };

  // Binds 0.0.0.0:port (port 0 picks a free one); IOError(EADDRINUSE) names a taken port.
  TCPStoreServer(int port, std::string job_id, std::string token);
  ~TCPStoreServer();
  TCPStoreServer(const TCPStoreServer&) = delete;
  TCPStoreServer& operator=(const TCPStoreServer&) = delete;

  int port() const { return port_; }
  int64_t dropped_clients() const { return dropped_; }  // clients cut off for bad requests

 private:
  void accept_loop();
  void serve(int fd);
  // Checks the request's job id and token, then runs its operation's handler and sends the
  // reply (dist/tcp_store_handlers.cc). false: drop the client.
  bool handle(int fd, const std::vector<char>& body);
  struct Request;  // one decoded request and its reply
  // One handler per operation; false: the request is malformed, drop the client.
  bool on_hello(Request& r);
  bool on_set(Request& r);
  bool on_get(Request& r);
  bool on_wait(Request& r);
  bool on_add(Request& r);
  bool on_check(Request& r);
  bool on_heartbeat(Request& r);
  bool on_goodbye(Request& r);
  bool wait_for_keys(Request& r, bool get);
  // Heartbeat bookkeeping; mu_ held.
  void note_lost(Liveness& g, uint32_t rank, const std::string& reason);
  void scan(Liveness& g, std::chrono::steady_clock::time_point now);
  void heartbeat_connection_closed(int fd);

  std::string job_id_, token_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> dropped_{0};
  std::thread accept_thread_;

  std::mutex mu_;  // guards everything below
  std::condition_variable changed_;
  std::map<std::string, std::vector<char>> data_;
  std::set<int> client_fds_;
  std::vector<std::thread> client_threads_;
  std::map<std::string, Liveness> liveness_;                       // by group key
  std::map<int, std::pair<std::string, uint32_t>> heartbeat_fds_;  // fd -> (group key, rank)
};

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
  // Connects to host:port, retrying until `timeout` passes (then TimeoutError naming
  // host:port). With is_master a server is started in this process first (port 0: a free port;
  // port() tells which). A job id or token the server does not share is refused with an Error.
  TCPStore(const std::string& host, int port, bool is_master, Millis timeout,
           std::string job_id = "phalanx", std::string token = "");
  ~TCPStore() override;

  void set(const std::string& key, const std::vector<char>& value) override;
  // Blocks until the key exists, up to timeout(); TimeoutError names the key.
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const Millis& timeout) override;
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
                            const std::string& what, Millis slack = Millis(10000));
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
