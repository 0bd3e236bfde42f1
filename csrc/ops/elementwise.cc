#include "ops/elementwise.h"

#include <cmath>

#include "core/factory.h"
#include "core/strided_loop.h"
#include "ops/elementwise_blocked.h"
#include "ops/reduce.h"

namespace phalanx::ops {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    PHX_CHECK(da == db || da == 1 || db == 1, ValueError, op, ": shapes ", shape_str(a), " and ",
              shape_str(b), " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

DType binary_result_dtype(BinaryOp op, DType a, DType b) {
  if (is_comparison(op)) return DType::Bool;
  DType p = promote(a, b);
  if (op == BinaryOp::Div && !is_floating(p)) return DType::Float32;  // true division
  return p;
}

Tensor scalar_tensor(double v, DType dtype) {
  return full({}, v, dtype);
}

// Runs out[i] = f(a[i], b[i]) with a and b already of type T and expanded to out's shape.
template <typename T, typename R, typename F>
static void binary_loop(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  R* o = out.data<R>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  if (a.is_contiguous() && b.is_contiguous()) {
    const int64_t n = out.numel();
#pragma omp parallel for if (n > 32768)
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<R>(f(pa[i], pb[i]));
    return;
  }
  strided_loop<3>(
      out.sizes(), {&out.strides(), &a.strides(), &b.strides()},
      [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& in) {
        R* po = o + off[0];
        const T* xa = pa + off[1];
        const T* xb = pb + off[2];
        for (int64_t i = 0; i < n; ++i)
          po[i * in[0]] = static_cast<R>(f(xa[i * in[1]], xb[i * in[2]]));
      });
}

template <typename T, typename R>
static void run_binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::Add:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return x + y; });
    case BinaryOp::Sub:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return x - y; });
    case BinaryOp::Mul:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return x * y; });
    case BinaryOp::Div:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return x / y; });
    case BinaryOp::Pow:
      return binary_loop<T, R>(out, a, b, [](T x, T y) {
        return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
      });
    case BinaryOp::Maximum:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return (x != x || x > y) ? x : y; });
    case BinaryOp::Minimum:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return (x != x || x < y) ? x : y; });
    case BinaryOp::Eq:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return x == y; });
    case BinaryOp::Ne:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return x != y; });
    case BinaryOp::Lt:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return x < y; });
    case BinaryOp::Le:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return x <= y; });
    case BinaryOp::Gt:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return x > y; });
    case BinaryOp::Ge:
      return binary_loop<T, R>(out, a, b, [](T x, T y) { return x >= y; });
  }
}

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = binary_name(op);
  Shape shape = broadcast_shapes(a_in.sizes(), b_in.sizes(), name);
  DType compute = compute_type(promote(a_in.dtype(), b_in.dtype()));
  if (op == BinaryOp::Div && !is_floating(compute)) compute = DType::Float32;  // true division
  PHX_CHECK(!(compute == DType::Bool && (op == BinaryOp::Sub || op == BinaryOp::Pow)), TypeError,
            name, ": not supported on bool tensors; use logical operators or convert first");
  if (op == BinaryOp::Pow && !is_floating(compute)) {
    // x ** -n is a fraction, which an integer result would silently truncate (2 ** -1 -> 0).
    Tensor e = b_in.contiguous().to(DType::Int64);
    const int64_t* p = e.data<int64_t>();
    for (int64_t i = 0; i < e.numel(); ++i)
      PHX_CHECK(p[i] >= 0, ValueError,
                "Integers to negative integer powers are not allowed. (exponent ", p[i], ")");
  }
  DType result = binary_result_dtype(op, a_in.dtype(), b_in.dtype());
  if (Tensor r = blocked_binary(op, a_in, b_in); r.defined()) return r;
  Tensor a = a_in.contiguous().to(compute).expand(shape);
  Tensor b = b_in.contiguous().to(compute).expand(shape);
  Tensor out = Tensor::empty(shape, compute_type(result));
  dispatch_compute(compute, name, [&](auto tag) {
    using T = decltype(tag);
    if (result == DType::Bool)
      run_binary<T, bool>(op, out, a, b);
    else
      run_binary<T, T>(op, out, a, b);
  });
  return out.to(result);
}

template <typename T, typename R, typename F>
static Tensor unary_loop(const Tensor& a_in, DType result, F f) {
  Tensor a = a_in.contiguous();
  Tensor out = Tensor::empty(a.sizes(), result);
  const T* pa = a.data<T>();
  R* po = out.data<R>();
  const int64_t n = a.numel();
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) po[i] = static_cast<R>(f(pa[i]));
  return out;
}

// Float functions keep a float16/bfloat16 input's type; integers give float32; float64 is
// computed in double.
template <typename F>
static Tensor float_unary(const Tensor& a, F f) {
  if (a.dtype() == DType::Float64) return unary_loop<double, double>(a, DType::Float64, f);
  Tensor out = unary_loop<float, float>(a.to(DType::Float32), DType::Float32, f);
  return is_reduced_float(a.dtype()) ? out.to(a.dtype()) : out;
}

