// Primitives are created once per (op, shapes, layouts, attributes) and reused: creating one
// costs far more than running a small one. Keys are strings built by the ops.
//
// Threads: one process-wide cache, every member under its lock; a primitive it returns may be
// executed by several threads at once, because each execution brings its own scratchpad
// (dnnl_util::execute). Two threads missing the same key both create the primitive; the first
// stored is kept and returned to both.
#pragma once
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "dnnl/key_writer.h"

namespace phalanx::dnnl_util {

class PrimitiveCache {
 public:
  explicit PrimitiveCache(size_t capacity = 1024) : capacity_(capacity) {}

  template <typename T>
  std::shared_ptr<T> get_or_create(const std::string& key,
                                   const std::function<std::shared_ptr<T>()>& make) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = map_.find(key);
      if (it != map_.end()) {
        ++hits_;
        lru_.splice(lru_.begin(), lru_, it->second.second);
        return std::static_pointer_cast<T>(it->second.first);
      }
    }
    std::shared_ptr<T> made = make();  // outside the lock: creation is slow
    std::lock_guard<std::mutex> lock(mutex_);
    ++misses_;
    if (map_.count(key)) return std::static_pointer_cast<T>(map_[key].first);
    lru_.push_front(key);
    map_[key] = {made, lru_.begin()};
    if (map_.size() > capacity_) {
      map_.erase(lru_.back());
      lru_.pop_back();
    }
    return made;
  }

  uint64_t hits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return hits_;
  }
  uint64_t misses() const {  // = primitives created
    std::lock_guard<std::mutex> lock(mutex_);
    return misses_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return map_.size();
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    map_.clear();
    lru_.clear();
  }

  static PrimitiveCache& global();

 private:
  size_t capacity_;
  mutable std::mutex mutex_;
  std::list<std::string> lru_;
  std::unordered_map<std::string,
                     std::pair<std::shared_ptr<void>, std::list<std::string>::iterator>>
      map_;
  uint64_t hits_ = 0, misses_ = 0;
};

// Builds a cache key: cache_key("conv_fwd", dims, 3, true) -> "conv_fwd|1,2,3|3|1".
template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
inline void key_part(KeyWriter& os, T v) {
  os << v << '|';
}
inline void key_part(KeyWriter& os, const std::vector<int64_t>& v) {
  for (auto x : v) os << x << ',';
  os << '|';
}
inline void key_part(KeyWriter& os, const std::string& s) {
  os << s << '|';
}
inline void key_part(KeyWriter& os, const char* s) {
  os << s << '|';
}
template <typename... Args>
std::string cache_key(const Args&... args) {
  KeyWriter os;
  (key_part(os, args), ...);
  return std::move(os).str();
}

}  // namespace phalanx::dnnl_util
