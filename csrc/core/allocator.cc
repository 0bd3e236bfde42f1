#include "core/allocator.h"

#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/error.h"

#if defined(__SANITIZE_ADDRESS__)
#define PHX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define PHX_SANITIZED 1
#endif
#endif

namespace phalanx {

namespace {

constexpr size_t kPage = 4096;

std::atomic<int64_t> g_live{0}, g_peak{0}, g_allocations{0}, g_hits{0}, g_misses{0};

void note_allocated(int64_t nbytes) {
  int64_t live = g_live.fetch_add(nbytes, std::memory_order_relaxed) + nbytes;
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (live > peak && !g_peak.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
  g_allocations.fetch_add(1, std::memory_order_relaxed);
}

[[noreturn]] void out_of_memory(size_t nbytes) {
  throw Error(detail::cat("out of memory allocating ", nbytes, " bytes (",
                          static_cast<double>(nbytes) / (1 << 20), " MiB)"));
}

void* small_alloc(size_t nbytes) {
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) out_of_memory(nbytes);
  return p;
}

void* map_block(size_t bytes, size_t requested) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) out_of_memory(requested);
  return p;
}

void unmap_blocks(const std::vector<std::pair<void*, size_t>>& blocks) {
  for (const auto& b : blocks) ::munmap(b.first, b.second);
}

bool caching_enabled() {
#ifdef PHX_SANITIZED
  return false;
#else
  static const bool on = [] {
    const char* v = std::getenv("PHALANX_CACHING_ALLOCATOR");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
#endif
}

bool use_malloc_only() {
#ifdef PHX_SANITIZED
  return true;
#else
  return false;
#endif
}

// Freed large blocks by size class, each list oldest first. All sizes are class sizes.
class BlockCache {
  // Cached plus in-use bytes may exceed the most ever in use by a quarter: with no slack, a
  // training step's allocation sequence kept evicting blocks it needed again later in the
  // same step (ResNet-18 at batch 16: 61 fresh mappings per step, LeNet-5 at 32: 9; with
  // the slack and the borrowing below: 0).
  static constexpr size_t kSlackDivisor = 4;
  // A quarter is not always enough: where one phase of a step frees blocks of one size and
  // the next needs as many bytes in another size (LeNet-5 on aarch64, whose convolutions run
  // on plain layouts and GEMM buffers: 15 fresh mappings per step), every step evicted what
  // the next one wanted back. So an eviction is remembered (a ghost), and a miss that an
  // evicted block could have served proves the bound too tight for this workload: the slack
  // grows by that block, up to the peak itself (mapped memory at most twice the most ever
  // in use; PyTorch's caching allocator has no bound at all). A workload that never asks
  // for evicted sizes again keeps the quarter.
  static constexpr size_t kMaxSlackPerPeak = 1;

 public:
  static BlockCache& get() {
    static auto* cache = new BlockCache;  // never destroyed: storages may die at exit
    return *cache;
  }

  void* allocate(size_t cls, size_t requested) {
    std::vector<std::pair<void*, size_t>> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back().first;  // the most recently freed: likeliest still in cache
        it->second.pop_back();
        if (it->second.empty()) free_.erase(it);
        cached_ -= cls;
        in_use_ += cls;
        g_hits.fetch_add(1, std::memory_order_relaxed);
        return p;
      }
      // No block of this class: a cached one of a larger class, up to twice the size, serves
      // instead (remembered, so its free files it under its own class). A fresh mapping
      // costs a page fault per 4 KiB on first touch, and on a workload that repeats one
      // allocation sequence, evictions forced by the bound below would recur every step.
      auto larger = free_.upper_bound(cls);
      if (larger != free_.end() && larger->first <= 2 * cls) {
        const size_t real = larger->first;
        void* p = larger->second.back().first;
        larger->second.pop_back();
        if (larger->second.empty()) free_.erase(larger);
        cached_ -= real;
        in_use_ += real;
        peak_in_use_ = std::max(peak_in_use_, in_use_);
        borrowed_[p] = real;
        g_hits.fetch_add(1, std::memory_order_relaxed);
        return p;
      }
      // A miss: make room first, so that mapped memory stays within the most ever in use plus
      // the slack (or this allocation's new peak).
      grow_slack_if_regretted(cls);
      size_t slack = std::max(peak_in_use_ / kSlackDivisor, grown_slack_);
      size_t allowed = std::max(peak_in_use_ + slack, in_use_ + cls);
      while (cached_ > 0 && in_use_ + cached_ + cls > allowed) {
        evicted.push_back(evict_oldest());
        remember_evicted(evicted.back().second);
      }
      g_misses.fetch_add(1, std::memory_order_relaxed);
    }
    unmap_blocks(evicted);
    void* p = map_block(cls, requested);  // throws (counting nothing) when memory runs out
    std::lock_guard<std::mutex> lock(mu_);
    in_use_ += cls;
    peak_in_use_ = std::max(peak_in_use_, in_use_);
    return p;
  }

  void free(void* p, size_t cls) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = borrowed_.find(p);
      if (it != borrowed_.end()) {
        cls = it->second;
        borrowed_.erase(it);
      }
    }
    if (!caching_enabled()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        in_use_ -= cls;
      }
      ::munmap(p, cls);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    free_[cls].emplace_back(p, ++clock_);
    cached_ += cls;
    in_use_ -= cls;
  }

  void empty() {
    std::vector<std::pair<void*, size_t>> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& entry : free_)
        for (auto& block : entry.second) all.emplace_back(block.first, entry.first);
      free_.clear();
      cached_ = 0;
      peak_in_use_ = in_use_;  // the bound restarts from what is in use now
      grown_slack_ = 0;
      ghosts_.clear();
      ghost_bytes_ = 0;
    }
    unmap_blocks(all);
  }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

  // A fork while another thread holds the lock would leave the child's copy locked for good.
  void lock_for_fork() { mu_.lock(); }
  void unlock_after_fork() { mu_.unlock(); }

 private:
  BlockCache() {
    pthread_atfork([] { get().lock_for_fork(); }, [] { get().unlock_after_fork(); },
                   [] { get().unlock_after_fork(); });
  }

  // Removes the least recently freed cached block (caller holds mu_); returns it and its size.
  std::pair<void*, size_t> evict_oldest() {
    auto oldest = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (oldest == free_.end() || it->second.front().second < oldest->second.front().second)
        oldest = it;
    std::pair<void*, size_t> block{oldest->second.front().first, oldest->first};
    oldest->second.pop_front();
    if (oldest->second.empty()) free_.erase(oldest);
    cached_ -= block.second;
    return block;
  }

  // The caller holds mu_. Ghosts are kept for at most the peak's worth of bytes, oldest
  // dropped first: enough to recognise a step's sequence, bounded whatever the workload.
  void remember_evicted(size_t cls) {
    ghosts_.push_back(cls);
    ghost_bytes_ += cls;
    while (ghost_bytes_ > peak_in_use_ && !ghosts_.empty()) {
      ghost_bytes_ -= ghosts_.front();
      ghosts_.pop_front();
    }
  }

  // The caller holds mu_. A ghost that could have served `cls` (its class or a larger one it
  // would have been borrowed from, as allocate does) is consumed and its size added to the
  // slack, within kMaxSlackPerPeak times the peak.
  void grow_slack_if_regretted(size_t cls) {
    for (auto it = ghosts_.begin(); it != ghosts_.end(); ++it) {
      if (*it < cls || *it > 2 * cls) continue;
      grown_slack_ = std::min(std::max(grown_slack_, peak_in_use_ / kSlackDivisor) + *it,
                              kMaxSlackPerPeak * peak_in_use_);
      ghost_bytes_ -= *it;
      ghosts_.erase(it);
      return;
    }
  }

  std::mutex mu_;
  std::map<size_t, std::deque<std::pair<void*, uint64_t>>> free_;  // class -> (block, freed at)
  uint64_t clock_ = 0;
  std::unordered_map<void*, size_t> borrowed_;  // blocks handed out for a smaller class
  size_t cached_ = 0;                           // bytes in free_
  size_t in_use_ = 0;                           // bytes of large blocks handed out
  size_t peak_in_use_ = 0;                      // the most in_use_ ever was (since empty_cache)
  size_t grown_slack_ = 0;                      // slack earned by regretted evictions
  std::deque<size_t> ghosts_;                   // classes of evicted blocks, oldest first
  size_t ghost_bytes_ = 0;                      // their sum
};

}  // namespace