Tensor unary(UnaryOp op, const Tensor& a) {
  switch (op) {
    case UnaryOp::LogicalNot:
      return unary_loop<bool, bool>(a.to(DType::Bool), DType::Bool, [](bool x) { return !x; });
    case UnaryOp::Neg:
    case UnaryOp::Abs:
    case UnaryOp::Sign:
      if (is_reduced_float(a.dtype())) return unary(op, a.to(DType::Float32)).to(a.dtype());
      // These keep the dtype; transcendental functions of integers give float32, as in PyTorch.
      PHX_CHECK(!(a.dtype() == DType::Bool && op == UnaryOp::Neg), TypeError,
                "neg: not supported on bool tensors; use logical_not");
      return dispatch_compute(a.dtype(), "unary", [&](auto tag) -> Tensor {
        using T = decltype(tag);
        if (op == UnaryOp::Neg) return unary_loop<T, T>(a, a.dtype(), [](T x) { return T(-x); });
        if (op == UnaryOp::Abs)
          return unary_loop<T, T>(a, a.dtype(), [](T x) { return x < T(0) ? T(-x) : x; });
        return unary_loop<T, T>(a, a.dtype(), [](T x) { return T((T(0) < x) - (x < T(0))); });
      });
    case UnaryOp::Exp:
      return float_unary(a, [](auto x) { return std::exp(x); });
    case UnaryOp::Log:
      return float_unary(a, [](auto x) { return std::log(x); });
    case UnaryOp::Sqrt:
      return float_unary(a, [](auto x) { return std::sqrt(x); });
    case UnaryOp::Reciprocal:
      return float_unary(a, [](auto x) { return decltype(x)(1) / x; });
    case UnaryOp::Sin:
      return float_unary(a, [](auto x) { return std::sin(x); });
    case UnaryOp::Cos:
      return float_unary(a, [](auto x) { return std::cos(x); });
  }
  throw Error("internal: unknown unary op");
}

Tensor clamp(const Tensor& a_in, std::optional<double> lo, std::optional<double> hi) {
  PHX_CHECK(lo || hi, ValueError, "clamp: at least one of 'min' or 'max' must not be None");
  DType dt = a_in.dtype();
  if ((lo && std::floor(*lo) != *lo) || (hi && std::floor(*hi) != *hi))
    dt = promote(dt, DType::Float32);
  if (is_reduced_float(dt)) return clamp(a_in.to(DType::Float32), lo, hi).to(dt);
  Tensor a = a_in.to(dt);
  return dispatch_compute(dt, "clamp", [&](auto tag) {
    using T = decltype(tag);
    double l = lo.value_or(-INFINITY), h = hi.value_or(INFINITY);
    return unary_loop<T, T>(a, dt, [l, h](T x) {
      double v = static_cast<double>(x);
      if (v != v) return x;  // NaN propagates
      return static_cast<T>(std::min(std::max(v, l), h));
    });
  });
}

Tensor where(const Tensor& cond_in, const Tensor& a_in, const Tensor& b_in) {
  PHX_CHECK(cond_in.dtype() == DType::Bool || cond_in.dtype() == DType::UInt8, TypeError,
            "where: condition must be a bool tensor, got ", dtype_name(cond_in.dtype()));
  Shape shape = broadcast_shapes(broadcast_shapes(cond_in.sizes(), a_in.sizes(), "where"),
                                 b_in.sizes(), "where");
  DType dt = promote(a_in.dtype(), b_in.dtype());
  if (is_reduced_float(dt))
    return where(cond_in, a_in.to(DType::Float32), b_in.to(DType::Float32)).to(dt);
  Tensor c = cond_in.to(DType::Bool).expand(shape);
  Tensor a = a_in.to(dt).expand(shape);
  Tensor b = b_in.to(dt).expand(shape);
  Tensor out = Tensor::empty(shape, dt);
  dispatch_compute(dt, "where", [&](auto tag) {
    using T = decltype(tag);
    T* po = out.data<T>();
    const bool* pc = c.data<bool>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    strided_loop<4>(
        shape, {&out.strides(), &c.strides(), &a.strides(), &b.strides()},
        [&](const std::array<int64_t, 4>& off, int64_t n, const std::array<int64_t, 4>& in) {
          for (int64_t i = 0; i < n; ++i)
            po[off[0] + i * in[0]] =
                pc[off[1] + i * in[1]] ? pa[off[2] + i * in[2]] : pb[off[3] + i * in[3]];
        });
  });
  return out;
}

void axpy_(const Tensor& y, float alpha, const Tensor& x_in) {
  // Two tensors in one blocked layout (a gradient kept in its weight's layout) add element by
  // element over what they store; the padding is zero in both and stays so.
  const bool blocked = y.is_blocked() && x_in.dtype() == DType::Float32 && y.same_layout(x_in);
  PHX_CHECK(y.dtype() == DType::Float32 && (blocked || y.is_contiguous()), Error,
            "internal: axpy_ needs a contiguous float32 destination, got ", y.describe());
  PHX_CHECK(x_in.sizes() == y.sizes(), ValueError, "axpy_: shape ", shape_str(x_in.sizes()),
            " does not match ", shape_str(y.sizes()));
  Tensor x = blocked ? x_in.stable() : x_in.contiguous().to(DType::Float32);
  float* py = y.data<float>();
  const float* px = x.data<float>();
  const int64_t n = y.stored_numel();
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) py[i] += alpha * px[i];
  y.bump_version();
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.sizes() == shape) return g;
  std::vector<int64_t> dims;
  size_t lead = g.sizes().size() - shape.size();
  for (size_t i = 0; i < g.sizes().size(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && g.sizes()[i] != 1))
      dims.push_back(static_cast<int64_t>(i));
  }
  Tensor r = dims.empty() ? g : sum(g, dims, /*keepdim=*/true);
  return r.reshape(shape);
}

}  // namespace phalanx::ops
