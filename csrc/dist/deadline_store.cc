#include "dist/deadline_store.h"

#include <algorithm>

namespace phalanx::dist {

namespace {
// How long past the deadline a reply from the store may take before its host counts as
// unreachable: the server answers a wait at the deadline, and the answer must travel back.
constexpr Millis kSlack{500};
}  // namespace

Millis DeadlineStore::remaining() const {
  return std::max(Millis(0), std::chrono::duration_cast<Millis>(deadline_ - Clock::now()));
}

void DeadlineStore::set(const std::string& key, const std::vector<char>& value) {
  store_.set(key, value);
}

std::vector<char> DeadlineStore::get(const std::string& key) {
  return store_.get(key, remaining(), kSlack);
}

void DeadlineStore::wait(const std::vector<std::string>& keys) {
  store_.wait(keys, remaining(), kSlack);
}

void DeadlineStore::wait(const std::vector<std::string>& keys, const Millis&) {
  store_.wait(keys, remaining(), kSlack);
}

}  // namespace phalanx::dist
