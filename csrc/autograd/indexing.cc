#include "autograd/indexing.h"

#include <algorithm>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/error.h"
#include "ops/elementwise.h"

namespace phalanx::autograd {

TensorIndex TensorIndex::integer_at(int64_t i) {
  TensorIndex t;
  t.kind = Kind::Integer;
  t.integer = i;
  return t;
}

TensorIndex TensorIndex::slice(std::optional<int64_t> start, std::optional<int64_t> stop,
                               int64_t step) {
  PHX_CHECK(step > 0, ValueError, "step must be greater than zero, got ", step);
  TensorIndex t;
  t.kind = Kind::Slice;
  t.start = start;
  t.stop = stop;
  t.step = step;
  return t;
}

TensorIndex TensorIndex::new_axis() {
  TensorIndex t;
  t.kind = Kind::NewAxis;
  return t;
}

TensorIndex TensorIndex::ellipsis() {
  return TensorIndex();
}

TensorIndex TensorIndex::index_tensor(const Tensor& idx) {
  PHX_CHECK(idx.dtype() == DType::Int64 || idx.dtype() == DType::Int32, TypeError,
            "tensor indices must be int64 (boolean masks are not supported), got ", idx.describe());
  PHX_CHECK(idx.dim() <= 1, IndexError, "only 0-d or 1-d integer index tensors are supported, got ",
            idx.describe());
  TensorIndex t;
  t.kind = Kind::IndexTensor;
  t.tensor = idx;
  return t;
}

namespace {

// Python's slice.indices(n) for a positive step: bounds clamped into [0, n].
struct SliceRange {
  int64_t start, length;
};
SliceRange slice_range(const TensorIndex& s, int64_t n) {
  auto clamp_bound = [n](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t b = *v < 0 ? *v + n : *v;
    return std::clamp<int64_t>(b, 0, n);
  };
  int64_t start = clamp_bound(s.start, 0);
  int64_t stop = clamp_bound(s.stop, n);
  int64_t length = stop > start ? (stop - start - 1) / s.step + 1 : 0;
  return {start, length};
}

// Negative entries of an index tensor count from the end of a dimension of size n.
Tensor wrap_negative(const Tensor& idx, int64_t n) {
  using ops::BinaryOp;
  return ops::where(
      ops::binary(BinaryOp::Lt, idx, ops::scalar_tensor(0, DType::Int64)),
      ops::binary(BinaryOp::Add, idx, ops::scalar_tensor(static_cast<double>(n), DType::Int64)),
      idx.to(DType::Int64));
}

// The view (or copy) a write through `items` goes to, without history: it only addresses memory.
Tensor write_target(const Tensor& self, const std::vector<TensorIndex>& items) {
  Tensor target;
  {
    GradModeGuard no_history(false);
    target = index(self, items);
  }
  PHX_CHECK(target.storage() == self.storage(), TypeError,
            "assignment through an integer-tensor index is not supported; use slices");
  return target;
}

}  // namespace

Tensor index(const Tensor& self, const std::vector<TensorIndex>& items) {
  using Kind = TensorIndex::Kind;
  int64_t consumed = 0;  // how many of self's dims the index list addresses
  for (const auto& it : items)
    if (it.kind != Kind::NewAxis && it.kind != Kind::Ellipsis) ++consumed;
  PHX_CHECK(consumed <= self.dim(), IndexError, "too many indices for tensor of dimension ",
            self.dim());
  Tensor t = self;
  int64_t d = 0;  // current dim of t
  for (const auto& it : items) {
    switch (it.kind) {
      case Kind::NewAxis:
        t = unsqueeze(t, d++);
        break;
      case Kind::Ellipsis:
        d += self.dim() - consumed;
        consumed = self.dim();
        break;
      case Kind::Integer:
        t = select(t, d, it.integer);
        break;
      case Kind::Slice: {
        SliceRange r = slice_range(it, t.size(d));
        t = narrow(t, d++, r.start, r.length, it.step);
        break;
      }
      case Kind::IndexTensor: {
        Tensor wrapped = wrap_negative(it.tensor, t.size(d));
        t = index_select(t, d, wrapped.reshape({-1}));
        if (it.tensor.dim() == 0)
          t = select(t, d, 0);
        else
          ++d;
        break;
      }
    }
  }
  return t;
}

void index_put_(const Tensor& self, const std::vector<TensorIndex>& items, const Tensor& value) {
  copy_(write_target(self, items), value);
}

void index_fill_(const Tensor& self, const std::vector<TensorIndex>& items, double value) {
  fill_(write_target(self, items), value);
}

}  // namespace phalanx::autograd
