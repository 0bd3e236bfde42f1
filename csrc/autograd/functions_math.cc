#include <numeric>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"
#include "ops/linear.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace phalanx::autograd {

using ops::BinaryOp;
using ops::UnaryOp;

namespace {

// Plain (history-free) helpers for use inside backward functions.
Tensor mul(const Tensor& a, const Tensor& b) {
  return ops::binary(BinaryOp::Mul, a, b);
}
Tensor div(const Tensor& a, const Tensor& b) {
  return ops::binary(BinaryOp::Div, a, b);
}
Tensor add(const Tensor& a, const Tensor& b) {
  return ops::binary(BinaryOp::Add, a, b);
}
Tensor neg(const Tensor& a) {
  return ops::unary(UnaryOp::Neg, a);
}
Tensor scalar(double v) {
  return ops::scalar_tensor(v, DType::Float32);
}
Tensor as_float(const Tensor& a) {
  return a.to(DType::Float32);
}

// Differentiable only in floating inputs: integer operands get no edge.
bool differentiable(const Tensor& t) {
  return is_floating(t.dtype());
}

}  // namespace

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary(op, a, b);
  if (out.dtype() != DType::Float32 || ops::is_comparison(op)) return out;
  const Shape sa = a.sizes(), sb = b.sizes();
  const TensorList inputs{differentiable(a) ? a : Tensor(), differentiable(b) ? b : Tensor()};
  switch (op) {
    case BinaryOp::Add:
    case BinaryOp::Sub: {
      bool sub = op == BinaryOp::Sub;
      record(sub ? "SubBackward" : "AddBackward", {out}, inputs, {},
             [sa, sb, sub](const BackwardContext& c) {
               TensorList r(2);
               if (c.need(0)) r[0] = ops::sum_to(c.grad(), sa);
               if (c.need(1)) r[1] = ops::sum_to(sub ? neg(c.grad()) : c.grad(), sb);
               return r;
             });
      break;
    }
    case BinaryOp::Mul:
      record("MulBackward", {out}, inputs, {a, b}, [sa, sb](const BackwardContext& c) {
        TensorList r(2);
        if (c.need(0)) r[0] = ops::sum_to(mul(c.grad(), as_float(c.saved[1])), sa);
        if (c.need(1)) r[1] = ops::sum_to(mul(c.grad(), as_float(c.saved[0])), sb);
        return r;
      });
      break;
    case BinaryOp::Div:
      record("DivBackward", {out}, inputs, {a, b}, [sa, sb](const BackwardContext& c) {
        TensorList r(2);
        Tensor bb = as_float(c.saved[1]);
        if (c.need(0)) r[0] = ops::sum_to(div(c.grad(), bb), sa);
        if (c.need(1))
          r[1] = ops::sum_to(neg(div(mul(c.grad(), as_float(c.saved[0])), mul(bb, bb))), sb);
        return r;
      });
      break;
    case BinaryOp::Pow:
      record("PowBackward", {out}, inputs, {a, b, out}, [sa, sb](const BackwardContext& c) {
        TensorList r(2);
        Tensor x = as_float(c.saved[0]), e = as_float(c.saved[1]), y = c.saved[2];
        if (c.need(0)) {
          Tensor d =
              mul(e, ops::binary(BinaryOp::Pow, x, ops::binary(BinaryOp::Sub, e, scalar(1))));
          // d/dx x^0 is 0 everywhere, including x = 0 where the formula gives 0 * inf
          d = ops::where(ops::binary(BinaryOp::Eq, e, scalar(0)), scalar(0), d);
          r[0] = ops::sum_to(mul(c.grad(), d), sa);
        }
        if (c.need(1)) {
          Tensor d = mul(y, ops::unary(UnaryOp::Log, x));
          d = ops::where(ops::binary(BinaryOp::Eq, x, scalar(0)), scalar(0), d);
          r[1] = ops::sum_to(mul(c.grad(), d), sb);
        }
        return r;
      });
      break;
    case BinaryOp::Maximum:
    case BinaryOp::Minimum: {
      BinaryOp loses = op == BinaryOp::Maximum ? BinaryOp::Lt : BinaryOp::Gt;
      BinaryOp wins = op == BinaryOp::Maximum ? BinaryOp::Gt : BinaryOp::Lt;
      record(op == BinaryOp::Maximum ? "MaximumBackward" : "MinimumBackward", {out}, inputs, {a, b},
             [sa, sb, wins, loses](const BackwardContext& c) {
               // PyTorch's rule: each side gets the gradient unless it lost the comparison, and
               // ties split it in half. A NaN on either side compares false both ways, so both
               // sides get the whole gradient (1 - lost - tie/2 is 1 there).
               Tensor x = c.saved[0], y = c.saved[1];
               Tensor half_tie = mul(as_float(ops::binary(BinaryOp::Eq, x, y)), scalar(0.5));
               auto share = [&](BinaryOp lost) {
                 return ops::binary(
                     BinaryOp::Sub,
                     ops::binary(BinaryOp::Sub, scalar(1), as_float(ops::binary(lost, x, y))),
                     half_tie);
               };
               TensorList r(2);
               if (c.need(0)) r[0] = ops::sum_to(mul(c.grad(), share(loses)), sa);
               if (c.need(1)) r[1] = ops::sum_to(mul(c.grad(), share(wins)), sb);
               return r;
             });
      break;
    }
    default:
      break;
  }
  return out;
}

