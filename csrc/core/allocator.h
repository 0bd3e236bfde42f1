// Where storages' bytes come from: a caching allocator for large blocks.
//
// Training frees and re-allocates the same activation sizes every iteration. Through malloc,
// glibc either maps and unmaps each large block (every page faulted in and zeroed again: ~7% of
// a ResNet-18 iteration on the benchmark machine) or, once its adaptive mmap threshold has
// grown, serves them from a heap that fragments (resident memory ~1.5x what tensors hold at
// their peak). So blocks of kLargeBlock bytes or more are mapped here, kept by size class when
// freed, and handed out again. The cache is bounded: mapped memory (in use + cached) never
// exceeds the most ever in use at once, because a miss first unmaps the least recently freed
// cached blocks (exceeded by a slack: a quarter of that peak, grown up to the peak itself
// when a workload keeps asking for blocks the bound made it evict; allocator.cc says why).
// Steady-state training then neither faults nor fragments.
//
// Small blocks go to malloc. PHALANX_CACHING_ALLOCATOR=0 unmaps large blocks on free instead
// of caching them; sanitizer builds always use malloc, so use-after-free stays visible.
#pragma once
#include <cstddef>
#include <cstdint>

namespace phalanx {

constexpr size_t kAlignment = 64;                // a cache line, and what AVX-512 kernels like
constexpr size_t kLargeBlock = size_t(1) << 17;  // 128 KiB, glibc's own mmap threshold

// 64-byte aligned, at least one byte. Throws Error naming the size when memory runs out.
void* allocate_bytes(size_t nbytes);
// `nbytes` must be what was passed to allocate_bytes.
void free_bytes(void* p, size_t nbytes);

// The size a large block of `nbytes` is mapped and cached as: rounded up to 1/8 of its power
// of two (at most 12.5% more address space; pages never written are never resident).
size_t size_class(size_t nbytes);

struct MemoryStats {
  int64_t allocated_bytes = 0;       // requested by live storages
  int64_t peak_allocated_bytes = 0;  // the most ever live since the last reset
  int64_t allocations = 0;           // made so far
  int64_t cached_bytes = 0;          // freed large blocks kept for reuse
  int64_t cache_hits = 0;            // large allocations served from the cache
  int64_t cache_misses = 0;          // large allocations that mapped new memory
};
MemoryStats memory_stats();
void reset_peak_memory_stats();  // peak := what is live now
// False in sanitizer builds and with PHALANX_CACHING_ALLOCATOR=0.
bool caching_allocator_enabled();
// Unmaps every cached block (what torch.cuda.empty_cache does for its GPU cache).
void empty_cache();

}  // namespace phalanx
