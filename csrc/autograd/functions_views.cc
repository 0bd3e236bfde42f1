#include <numeric>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"

namespace phalanx::autograd {

namespace {
// Gradients are float32 even when a view of an integer tensor passes through.
bool tracks(const Tensor& a) { return is_floating(a.dtype()); }
}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) {
  Tensor out = a.reshape(shape);
  if (!tracks(a)) return out;
  const Shape sa = a.sizes();
  record("ReshapeBackward", {out}, {a}, {}, [sa](const BackwardContext& c) {
    return TensorList{c.grad().reshape(sa)};
  });
  return out;
}

Tensor view(const Tensor& a, const Shape& shape) {
  Tensor out = a.view(shape);
  if (!tracks(a)) return out;
  const Shape sa = a.sizes();
  record("ViewBackward", {out}, {a}, {}, [sa](const BackwardContext& c) {
    return TensorList{c.grad().reshape(sa)};
  });
  return out;
}

Tensor permute(const Tensor& a, const Shape& dims) {
  Tensor out = a.permute(dims);
  if (!tracks(a)) return out;
  Shape inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inverse[wrap_dim(dims[i], a.dim())] = static_cast<int64_t>(i);
  record("PermuteBackward", {out}, {a}, {}, [inverse](const BackwardContext& c) {
    return TensorList{c.grad().permute(inverse)};
  });
  return out;
}

Tensor transpose(const Tensor& a, int64_t d0, int64_t d1) {
  if (a.dim() == 0) return a;
  Shape perm(a.dim());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[wrap_dim(d0, a.dim())], perm[wrap_dim(d1, a.dim())]);
  return permute(a, perm);
}

Tensor expand(const Tensor& a, const Shape& shape) {
  Tensor out = a.expand(shape);
  if (!tracks(a)) return out;
  const Shape sa = a.sizes();
  record("ExpandBackward", {out}, {a}, {}, [sa](const BackwardContext& c) {
    return TensorList{ops::sum_to(c.grad(), sa)};
  });
  return out;
}

Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length, int64_t step) {
  Tensor out = a.narrow(dim, start, length, step);
  if (!tracks(a)) return out;
  const Shape sa = a.sizes();
  record("SliceBackward", {out}, {a}, {}, [sa, dim, start, length, step](const BackwardContext& c) {
    Tensor g = zeros(sa);
    g.narrow(dim, start, length, step).copy_from(c.grad());
    return TensorList{g};
  });
  return out;
}

Tensor select(const Tensor& a, int64_t dim, int64_t index) {
  Tensor out = a.select(dim, index);
  if (!tracks(a)) return out;
  const Shape sa = a.sizes();
  record("SelectBackward", {out}, {a}, {}, [sa, dim, index](const BackwardContext& c) {
    Tensor g = zeros(sa);
    g.select(dim, index).copy_from(c.grad());
    return TensorList{g};
  });
  return out;
}

Tensor unsqueeze(const Tensor& a, int64_t dim) {
  Shape s = a.sizes();
  s.insert(s.begin() + wrap_dim(dim, a.dim() + 1), 1);
  return reshape(a, s);
}

Tensor squeeze(const Tensor& a, std::optional<int64_t> dim) {
  Shape s;
  if (dim) {
    if (a.dim() == 0) return reshape(a, {});
    int64_t d = wrap_dim(*dim, a.dim());
    s = a.sizes();
    if (s[d] == 1) s.erase(s.begin() + d);
  } else {
    for (int64_t v : a.sizes())
      if (v != 1) s.push_back(v);
  }
  return reshape(a, s);
}

Tensor flatten(const Tensor& a, int64_t start_dim, int64_t end_dim) {
  if (a.dim() == 0) return reshape(a, {1});
  int64_t s = wrap_dim(start_dim, a.dim()), e = wrap_dim(end_dim, a.dim());
  PHX_CHECK(s <= e, ValueError, "flatten: start_dim ", start_dim, " cannot come after end_dim ", end_dim);
  Shape shape(a.sizes().begin(), a.sizes().begin() + s);
  int64_t m = 1;
  for (int64_t i = s; i <= e; ++i) m *= a.size(i);
  shape.push_back(m);
  shape.insert(shape.end(), a.sizes().begin() + e + 1, a.sizes().end());
  return reshape(a, shape);
}