Tensor unary(UnaryOp op, const Tensor& a) {
  Tensor out = ops::unary(op, a);
  if (out.dtype() != DType::Float32 || !differentiable(a)) return out;
  auto one = [&](const char* name, TensorList saved,
                 std::function<Tensor(const Tensor&, const TensorList&)> d) {
    record(name, {out}, {a}, saved,
           [d](const BackwardContext& c) { return TensorList{d(c.grad(), c.saved)}; });
  };
  switch (op) {
    case UnaryOp::Neg:
      one("NegBackward", {}, [](const Tensor& g, const TensorList&) { return neg(g); });
      break;
    case UnaryOp::Exp:
      one("ExpBackward", {out}, [](const Tensor& g, const TensorList& s) { return mul(g, s[0]); });
      break;
    case UnaryOp::Log:
      one("LogBackward", {a}, [](const Tensor& g, const TensorList& s) { return div(g, s[0]); });
      break;
    case UnaryOp::Sqrt:
      one("SqrtBackward", {out},
          [](const Tensor& g, const TensorList& s) { return div(g, mul(s[0], scalar(2))); });
      break;
    case UnaryOp::Abs:
      one("AbsBackward", {a}, [](const Tensor& g, const TensorList& s) {
        return mul(g, ops::unary(UnaryOp::Sign, s[0]));
      });
      break;
    case UnaryOp::Reciprocal:
      one("ReciprocalBackward", {out},
          [](const Tensor& g, const TensorList& s) { return neg(mul(g, mul(s[0], s[0]))); });
      break;
    case UnaryOp::Sin:
      one("SinBackward", {a}, [](const Tensor& g, const TensorList& s) {
        return mul(g, ops::unary(UnaryOp::Cos, s[0]));
      });
      break;
    case UnaryOp::Cos:
      one("CosBackward", {a}, [](const Tensor& g, const TensorList& s) {
        return neg(mul(g, ops::unary(UnaryOp::Sin, s[0])));
      });
      break;
    case UnaryOp::Sign:
      one("SignBackward", {}, [](const Tensor& g, const TensorList&) { return zeros(g.sizes()); });
      break;
    default:
      break;
  }
  return out;
}

Tensor clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi) {
  Tensor out = ops::clamp(a, lo, hi);
  if (out.dtype() != DType::Float32 || !differentiable(a)) return out;
  record("ClampBackward", {out}, {a}, {a}, [lo, hi](const BackwardContext& c) {
    Tensor x = c.saved[0];
    Tensor keep = ops::scalar_tensor(1, DType::Bool);
    if (lo) keep = ops::binary(BinaryOp::Mul, keep, ops::binary(BinaryOp::Ge, x, scalar(*lo)));
    if (hi) keep = ops::binary(BinaryOp::Mul, keep, ops::binary(BinaryOp::Le, x, scalar(*hi)));
    return TensorList{ops::where(keep, c.grad(), scalar(0))};
  });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = ops::where(cond, a, b);
  if (out.dtype() != DType::Float32) return out;
  const Shape sa = a.sizes(), sb = b.sizes();
  record("WhereBackward", {out},
         {Tensor(), differentiable(a) ? a : Tensor(), differentiable(b) ? b : Tensor()}, {cond},
         [sa, sb](const BackwardContext& c) {
           TensorList r(3);
           if (c.need(1)) r[1] = ops::sum_to(ops::where(c.saved[0], c.grad(), scalar(0)), sa);
           if (c.need(2)) r[2] = ops::sum_to(ops::where(c.saved[0], scalar(0), c.grad()), sb);
           return r;
         });
  return out;
}

