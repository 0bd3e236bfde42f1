// Joining and indexing: cat, index_select and its adjoint index_add.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace phalanx::ops {

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
// out = a.select along dim at each of the int64 indices (IndexError names a bad index).
Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index);
// A zero tensor of `shape` with src's slices added at the indices along dim.
Tensor index_add_zeros(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace phalanx::ops
