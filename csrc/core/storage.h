// A flat, 64-byte aligned byte buffer shared by a tensor and its views. It also carries the
// version counter: every in-place write bumps it, so autograd can refuse a saved tensor that
// was changed (views share the storage, hence the counter, as in PyTorch).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace phalanx {

constexpr size_t kAlignment = 64;  // a cache line, and what oneDNN's AVX-512 kernels like

void* aligned_alloc_bytes(size_t nbytes);
void aligned_free(void* p);

struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<void> owner;  // keeps foreign memory (a numpy array) alive; null if ours
  uint64_t version = 0;

  static std::shared_ptr<Storage> allocate(size_t nbytes);
  // Wraps memory owned by someone else; `owner` is released when the storage dies.
  static std::shared_ptr<Storage> wrap(void* data, size_t nbytes, std::shared_ptr<void> owner);
  ~Storage();
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

}  // namespace phalanx
