#include "ops/shape.h"

#include "core/checked_math.h"
#include "core/factory.h"

namespace phalanx::ops {

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  PHX_CHECK(!tensors.empty(), ValueError, "cat(): expected a non-empty list of tensors");
  const Tensor& first = tensors[0];
  PHX_CHECK(first.dim() > 0, ValueError, "cat(): zero-dimensional tensor cannot be concatenated");
  int64_t d = wrap_dim(dim, first.dim());
  DType dt = first.dtype();
  Shape shape = first.sizes();
  shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    PHX_CHECK(t.dim() == first.dim(), ValueError,
              "cat(): tensors must have the same number of "
              "dimensions: tensor 0 is ",
              first.describe(), ", tensor ", i, " is ", t.describe());
    for (int64_t k = 0; k < t.dim(); ++k)
      PHX_CHECK(k == d || t.sizes()[k] == first.sizes()[k], ValueError,
                "cat(): sizes of tensors "
                "must match except in dimension ",
                d, ": tensor 0 is ", first.describe(), ", tensor ", i, " is ", t.describe());
    dt = promote(dt, t.dtype());
    PHX_CHECK(add_fits(shape[d], t.sizes()[d], shape[d]), ValueError,
              "cat(): the result's dimension ", d,
              " would have more than 2**63-1 elements (tensor ", i, " is ", t.describe(), ")");
  }
  if (!is_floating(first.dtype())) {
    dt = first.dtype();
    for (auto& t : tensors) dt = promote(dt, t.dtype());
  }
  Tensor out = Tensor::empty(shape, dt);
  int64_t pos = 0;
  for (const Tensor& t : tensors) {
    if (t.sizes()[d]) out.narrow(d, pos, t.sizes()[d]).copy_from(t);
    pos += t.sizes()[d];
  }
  return out;
}

static void check_index(const Tensor& index, int64_t size, const char* op) {
  PHX_CHECK(index.dtype() == DType::Int64 || index.dtype() == DType::Int32, TypeError, op,
            "(): index must be an integer tensor, got ", dtype_name(index.dtype()));
  PHX_CHECK(index.dim() <= 1, ValueError, op, "(): index must be 0-d or 1-d, got ",
            index.describe());
  Tensor i64 = index.contiguous().to(DType::Int64);
  const int64_t* p = i64.data<int64_t>();
  for (int64_t i = 0; i < i64.numel(); ++i)
    PHX_CHECK(p[i] >= 0 && p[i] < size, IndexError, op, "(): index ", p[i],
              " is out of bounds for dimension with size ", size);
}

Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index) {
  int64_t d = wrap_dim(dim, a.dim());
  check_index(index, a.dim() ? a.sizes()[d] : 1, "index_select");
  Tensor idx = index.contiguous().to(DType::Int64).reshape({-1});
  Shape shape = a.sizes();
  if (a.dim()) shape[d] = idx.numel();
  Tensor out = Tensor::empty(shape, a.dtype());
  const int64_t* p = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i) {
    if (a.dim())
      out.select(d, i).copy_from(a.select(d, p[i]));
    else
      out.copy_from(a);
  }
  return out;
}

Tensor index_add_zeros(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src) {
  int64_t d = wrap_dim(dim, static_cast<int64_t>(shape.size()));
  Tensor out = zeros(shape, DType::Float32);
  Tensor idx = index.contiguous().to(DType::Int64).reshape({-1});
  Tensor s = src.contiguous().to(DType::Float32);
  const int64_t* p = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i) {
    Tensor dst = out.select(d, p[i]).contiguous();  // a row of a contiguous tensor may be strided
    Tensor row = s.select(d, i).contiguous();
    Tensor sum_row = Tensor::empty(dst.sizes(), DType::Float32);
    const float* x = dst.data<float>();
    const float* y = row.data<float>();
    float* z = sum_row.data<float>();
    for (int64_t k = 0; k < dst.numel(); ++k) z[k] = x[k] + y[k];
    out.select(d, p[i]).copy_from(sum_row);
  }
  return out;
}

}  // namespace phalanx::ops
