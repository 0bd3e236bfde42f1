// The store's server: one thread running a poll() event loop over the listening socket and
// every client connection (protocol and liveness rules: dist/tcp_store.h).
//
// It runs inside the process that hosts a job's store (the launcher or rank 0), so no client,
// however hostile, may take that process down or grow it without bound:
// - a request's header (magic, opcode, job id, token; each string at most kMaxIdLength) is read
//   and checked before anything the client declared is allocated; a frame longer than its
//   operation allows (kMaxSmallFrame, kMaxKeysFrame, or a set's key + kMaxValueBytes) is
//   refused unread, and the client dropped;
// - a connection must present a valid header (the job id and token) within the handshake
//   timeout (PHALANX_STORE_HANDSHAKE_TIMEOUT_MS, default 10 s), and a frame that stops arriving
//   midway, or a reply the client stops reading, is dropped after the stall timeout
//   (PHALANX_STORE_STALL_TIMEOUT_MS, default 30 s); an authenticated client may stay idle;
// - at most PHALANX_STORE_MAX_CONNECTIONS (default 4096) connections are open: a new one
//   replaces the oldest not yet authenticated, else it is closed at once;
// - get and wait do not block a thread: they become pending waiters, answered when the keys
//   appear or their timeout passes;
// - an exception while serving a client (a failed allocation, say) drops that client only.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace phalanx::dist {

namespace wire {
struct Writer;
}

using Millis = std::chrono::milliseconds;

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
  // The limits in force (from the environment variables above when not given).
  struct Limits {
    size_t max_connections = 4096;
    Millis handshake_timeout{10000};
    Millis stall_timeout{30000};
    static Limits from_environment();
  };

  // Binds 0.0.0.0:port (port 0 picks a free one); IOError(EADDRINUSE) names a taken port.
  TCPStoreServer(int port, std::string job_id, std::string token,
                 Limits limits = Limits::from_environment());
  ~TCPStoreServer();
  TCPStoreServer(const TCPStoreServer&) = delete;
  TCPStoreServer& operator=(const TCPStoreServer&) = delete;

  int port() const { return port_; }
  int64_t dropped_clients() const { return dropped_; }  // cut off: malformed, late, over a limit
  int64_t open_connections() const { return open_; }
  const Limits& limits() const { return limits_; }

  struct Connection;  // one client's socket, partial frame, pending reply and waiter
  struct Request;     // one decoded request and its reply

 private:
  enum class Step { kMore, kComplete, kDrop, kRefused };  // of reading a request
  enum class Outcome { kKeep, kClosed, kDrop };           // of serving a readable client
  // An operation of the protocol: its handler and the longest request body it accepts.
  struct Operation {
    uint8_t op;
    uint32_t max_frame;
    bool (TCPStoreServer::*handle)(Request&);
  };
  static const Operation* find_operation(uint8_t op);  // nullptr: no such operation

  void loop();
  void accept_clients();
  // Closes the oldest connection that has not authenticated yet; false if there is none.
  bool evict_unauthenticated();
  void close_connection(int fd, bool dropped);
  // How many bytes of the current request frame to have before looking again (`want`), after
  // checking what arrived so far: the length, then the header (job id and token compared
  // here), and only then the operation's size limit. kRefused queues the refusal.
  Step next_read(Connection& c, size_t& want);
  // Reads what the client sent and runs each complete request.
  Outcome on_readable(Connection& c);
  // Sends what is queued; false: drop the client (gone, or refused and told why).
  bool on_writable(Connection& c);
  void queue_reply(Connection& c, const wire::Writer& body);
  // Runs a complete request's handler, queuing its reply unless it left a pending waiter
  // (dist/tcp_store_handlers.cc). false: malformed, drop the client.
  bool handle(Connection& c, const std::vector<char>& body);
  // Answers the waiters whose keys are all there or whose timeout passed.
  void answer_waiters(std::chrono::steady_clock::time_point now);
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
  // Heartbeat bookkeeping.
  void note_lost(Liveness& g, uint32_t rank, const std::string& reason);
  void scan(Liveness& g, std::chrono::steady_clock::time_point now);
  void heartbeat_connection_closed(int fd);

  std::string job_id_, token_;
  Limits limits_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};  // a pipe: the destructor writes to end the loop
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> open_{0};
  std::chrono::steady_clock::time_point accept_paused_until_{};  // after EMFILE and friends

  // Touched by the loop's thread only: no locks.
  bool keys_changed_ = false;  // a set or add ran: answer_waiters looks at every waiter
  std::map<int, std::unique_ptr<Connection>> connections_;  // by fd
  std::map<std::string, std::vector<char>> data_;
  std::map<std::string, Liveness> liveness_;                       // by group key
  std::map<int, std::pair<std::string, uint32_t>> heartbeat_fds_;  // fd -> (group key, rank)
  std::thread thread_;
};

}  // namespace phalanx::dist
