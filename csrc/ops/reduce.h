// Reductions over a set of dimensions (empty set = all), with keepdim.
#pragma once
#include <optional>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace phalanx::ops {

Tensor sum(const Tensor& a, std::vector<int64_t> dims, bool keepdim);
Tensor mean(const Tensor& a, std::vector<int64_t> dims, bool keepdim);
// Max/min of all elements (0-d result).
Tensor amax_all(const Tensor& a, bool is_max);
// Values and int64 indices of the max/min along one dimension (first occurrence wins).
std::pair<Tensor, Tensor> max_dim(const Tensor& a, int64_t dim, bool keepdim, bool is_max);
// The int64 index of the maximum, over all elements (flattened) or along dim.
Tensor argmax(const Tensor& a, std::optional<int64_t> dim, bool keepdim, bool is_max = true);

// The shape a reduction produces, and the sorted, wrapped, de-duplicated dims it reduces.
Shape reduced_shape(const Shape& s, const std::vector<int64_t>& dims, bool keepdim);
std::vector<int64_t> normalize_dims(std::vector<int64_t> dims, int64_t ndim);

}  // namespace phalanx::ops
