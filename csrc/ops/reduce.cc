#include "ops/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace phalanx::ops {

std::vector<int64_t> normalize_dims(std::vector<int64_t> dims, int64_t ndim) {
  if (dims.empty()) {
    for (int64_t i = 0; i < ndim; ++i) dims.push_back(i);
    return dims;
  }
  for (auto& d : dims) d = wrap_dim(d, ndim);
  std::sort(dims.begin(), dims.end());
  PHX_CHECK(std::adjacent_find(dims.begin(), dims.end()) == dims.end(), ValueError,
            "dim appears multiple times in the list of dims");
  if (ndim == 0) dims.clear();
  return dims;
}

Shape reduced_shape(const Shape& s, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
    bool red = std::binary_search(dims.begin(), dims.end(), i);
    if (!red)
      out.push_back(s[i]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

// Moves the reduced dims last and makes the data contiguous, so the reduction is a loop over
// `outer` rows of `inner` elements each.
static Tensor rows_view(const Tensor& a, const std::vector<int64_t>& dims, int64_t& outer,
                        int64_t& inner) {
  Shape perm;
  for (int64_t i = 0; i < a.dim(); ++i)
    if (!std::binary_search(dims.begin(), dims.end(), i)) perm.push_back(i);
  for (int64_t d : dims) perm.push_back(d);
  Tensor p = a.dim() ? a.permute(perm).contiguous() : a.contiguous();
  inner = 1;
  for (int64_t d : dims) inner *= a.sizes()[d];
  outer = inner ? a.numel() / inner : shape_numel(reduced_shape(a.sizes(), dims, false));
  return p;
}

Tensor sum(const Tensor& a, std::vector<int64_t> dims_in, bool keepdim) {
  auto dims = normalize_dims(std::move(dims_in), a.dim());
  int64_t outer, inner;
  Tensor p = rows_view(a, dims, outer, inner);
  Shape shape = reduced_shape(a.sizes(), dims, keepdim);
  if (is_floating(a.dtype())) {
    // float64 sums in double; float32 and the reduced floats give float32
    const DType dt = a.dtype() == DType::Float64 ? DType::Float64 : DType::Float32;
    Tensor f = p.to(dt);
    Tensor out = Tensor::empty(shape, dt);
    dispatch_compute(dt, "sum", [&](auto tag) {
      using T = decltype(tag);
      const T* src = f.data<T>();
      T* dst = out.data<T>();
#pragma omp parallel for if (outer * inner > 32768)
      for (int64_t o = 0; o < outer; ++o) {
        double acc = 0;  // double accumulation keeps long sums close to PyTorch's pairwise sums
        const T* row = src + o * inner;
        for (int64_t i = 0; i < inner; ++i) acc += row[i];
        dst[o] = static_cast<T>(acc);
      }
    });
    return out;
  }
  Tensor f = p.to(DType::Int64);  // integer and bool sums are int64, as in PyTorch
  Tensor out = Tensor::empty(shape, DType::Int64);
  const int64_t* src = f.data<int64_t>();
  int64_t* dst = out.data<int64_t>();
  for (int64_t o = 0; o < outer; ++o) {
    int64_t acc = 0;
    for (int64_t i = 0; i < inner; ++i) acc += src[o * inner + i];
    dst[o] = acc;
  }
  return out;
}

Tensor mean(const Tensor& a, std::vector<int64_t> dims_in, bool keepdim) {
  PHX_CHECK(is_floating(a.dtype()), TypeError, "mean(): input dtype must be floating point, got ",
            dtype_name(a.dtype()));
  auto dims = normalize_dims(std::move(dims_in), a.dim());
  int64_t count = 1;
  for (int64_t d : dims) count *= a.sizes()[d];
  Tensor s = sum(a, dims, keepdim);
  if (s.dtype() == DType::Float64) {
    double* p = s.data<double>();
    for (int64_t i = 0; i < s.numel(); ++i) p[i] = count ? p[i] / static_cast<double>(count) : NAN;
    return s;
  }
  float* p = s.data<float>();
  const float scale = count ? 1.0f / static_cast<float>(count) : NAN;
  for (int64_t i = 0; i < s.numel(); ++i) p[i] = count ? p[i] * scale : NAN;
  return s;
}

template <typename T>
static void arg_extreme_rows(const T* src, int64_t outer, int64_t inner, bool is_max, T* values,
                             int64_t* indices) {
  for (int64_t o = 0; o < outer; ++o) {
    const T* row = src + o * inner;
    int64_t best = 0;
    for (int64_t i = 1; i < inner; ++i) {
      T v = row[i], b = row[best];
      if (b != b) break;  // NaN wins and stays, as in PyTorch
      if (v != v || (is_max ? v > b : v < b)) best = i;
    }
    if (values) values[o] = row[best];
    indices[o] = best;
  }
}

std::pair<Tensor, Tensor> max_dim(const Tensor& a, int64_t dim, bool keepdim, bool is_max) {
  const char* name = is_max ? "max" : "min";
  std::vector<int64_t> dims{wrap_dim(dim, a.dim())};
  if (a.dim() == 0) dims.clear();
  PHX_CHECK(a.dim() == 0 || a.sizes()[dims[0]] > 0, IndexError, name,
            "(): cannot reduce over a zero-size dimension ", dims[0], " of ", a.describe());
  int64_t outer, inner;
  Tensor p = rows_view(a, dims, outer, inner);
  Shape shape = reduced_shape(a.sizes(), dims, keepdim);
  Tensor values = Tensor::empty(shape, a.dtype());
  Tensor indices = Tensor::empty(shape, DType::Int64);
  dispatch_compute(a.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    arg_extreme_rows<T>(p.data<T>(), outer, inner, is_max, values.data<T>(),
                        indices.data<int64_t>());
  });
  return {values, indices};
}

Tensor amax_all(const Tensor& a, bool is_max) {
  PHX_CHECK(a.numel() > 0, ValueError, is_max ? "max" : "min",
            "(): expected a non-empty tensor, got ", a.describe());
  return max_dim(a.reshape({-1}), 0, false, is_max).first;
}

Tensor argmax(const Tensor& a, std::optional<int64_t> dim, bool keepdim, bool is_max) {
  const char* name = is_max ? "argmax" : "argmin";  // max_dim's own errors would say max/min
  if (!dim) {
    PHX_CHECK(a.numel() > 0, ValueError, name, "(): expected a non-empty tensor, got ",
              a.describe());
    Tensor idx = max_dim(a.reshape({-1}), 0, false, is_max).second;
    return keepdim ? idx.reshape(Shape(a.dim(), 1)) : idx;
  }
  const int64_t d = wrap_dim(*dim, a.dim());
  PHX_CHECK(a.dim() == 0 || a.size(d) > 0, IndexError, name,
            "(): cannot reduce over a zero-size dimension ", d, " of ", a.describe());
  return max_dim(a, *dim, keepdim, is_max).second;
}

}  // namespace phalanx::ops
