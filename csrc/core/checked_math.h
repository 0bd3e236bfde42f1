// Overflow-checked arithmetic for sizes, strides and byte counts. A size computed from a
// user's shape must never wrap: a wrapped byte count allocates a tiny buffer that the kernels
// then write far beyond, and a wrapped element count makes loops run forever or not at all.
#pragma once
#include <cstddef>
#include <cstdint>

namespace phalanx {

// a * b and a + b, or false (out left unspecified) when the result does not fit.
inline bool mul_fits(int64_t a, int64_t b, int64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}
inline bool add_fits(int64_t a, int64_t b, int64_t& out) {
  return !__builtin_add_overflow(a, b, &out);
}
inline bool mul_fits(size_t a, size_t b, size_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

// The most bytes one storage may hold. Far beyond any real machine's memory, yet small enough
// that byte offsets within it can never overflow. Sanitizer allocators abort (rather than fail)
// on requests above their own limit, so the cap is lower there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr size_t kMaxStorageBytes = size_t(1) << 38;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
constexpr size_t kMaxStorageBytes = size_t(1) << 38;
#else
constexpr size_t kMaxStorageBytes = size_t(1) << 48;
#endif
#else
constexpr size_t kMaxStorageBytes = size_t(1) << 48;
#endif

}  // namespace phalanx
