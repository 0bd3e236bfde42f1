// A process-wide on/off setting: on unless its environment variable is "0" when it is first
// used, then whatever set() last stored. Relaxed atomics: a setting read as work starts, not
// a synchronisation between threads.
#pragma once
#include <atomic>
#include <cstdlib>
#include <cstring>

namespace phalanx {

class EnvSwitch {
 public:
  explicit EnvSwitch(const char* env) : on_(!is_zero(std::getenv(env))) {}
  bool get() const { return on_.load(std::memory_order_relaxed); }
  void set(bool on) { on_.store(on, std::memory_order_relaxed); }

 private:
  static bool is_zero(const char* v) { return v && std::strcmp(v, "0") == 0; }
  std::atomic<bool> on_;
};

}  // namespace phalanx
