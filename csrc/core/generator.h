// Random number generators: one default, and user-made ones (phalanx.Generator). The state is
// a Mersenne twister; its text form is the checkpointable state.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

namespace phalanx {

class Generator {
 public:
  explicit Generator(uint64_t seed = 67280421310721ULL) { manual_seed(seed); }
  void manual_seed(uint64_t seed);
  uint64_t initial_seed() const { return seed_; }
  std::string get_state() const;
  void set_state(const std::string& state);

  // The engine, for use under the lock.
  std::mt19937_64& engine() { return engine_; }
  std::mutex& mutex() { return mutex_; }

  static const std::shared_ptr<Generator>& default_generator();

 private:
  uint64_t seed_ = 0;
  std::mt19937_64 engine_;
  std::mutex mutex_;
};

using GeneratorPtr = std::shared_ptr<Generator>;
inline GeneratorPtr or_default(const GeneratorPtr& g) {
  return g ? g : Generator::default_generator();
}

}  // namespace phalanx