// The gradient of a reduction, broadcast back over the reduced dims.
static Tensor expand_reduced(const Tensor& g, const Shape& in_shape,
                             const std::vector<int64_t>& dims, bool keepdim) {
  auto nd = ops::normalize_dims(dims, static_cast<int64_t>(in_shape.size()));
  Shape kept = ops::reduced_shape(in_shape, nd, true);
  Tensor gk = keepdim ? g : g.reshape(kept);
  return gk.expand(in_shape).contiguous();
}

Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = ops::sum(a, dims, keepdim);
  if (!differentiable(a)) return out;
  const Shape sa = a.sizes();
  record("SumBackward", {out}, {a}, {}, [sa, dims, keepdim](const BackwardContext& c) {
    return TensorList{expand_reduced(c.grad(), sa, dims, keepdim)};
  });
  return out;
}

Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = ops::mean(a, dims, keepdim);
  const Shape sa = a.sizes();
  const double count = static_cast<double>(a.numel()) / std::max<int64_t>(out.numel(), 1);
  record("MeanBackward", {out}, {a}, {}, [sa, dims, keepdim, count](const BackwardContext& c) {
    return TensorList{mul(expand_reduced(c.grad(), sa, dims, keepdim), scalar(1.0 / count))};
  });
  return out;
}

Tensor amax_all(const Tensor& a, bool is_max) {
  Tensor out = ops::amax_all(a, is_max);
  if (!differentiable(a)) return out;
  record(is_max ? "MaxBackward" : "MinBackward", {out}, {a}, {a, out},
         [](const BackwardContext& c) {
           // the gradient is shared evenly among all elements equal to the extreme, as in
           // PyTorch; when the extreme is NaN, among the NaNs (x == NaN is never true)
           const Tensor &x = c.saved[0], &m = c.saved[1];
           Tensor hit = add(as_float(ops::binary(BinaryOp::Eq, x, m)),
                            mul(as_float(ops::binary(BinaryOp::Ne, x, x)),
                                as_float(ops::binary(BinaryOp::Ne, m, m))));
           Tensor n = ops::sum(hit, {}, false);
           return TensorList{mul(hit, div(c.grad(), n))};
         });
  return out;
}

std::pair<Tensor, Tensor> max_dim(const Tensor& a, int64_t dim, bool keepdim, bool is_max) {
  auto [values, indices] = ops::max_dim(a, dim, keepdim, is_max);
  if (!differentiable(a)) return {values, indices};
  const Shape sa = a.sizes();
  record(is_max ? "MaxBackward" : "MinBackward", {values}, {a}, {indices},
         [sa, dim, keepdim](const BackwardContext& c) {
           int64_t d = wrap_dim(dim, static_cast<int64_t>(sa.size()));
           Tensor idx = c.saved[0], g = c.grad();
           if (!keepdim && !sa.empty()) {
             idx = idx.unsqueeze(d);
             g = g.unsqueeze(d);
           }
           // one-hot of the index along d, times the gradient
           Shape pos_shape(sa.size(), 1);
           if (!sa.empty()) pos_shape[d] = sa[d];
           Tensor pos = arange(0, sa.empty() ? 1 : static_cast<double>(sa[d]), 1, DType::Int64)
                            .reshape(pos_shape);
           Tensor hit = as_float(ops::binary(BinaryOp::Eq, pos, idx));
           return TensorList{mul(hit, g).reshape(sa)};
         });
  return {values, indices};
}

