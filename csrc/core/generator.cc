#include "core/generator.h"

#include <sstream>

#include "core/error.h"

namespace phalanx {

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mutex_);
  seed_ = seed;
  engine_.seed(seed);
}

std::string Generator::get_state() const {
  std::ostringstream os;
  os << seed_ << ' ' << engine_;
  return os.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream is(state);
  uint64_t seed;
  std::mt19937_64 e;
  is >> seed >> e;
  PHX_CHECK(!is.fail(), ValueError, "Generator.set_state: not a generator state (", state.size(),
            " bytes)");
  std::lock_guard<std::mutex> lock(mutex_);
  seed_ = seed;
  engine_ = e;
}

const std::shared_ptr<Generator>& Generator::default_generator() {
  static const auto g = std::make_shared<Generator>();
  return g;
}

}  // namespace phalanx
