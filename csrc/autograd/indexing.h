// Tensor indexing with Python's semantics (t[i], t[a:b:s], t[None], t[...], t[idx_tensor]),
// recorded for autograd. The bindings only translate Python objects into TensorIndex items.
#pragma once
#include <optional>
#include <vector>

#include "core/tensor.h"

namespace phalanx::autograd {

// One item of an index tuple.
struct TensorIndex {
  enum class Kind { Integer, Slice, NewAxis, Ellipsis, IndexTensor };
  Kind kind = Kind::Ellipsis;
  int64_t integer = 0;                 // Integer: may be negative (counts from the end)
  std::optional<int64_t> start, stop;  // Slice: Python's bounds, clamped like a Python slice
  int64_t step = 1;                    // Slice: must be positive
  Tensor tensor;                       // IndexTensor: int32/int64, 0-d or 1-d, may be negative

  static TensorIndex integer_at(int64_t i);
  static TensorIndex slice(std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step);
  static TensorIndex new_axis();
  static TensorIndex ellipsis();
  static TensorIndex index_tensor(const Tensor& t);
};

// self[items]: a view for integers, slices, None and Ellipsis; a copy once an index tensor is
// used. IndexError when more dimensions are indexed than self has.
Tensor index(const Tensor& self, const std::vector<TensorIndex>& items);

// self[items] = value (a tensor broadcast to the target, or a number): writes into self's
// memory, recorded in place for autograd. TypeError for index tensors (they address a copy).
void index_put_(const Tensor& self, const std::vector<TensorIndex>& items, const Tensor& value);
void index_fill_(const Tensor& self, const std::vector<TensorIndex>& items, double value);

}  // namespace phalanx::autograd
