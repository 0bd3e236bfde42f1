// Element-wise reduction rules (sum, product, max, min) for every reducible dtype, in the shape
// Gloo's options-based collectives ask for: a std::function `c = a op b`. float16 and bfloat16
// are computed in float32 and rounded back per step.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/dtype.h"
#include "core/error.h"

namespace phalanx::dist {

enum class ReduceOp { Sum, Avg, Max, Min, Product };
const char* reduce_op_name(ReduceOp op);

using ReduceFn = std::function<void(void*, const void*, const void*, size_t)>;

// Gloo's options-based reduction for dtype and op (Avg sums; divide afterwards). TypeError for
// a dtype that cannot be reduced, or Avg on integers.
ReduceFn reduce_fn(DType t, ReduceOp op);

// Divides n elements of a floating-point buffer by `by` in place (the second half of Avg).
void divide_in_place(void* p, DType t, size_t n, int by);

namespace reduction {

template <typename T>
struct Plain {
  using Storage = T;
  static T load(T v) { return v; }
  template <typename V>
  static T store(V v) {
    return static_cast<T>(v);
  }
};

template <float (*Load)(uint16_t), uint16_t (*Store)(float)>
struct Reduced {
  using Storage = uint16_t;
  static float load(uint16_t v) { return Load(v); }
  static uint16_t store(float v) { return Store(v); }
};

using Half = Reduced<half_to_float, float_to_half>;
using BFloat = Reduced<bfloat16_to_float, float_to_bfloat16>;

struct Add {
  template <typename V>
  V operator()(V a, V b) const {
    return static_cast<V>(a + b);
  }
};
struct Mul {
  template <typename V>
  V operator()(V a, V b) const {
    return static_cast<V>(a * b);
  }
};
struct Max {
  template <typename V>
  V operator()(V a, V b) const {
    return a < b ? b : a;
  }
};
struct Min {
  template <typename V>
  V operator()(V a, V b) const {
    return b < a ? b : a;
  }
};

// out[i] = x[i] op y[i]; out may alias x.
template <typename Traits, typename Op>
void apply(typename Traits::Storage* out, const typename Traits::Storage* x,
           const typename Traits::Storage* y, size_t n) {
  for (size_t i = 0; i < n; ++i)
    out[i] = Traits::store(Op{}(Traits::load(x[i]), Traits::load(y[i])));
}

}  // namespace reduction

// Calls f with a pointer type whose size is the element size, for Gloo's templated setters.
template <typename F>
void with_element(size_t itemsize, F&& f) {
  switch (itemsize) {
    case 1:
      return f(static_cast<uint8_t*>(nullptr));
    case 2:
      return f(static_cast<uint16_t*>(nullptr));
    case 4:
      return f(static_cast<uint32_t*>(nullptr));
    case 8:
      return f(static_cast<uint64_t*>(nullptr));
  }
  throw TypeError(detail::cat("unsupported element size ", itemsize));
}

}  // namespace phalanx::dist
