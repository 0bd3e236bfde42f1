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
  bool handle(int fd, const std::vector<char>& body);  // false: drop the client

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

  Millis timeout() const { return timeout_; }
  void set_timeout(Millis t) { timeout_ = t; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  const std::string& job_id() const { return job_id_; }
  TCPStoreServer* server() const { return server_.get(); }

 private:
  std::vector<char> request(uint8_t op, const std::vector<char>& fields, Millis reply_timeout,
                            const std::string& what);
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
