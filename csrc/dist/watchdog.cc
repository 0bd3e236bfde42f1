#include "dist/watchdog.h"

#include <cstdio>

#include "core/error.h"

namespace phalanx::dist {

namespace {

std::string seconds(Millis t) {
  return detail::cat(t.count() / 1000.0, " s");
}

}  // namespace

bool check_heartbeat_settings(Millis interval, Millis timeout) {
  PHX_CHECK(interval.count() >= 0, ValueError, "heartbeat_interval must be >= 0, got ",
            seconds(interval));
  PHX_CHECK(timeout.count() >= 0, ValueError, "heartbeat_timeout must be >= 0, got ",
            seconds(timeout));
  if (interval.count() == 0 || timeout.count() == 0) return false;
  PHX_CHECK(timeout > interval, ValueError, "heartbeat_timeout (", seconds(timeout),
            ") must be longer than heartbeat_interval (", seconds(interval), ")");
  return true;
}

Watchdog::Watchdog(const std::string& store_host, int store_port, const std::string& job_id,
                   const std::string& token, WatchdogOptions options)
    : options_(std::move(options)) {
  PHX_CHECK(check_heartbeat_settings(options_.interval, options_.timeout), ValueError,
            "Watchdog: heartbeat_interval and heartbeat_timeout must be > 0 (0 disables failure "
            "detection: start no watchdog), got ",
            seconds(options_.interval), " and ", seconds(options_.timeout));
  client_ =
      std::make_unique<TCPStore>(store_host, store_port, false, options_.timeout, job_id, token);
  // Registered before the constructor returns: from here on, a silent death is noticed.
  HeartbeatReply first =
      client_->heartbeat(options_.group, options_.rank, options_.host, options_.timeout);
  if (first.lost)
    failure_ = detail::cat("rank ", first.rank, " (host ", first.host, ") lost: ", first.reason);
  thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  stop();
}

std::string Watchdog::store_name() const {
  return detail::cat("the store at ", client_->host(), ":", client_->port(), " (hosted by ",
                     options_.store_owner.empty() ? "rank 0" : options_.store_owner, ")");
}

void Watchdog::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && failure_.empty()) {
    lock.unlock();
    std::string failure;
    bool store_lost = false;
    try {
      HeartbeatReply r =
          client_->heartbeat(options_.group, options_.rank, options_.host, options_.timeout);
      if (r.lost) failure = detail::cat("rank ", r.rank, " (host ", r.host, ") lost: ", r.reason);
    } catch (const TimeoutError&) {
      store_lost = true;
      failure = detail::cat(store_name(), " did not answer a heartbeat for ",
                            seconds(options_.timeout), " (its host froze or was disconnected)");
    } catch (const std::exception& e) {
      store_lost = true;
      failure = detail::cat(store_name(), " is gone: ", e.what());
    }
    lock.lock();
    store_lost_ = store_lost;
    if (stopping_) break;  // a failure seen while stopping is no one's concern
    if (!failure.empty()) {
      lock.unlock();
      trip(failure);
      return;
    }
    cv_.wait_for(lock, options_.interval, [&] { return stopping_; });
  }
}

void Watchdog::trip(const std::string& reason) {
  std::vector<std::weak_ptr<ProcessGroup>> groups;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.empty() && failure_ != reason) return;
    failure_ = reason;
    groups = groups_;
  }
  std::vector<std::shared_ptr<ProcessGroup>> live;
  for (auto& weak : groups)
    if (auto g = weak.lock()) live.push_back(g);
  // Said only while a group is in use: at a clean end, rank 0 (and the store with it) may
  // leave while the others are still shutting down, which is no failure.
  bool in_use = false;
  for (auto& g : live) in_use = in_use || !g->is_shut_down();
  if (in_use)
    std::fprintf(stderr, "phalanx.distributed: rank %d: %s; aborting the process groups\n",
                 options_.rank, reason.c_str());
  for (auto& g : live) g->abort(reason);
}

void Watchdog::watch(const std::shared_ptr<ProcessGroup>& group) {
  PHX_CHECK(group, ValueError, "Watchdog.watch: no process group");
  // An operation that fails inside Gloo waits this long for the verdict naming the lost rank:
  // the store hears of a killed rank at once, this watchdog at its next heartbeat.
  group->set_failure_grace(options_.interval + options_.interval / 2 + Millis(500));
  std::string failure;
  {
    std::lock_guard<std::mutex> lock(mu_);
    groups_.push_back(group);
    failure = failure_;
  }
  if (!failure.empty()) group->abort(failure);
}

void Watchdog::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::goodbye() {
  stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (store_lost_) return;
  }
  try {
    client_->goodbye(options_.group, options_.rank, options_.timeout);
  } catch (const std::exception&) {
    // The store is gone or frozen: nobody is left to report this rank lost.
  }
}

std::string Watchdog::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

}  // namespace phalanx::dist
