#include "core/storage.h"

#include <mutex>

#include "core/checked_math.h"
#include "core/error.h"

namespace phalanx {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  // Callers check shapes (storage_nbytes); this is the last line for a size computed elsewhere.
  PHX_CHECK(nbytes <= kMaxStorageBytes, MemoryError, "cannot allocate ", nbytes,
            " bytes: more than the maximum of ", kMaxStorageBytes, " bytes for one tensor");
  auto s = std::make_shared<Storage>();
  s->data = allocate_bytes(nbytes);
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
  if (!owner) free_bytes(data, nbytes);
}

}  // namespace phalanx
