#include "ops/finite.h"

#include <cstdint>
#include <cstring>

#include "dnnl/layout.h"

namespace phalanx::ops {

bool all_finite(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return true;
  if (t.dtype() != DType::Float32 || !(t.is_blocked() || t.is_contiguous())) return false;
  const int64_t n = t.is_blocked()
                        ? static_cast<int64_t>(dnnl_util::desc_of(t).get_size() / sizeof(float))
                        : t.numel();
  const float* p = t.data<float>();
  // NaN and infinity are the floats whose exponent bits are all ones; an OR over integer
  // flags vectorises, where a floating-point test with early exit would not.
  constexpr uint32_t kExponent = 0x7f800000u;
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, p + i, sizeof bits);
    any |= static_cast<uint32_t>((bits & kExponent) == kExponent);
  }
  return any == 0;
}

bool all_finite(std::initializer_list<Tensor> ts) {
  for (const Tensor& t : ts)
    if (!all_finite(t)) return false;
  return true;
}

}  // namespace phalanx::ops
