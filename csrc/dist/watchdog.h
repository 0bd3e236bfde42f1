// Watchdog: one thread per process that heartbeats to the store and aborts this process's
// process groups when a rank is lost, so no rank waits out a whole Gloo timeout for a peer
// that died or froze.
//
// It uses its own store connection, never shared with rendezvous or a long blocking get, so a
// heartbeat is never queued behind other traffic; and it does not touch Gloo's connections, so
// a long all-reduce on a slow link is not mistaken for a failure. The store server decides
// who is lost (see TCPStoreServer::Liveness): a rank silent for longer than `timeout`, or
// whose heartbeat connection closed without a goodbye. The store host itself being gone or
// frozen (no reply within `timeout`) is a failure too, named by its address and owner.
#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dist/process_group.h"
#include "dist/tcp_store.h"

namespace phalanx::dist {

struct WatchdogOptions {
  Millis interval{1000};    // between heartbeats
  Millis timeout{10000};    // silence after which a rank (or the store) counts as lost
  std::string group;        // liveness group key: one per init_process_group
  int rank = 0;             // this process's rank in the group
  std::string host;         // this rank's address, as other ranks' reports will name it
  std::string store_owner;  // who hosts the store ("rank 0", "the launcher"), for reports
};

// The heartbeat settings as a user gives them (init_process_group's arguments or the
// PHALANX_HEARTBEAT_* variables): each >= 0, 0 in either disabling failure detection, and
// otherwise a timeout longer than the interval. ValueError naming the setting and its value;
// returns whether failure detection is enabled. The one place these rules live.
bool check_heartbeat_settings(Millis interval, Millis timeout);

class Watchdog {
 public:
  // Connects its own client to the store (within options.timeout), sends the first heartbeat,
  // then heartbeats every interval on its thread. The settings must enable failure detection
  // (check_heartbeat_settings).
  Watchdog(const std::string& store_host, int store_port, const std::string& job_id,
           const std::string& token, WatchdogOptions options);
  ~Watchdog();  // stops without a goodbye: the store reports this rank once the connection closes
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Aborts `group` on a failure (at once if one was already seen). Held weakly.
  void watch(const std::shared_ptr<ProcessGroup>& group);
  // Stops heartbeating and tells the store this rank leaves cleanly (never reported lost).
  // Bounded by the heartbeat timeout; a store that is already gone is not an error here.
  void goodbye();
  // Stops heartbeating, without a goodbye.
  void stop();
  // The failure that tripped the watchdog ("rank 3 (host 10.0.0.4) lost: ..."), or "".
  std::string failure() const;
  const WatchdogOptions& options() const { return options_; }

 private:
  void loop();
  void trip(const std::string& reason);
  std::string store_name() const;

  WatchdogOptions options_;
  std::unique_ptr<TCPStore> client_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  bool stopping_ = false;
  bool store_lost_ = false;  // then a goodbye has no one to go to
  std::string failure_;
  std::vector<std::weak_ptr<ProcessGroup>> groups_;
  std::thread thread_;
};

}  // namespace phalanx::dist