static Tensor bmm(const Tensor& a, const Tensor& b) {
  Tensor out = ops::bmm(a, b);
  record("BmmBackward", {out}, {a, b}, {a, b}, [](const BackwardContext& c) {
    TensorList r(2);
    Tensor g = c.grad().contiguous();
    const Tensor &x = c.saved[0], &y = c.saved[1];
    // the transposes are views: ops::bmm reads them in place
    if (c.need(0)) r[0] = ops::sum_to(ops::bmm(g, y.transpose(1, 2)), x.sizes());
    if (c.need(1)) r[1] = ops::sum_to(ops::bmm(x.transpose(1, 2), g), y.sizes());
    return r;
  });
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  PHX_CHECK(a.dim() >= 1 && b.dim() >= 1, ValueError,
            "matmul: both arguments need at least 1 "
            "dimension, got ",
            a.describe(), " and ", b.describe());
  PHX_CHECK(a.dtype() == DType::Float32 && b.dtype() == DType::Float32, TypeError,
            "matmul: expected float32 tensors, got ", a.describe(), " and ", b.describe());
  Tensor a2 = a.dim() == 1 ? unsqueeze(a, 0) : a;
  Tensor b2 = b.dim() == 1 ? unsqueeze(b, -1) : b;
  const int64_t M = a2.size(-2), K = a2.size(-1), K2 = b2.size(-2), N = b2.size(-1);
  PHX_CHECK(K == K2, ValueError, "matmul: shapes ", shape_str(a.sizes()), " and ",
            shape_str(b.sizes()), " cannot be multiplied (", K, " != ", K2, ")");
  Shape ba(a2.sizes().begin(), a2.sizes().end() - 2), bb(b2.sizes().begin(), b2.sizes().end() - 2);
  Shape batch = ops::broadcast_shapes(ba, bb, "matmul");
  auto batched = [&](const Tensor& t, const Shape& own, int64_t r, int64_t c) {
    Shape full = batch;
    full.push_back(r);
    full.push_back(c);
    // a side without batch dims stays a single matrix that bmm broadcasts itself
    if (own.empty()) return reshape(t, {1, r, c});
    return reshape(contiguous(expand(t, full)), {-1, r, c});
  };
  Tensor out = bmm(batched(a2, ba, M, K), batched(b2, bb, K, N));
  Shape out_shape = batch;
  if (a.dim() > 1) out_shape.push_back(M);
  if (b.dim() > 1) out_shape.push_back(N);
  return reshape(out, out_shape);
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  Tensor out = ops::cat(tensors, dim);
  if (out.dtype() != DType::Float32) return out;
  int64_t d = wrap_dim(dim, out.dim());
  std::vector<int64_t> lengths;
  TensorList inputs;
  for (const auto& t : tensors) {
    lengths.push_back(t.size(d));
    inputs.push_back(differentiable(t) ? t : Tensor());
  }
  record("CatBackward", {out}, inputs, {}, [d, lengths](const BackwardContext& c) {
    TensorList r(lengths.size());
    int64_t pos = 0;
    for (size_t i = 0; i < lengths.size(); ++i) {
      if (c.need(i)) r[i] = c.grad().narrow(d, pos, lengths[i]).contiguous();
      pos += lengths[i];
    }
    return r;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  PHX_CHECK(!tensors.empty(), ValueError, "stack(): expected a non-empty list of tensors");
  int64_t d = wrap_dim(dim, tensors[0].dim() + 1);
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    PHX_CHECK(tensors[i].sizes() == tensors[0].sizes(), ValueError,
              "stack(): expects each tensor "
              "to be equal size, but got ",
              tensors[0].describe(), " at entry 0 and ", tensors[i].describe(), " at entry ", i);
    parts.push_back(unsqueeze(tensors[i], d));
  }
  return cat(parts, d);
}

Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index) {
  Tensor out = ops::index_select(a, dim, index);
  if (!differentiable(a)) return out;
  const Shape sa = a.sizes();
  record("IndexSelectBackward", {out}, {a}, {index}, [sa, dim](const BackwardContext& c) {
    return TensorList{ops::index_add_zeros(sa, dim, c.saved[0], c.grad())};
  });
  return out;
}

}  // namespace phalanx::autograd