Tensor clone(const Tensor& a) {
  Tensor out = a.clone();
  if (!tracks(a)) return out;
  record("CloneBackward", {out}, {a}, {}, [](const BackwardContext& c) { return TensorList{c.grad()}; });
  return out;
}

Tensor contiguous(const Tensor& a) { return a.is_contiguous() ? a : clone(a); }

Tensor detach(const Tensor& a) { return a.alias(); }

Tensor to_dtype(const Tensor& a, DType dtype) {
  if (a.dtype() == dtype) return a;
  Tensor out = a.to(dtype);
  if (!tracks(a) || !is_floating(dtype)) return out;
  DType from = a.dtype();
  record("ToCopyBackward", {out}, {a}, {}, [from](const BackwardContext& c) {
    return TensorList{c.grad().to(from).to(DType::Float32)};
  });
  return out;
}

// ---- in place ------------------------------------------------------------------------------

void assign_(const Tensor& self, const Tensor& result, const char* op) {
  bool history = grad_enabled() && (self.requires_grad() || result.requires_grad());
  if (history) {
    PHX_CHECK(!(self.is_leaf() && self.requires_grad()), Error, op,
              ": a leaf Variable that requires grad is being used in an in-place operation.");
    const auto& base = self.impl()->view_base;
    bool base_tracked = base && base->autograd && base->autograd->requires_grad;
    PHX_CHECK(!base_tracked && !(base && result.requires_grad()), Error, op,
              ": in-place modification of a view is not differentiable in phalanx; clone() the "
              "tensor first, or do it under no_grad()");
  }
  PHX_CHECK(is_floating(self.dtype()) || !is_floating(result.dtype()), TypeError, op,
            ": result type ", dtype_name(result.dtype()), " can't be cast to the desired output type ",
            dtype_name(self.dtype()));
  PHX_CHECK(ops::broadcast_shapes(self.sizes(), result.sizes(), op) == self.sizes(), ValueError, op,
            ": output with shape ", shape_str(self.sizes()), " doesn't match the broadcast shape ",
            shape_str(result.sizes()));
  self.copy_from(result);
  if (history) {
    // self now stands for `result` in the graph
    Tensor r = result.sizes() == self.sizes() ? result : expand(result, self.sizes());
    if (!r.grad_fn()) r = clone(r);  // a leaf result: self needs a node of its own
    AutogradMeta& meta = self.autograd_meta();
    meta.requires_grad = true;
    meta.grad_fn = r.grad_fn();
    meta.output_nr = r.autograd_meta().output_nr;
  }
}

void binary_(ops::BinaryOp op, const Tensor& self, const Tensor& other) {
  bool history = grad_enabled() && (self.requires_grad() || other.requires_grad());
  // With history, compute from a copy of self: the op may save its input, which is overwritten.
  Tensor input = history && !self.is_leaf() ? clone(self) : self;
  if (history && self.is_leaf() && self.requires_grad()) input = self;  // assign_ refuses below
  assign_(self, autograd::binary(op, input, other), ops::binary_name(op));
}

void copy_(const Tensor& self, const Tensor& src) {
  if (self.same(src)) return;
  assign_(self, src, "copy_");
}

void fill_(const Tensor& self, double value) {
  if (!(grad_enabled() && self.requires_grad())) {
    self.fill(value);
    return;
  }
  // a constant: the history carries a zero gradient to what self was
  Tensor zero = autograd::binary(ops::BinaryOp::Mul, clone(self), ops::scalar_tensor(0, DType::Float32));
  assign_(self, autograd::binary(ops::BinaryOp::Add, zero, ops::scalar_tensor(value, DType::Float32)), "fill_");
}

}  // namespace phalanx::autograd
