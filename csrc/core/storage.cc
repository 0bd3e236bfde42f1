#include "core/storage.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/error.h"

namespace phalanx {

void* aligned_alloc_bytes(size_t nbytes) {
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) throw Error(detail::cat("out of memory allocating ", nbytes, " bytes"));
  return p;
}

void aligned_free(void* p) {
  std::free(p);
}

namespace {
// Training frees and reallocates every activation each iteration. By default glibc serves
// large blocks as fresh mmaps and hands freed heap tops back to the OS, so each page of each
// activation is faulted in (and zeroed by the kernel) again every iteration: ~7% of a ResNet-18
// iteration on the benchmark machine. PHALANX_MALLOC_TUNING=1 keeps blocks up to 32 MiB
// (glibc's ceiling) in the heap and freed memory for reuse; off by default because the heap
// then fragments: MobileNet-v1's peak grew by a third (1.11 -> 1.48 GiB). A caching allocator
// for storages would get the speed without that. Not glibc (Android's bionic): untouched.
void tune_malloc_once() {
#if defined(__GLIBC__)
  static const bool tuned = [] {
    const char* on = std::getenv("PHALANX_MALLOC_TUNING");
    if (!on || !*on || std::strcmp(on, "0") == 0) return false;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return true;
  }();
  (void)tuned;
#endif
}
}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  tune_malloc_once();
  auto s = std::make_shared<Storage>();
  s->data = aligned_alloc_bytes(nbytes);
  s->nbytes = nbytes;
  return s;
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, std::shared_ptr<void> owner) {
  auto s = std::make_shared<Storage>();
  s->data = data;
  s->nbytes = nbytes;
  s->owner = std::move(owner);
  return s;
}

namespace {
std::mutex& derived_mutex() {  // one lock for all storages: held for a pointer swap only
  static std::mutex m;
  return m;
}
}  // namespace

std::shared_ptr<DerivedData> Storage::derived() const {
  if (owner || !has_derived_.load()) return nullptr;
  std::lock_guard<std::mutex> lock(derived_mutex());
  return external_writers_.load() ? nullptr : derived_;
}

bool Storage::set_derived(std::shared_ptr<DerivedData> d, uint64_t epoch) {
  if (owner) return false;
  std::shared_ptr<DerivedData> old;  // released outside the lock
  std::lock_guard<std::mutex> lock(derived_mutex());
  if (external_writers_.load() || external_epoch_.load() != epoch) return false;
  old = std::move(derived_);
  derived_ = std::move(d);
  has_derived_.store(derived_ != nullptr);
  return true;
}

void Storage::drop_derived() {
  if (!has_derived_.load()) return;
  std::shared_ptr<DerivedData> old;
  {
    std::lock_guard<std::mutex> lock(derived_mutex());
    old = std::move(derived_);
    has_derived_.store(false);
  }
}

std::shared_ptr<void> Storage::external_writer(std::shared_ptr<Storage> s) {
  {
    std::lock_guard<std::mutex> lock(derived_mutex());
    ++s->external_writers_;
    ++s->external_epoch_;
  }
  s->drop_derived();
  Storage* raw = s.get();
  // The deleter owns a reference to the storage, so the bytes outlive the handle's users.
  return std::shared_ptr<void>(raw, [keep = std::move(s)](void*) mutable {
    {
      std::lock_guard<std::mutex> lock(derived_mutex());
      ++keep->external_epoch_;
      --keep->external_writers_;
    }
    keep->drop_derived();
    keep.reset();
  });
}

Storage::~Storage() {
  if (!owner) aligned_free(data);
}

}  // namespace phalanx
