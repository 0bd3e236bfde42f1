#include <numeric>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"

namespace phalanx::autograd {

namespace {
// Gradients are float32 even when a view of an integer tensor passes through.
bool tracks(const Tensor& a) {
  return is_floating(a.dtype());
}
}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) {
  Tensor out = a.reshape(shape);
  if (!tracks(a)) return out;
  const Shape sa = a.sizes();
  record("ReshapeBackward", {out}, {a}, {},
         [sa](const BackwardContext& c) { return TensorList{c.grad().reshape(sa)}; });
  return out;
}

Tensor view(const Tensor& a, const Shape& shape) {
  Tensor out = a.view(shape);
  if (!tracks(a)) return out;
  const Shape sa = a.sizes();
  record("ViewBackward", {out}, {a}, {},
         [sa](const BackwardContext& c) { return TensorList{c.grad().reshape(sa)}; });
  return out;
}

Tensor permute(const Tensor& a, const Shape& dims) {
  Tensor out = a.permute(dims);
  if (!tracks(a)) return out;
  Shape inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i)
    inverse[wrap_dim(dims[i], a.dim())] = static_cast<int64_t>(i);
  record("PermuteBackward", {out}, {a}, {},
         [inverse](const BackwardContext& c) { return TensorList{c.grad().permute(inverse)}; });
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
  record("ExpandBackward", {out}, {a}, {},
         [sa](const BackwardContext& c) { return TensorList{ops::sum_to(c.grad(), sa)}; });
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
  PHX_CHECK(s <= e, ValueError, "flatten: start_dim ", start_dim, " cannot come after end_dim ",
            end_dim);
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
  record("CloneBackward", {out}, {a}, {},
         [](const BackwardContext& c) { return TensorList{c.grad()}; });
  return out;
}

Tensor contiguous(const Tensor& a) {
  return a.is_contiguous() ? a : clone(a);
}

Tensor detach(const Tensor& a) {
  // The alias must see writes through it and to `a` alike. A blocked tensor goes plain first:
  // a write through a blocked alias converts the alias alone (Tensor::materialize_plain), and
  // a plain storage that is shared is never made blocked again (Tensor::adopt_layout).
  a.materialize_plain();
  return a.alias();
}

Tensor to_dtype(const Tensor& a, DType dtype) {
  if (a.dtype() == dtype) return a;
  Tensor out = a.to(dtype);
  if (!tracks(a) || !is_floating(dtype)) return out;
  PHX_CHECK(dtype != DType::Float64 || !needs_history({a}), TypeError,
            "to(float64): ", a.describe(),
            " requires grad, and phalanx differentiates in float32 only; detach() it first "
            "or keep it float32");
  DType from = a.dtype();
  record("ToCopyBackward", {out}, {a}, {}, [from](const BackwardContext& c) {
    return TensorList{c.grad().to(from).to(DType::Float32)};
  });
  return out;
}

// ---- in place ------------------------------------------------------------------------------

// Writing `result` into `view`, a view of `base` that takes part in autograd: base gets a new
// node that routes the gradient of the written region to `result` and the rest to what base
// was; the view gets a node that reads its region from base's new gradient (PyTorch's
// CopySlices). The region is addressed through base's strides, which must be row-major.
static void copy_into_view(const Tensor& base, const Tensor& view, const Tensor& result,
                           const char* op) {
  PHX_CHECK(
      !(base.is_leaf() && base.requires_grad()), Error, op,
      ": a view of a leaf Variable that requires grad is being used in an in-place operation.");
  PHX_CHECK(base.is_contiguous(), Error, op,
            ": in-place modification of a view of a non-contiguous tensor is not differentiable; "
            "clone() the tensor first");
  const Shape vs = view.sizes(), vst = view.strides(), bs = base.sizes();
  const int64_t voff = view.offset() - base.offset();
  const Shape rs = result.sizes();
  view.copy_from(result);
  auto region = [vs, vst, voff](const Tensor& g) {
    return g.contiguous().as_strided(vs, vst, voff);
  };
  record("CopySlices", {base}, {base, result}, {}, [region, rs](const BackwardContext& c) {
    TensorList r(2);
    if (c.need(1)) r[1] = ops::sum_to(region(c.grad()).contiguous(), rs);
    if (c.need(0)) {
      r[0] = c.grad().clone();
      region(r[0]).fill(0);
    }
    return r;
  });
  record("AsStridedBackward", {view}, {base}, {}, [region, bs](const BackwardContext& c) {
    Tensor g = zeros(bs);
    region(g).copy_from(c.grad());
    return TensorList{g};
  });
}

void assign_(const Tensor& self, const Tensor& result, const char* op) {
  PHX_CHECK(is_floating(self.dtype()) || !is_floating(result.dtype()), TypeError, op,
            ": result type ", dtype_name(result.dtype()),
            " can't be cast to the desired output type ", dtype_name(self.dtype()));
  PHX_CHECK(ops::broadcast_shapes(self.sizes(), result.sizes(), op) == self.sizes(), ValueError, op,
            ": output with shape ", shape_str(self.sizes()), " doesn't match the broadcast shape ",
            shape_str(result.sizes()));
  if (grad_enabled() && self.impl()->view_base) {
    Tensor base(self.impl()->view_base);
    if (base.requires_grad() || result.requires_grad()) {
      Tensor r = result.sizes() == self.sizes() ? result : expand(result, self.sizes());
      copy_into_view(base, self, to_dtype(r, self.dtype()), op);
      return;
    }
  }
  bool history = grad_enabled() && (self.requires_grad() || result.requires_grad());
  if (!history) {
    self.copy_from(result);
    return;
  }
  PHX_CHECK(!(self.is_leaf() && self.requires_grad()), Error, op,
            ": a leaf Variable that requires grad is being used in an in-place operation.");
  // self will stand for `r` in the graph. A constant result still needs a node: one that
  // sends a zero gradient to what self was (as PyTorch's FillBackward does).
  Tensor r = result;
  if (!r.requires_grad())
    r = autograd::binary(
        ops::BinaryOp::Add,
        autograd::binary(ops::BinaryOp::Mul, clone(self), ops::scalar_tensor(0, DType::Float32)),
        r);
  if (r.sizes() != self.sizes()) r = expand(r, self.sizes());
  if (!r.grad_fn()) r = clone(r);  // a leaf result: self needs a node of its own
  self.copy_from(result);
  {
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
  const auto& base = self.impl()->view_base;
  bool tracked = grad_enabled() && (self.requires_grad() ||
                                    (base && base->autograd && base->autograd->requires_grad));
  if (!tracked) {
    self.fill(value);
    return;
  }
  assign_(self, full(self.sizes(), value, self.dtype()), "fill_");
}

}  // namespace phalanx::autograd