size_t size_class(size_t nbytes) {
  if (nbytes <= kPage) return kPage;
  const int log2 = 63 - __builtin_clzll(static_cast<unsigned long long>(nbytes));
  const size_t step = std::max(kPage, (size_t(1) << log2) / 8);
  return (nbytes + step - 1) / step * step;
}

void* allocate_bytes(size_t nbytes) {
  void* p = nbytes >= kLargeBlock && !use_malloc_only()
                ? BlockCache::get().allocate(size_class(nbytes), nbytes)
                : small_alloc(nbytes);
  note_allocated(static_cast<int64_t>(nbytes));
  return p;
}

void free_bytes(void* p, size_t nbytes) {
  if (!p) return;
  g_live.fetch_sub(static_cast<int64_t>(nbytes), std::memory_order_relaxed);
  if (nbytes >= kLargeBlock && !use_malloc_only())
    BlockCache::get().free(p, size_class(nbytes));
  else
    std::free(p);
}

MemoryStats memory_stats() {
  MemoryStats s;
  s.allocated_bytes = g_live.load();
  s.peak_allocated_bytes = g_peak.load();
  s.allocations = g_allocations.load();
  s.cached_bytes = static_cast<int64_t>(BlockCache::get().cached());
  s.cache_hits = g_hits.load();
  s.cache_misses = g_misses.load();
  return s;
}

void reset_peak_memory_stats() {
  g_peak.store(g_live.load());
}

bool caching_allocator_enabled() {
  return caching_enabled();
}

void empty_cache() {
  BlockCache::get().empty();
}

}  // namespace phalanx
