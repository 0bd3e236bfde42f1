// A flat, 64-byte aligned byte buffer shared by a tensor and its views. It also carries the
// version counter: every in-place write bumps it, so autograd can refuse a saved tensor that
// was changed (views share the storage, hence the counter, as in PyTorch).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/allocator.h"

namespace phalanx {

// Data computed from a storage's bytes and kept beside them (a weight reordered into a oneDNN
// blocked layout, see dnnl/weight_cache.h). Core owns it and drops it when the bytes change.
struct DerivedData {
  virtual ~DerivedData() = default;
};

struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<void> owner;  // keeps foreign memory (a numpy array) alive; null if ours
  // Atomic: threads writing tensors that share a storage must never lose a bump (a lost one
  // would let autograd use a saved tensor that was modified, or the weight cache a stale copy).
  std::atomic<uint64_t> version{0};

  // --- derived data: valid only while the bytes are those it was computed from ------------
  // A derived cache may trust `version` only if every write bumps it. Writers that do not:
  // the numpy array a storage wraps (`owner`: its owner can write it at any time), and numpy
  // arrays handed out over our bytes (they hold an external_writer handle). Such storages
  // cache nothing.
  //
  // The cached data, or null (none, or the storage is not cacheable now). Thread-safe.
  std::shared_ptr<DerivedData> derived() const;
  // Stores `d` unless an external writer appeared since `epoch` was read (derived_epoch()
  // before computing d from the bytes) or one is alive. Returns whether it was stored.
  bool set_derived(std::shared_ptr<DerivedData> d, uint64_t epoch);
  void drop_derived();  // frees it; called on every version bump
  uint64_t derived_epoch() const { return external_epoch_.load(); }
  // A handle that keeps `s` alive and marks it writable by outside code (a numpy view) until
  // the handle is released: nothing derived is cached meanwhile, and what was is dropped.
  static std::shared_ptr<void> external_writer(std::shared_ptr<Storage> s);
  bool has_external_writers() const { return external_writers_.load() > 0; }

  static std::shared_ptr<Storage> allocate(size_t nbytes);
  // Wraps memory owned by someone else; `owner` is released when the storage dies.
  static std::shared_ptr<Storage> wrap(void* data, size_t nbytes, std::shared_ptr<void> owner);
  ~Storage();
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

 private:
  std::shared_ptr<DerivedData> derived_;  // guarded by a lock in storage.cc
  std::atomic<bool> has_derived_{false};  // lets version bumps skip the lock
  std::atomic<uint32_t> external_writers_{0};
  std::atomic<uint64_t> external_epoch_{0};  // bumped when a handle is made or released
};

}  // namespace phalanx
