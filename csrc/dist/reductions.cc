#include "dist/reductions.h"

namespace phalanx::dist {

namespace {

template <typename Traits, typename Op>
void apply_untyped(void* c, const void* a, const void* b, size_t n) {
  using S = typename Traits::Storage;
  reduction::apply<Traits, Op>(static_cast<S*>(c), static_cast<const S*>(a),
                               static_cast<const S*>(b), n);
}

template <typename Traits>
ReduceFn typed(ReduceOp op) {
  using namespace reduction;
  switch (op) {
    case ReduceOp::Product:
      return &apply_untyped<Traits, Mul>;
    case ReduceOp::Max:
      return &apply_untyped<Traits, Max>;
    case ReduceOp::Min:
      return &apply_untyped<Traits, Min>;
    case ReduceOp::Sum:
    case ReduceOp::Avg:
      break;
  }
  return &apply_untyped<Traits, Add>;
}

}  // namespace

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return "SUM";
    case ReduceOp::Avg:
      return "AVG";
    case ReduceOp::Max:
      return "MAX";
    case ReduceOp::Min:
      return "MIN";
    case ReduceOp::Product:
      return "PRODUCT";
  }
  return "?";
}

ReduceFn reduce_fn(DType t, ReduceOp op) {
  using namespace reduction;
  PHX_CHECK(op != ReduceOp::Avg || is_floating(t), TypeError,
            "ReduceOp.AVG needs a floating-point tensor, got ", dtype_name(t),
            " (use SUM and divide)");
  switch (t) {
    case DType::Float32:
      return typed<Plain<float>>(op);
    case DType::Float64:
      return typed<Plain<double>>(op);
    case DType::Float16:
      return typed<Half>(op);
    case DType::BFloat16:
      return typed<BFloat>(op);
    case DType::Int64:
      return typed<Plain<int64_t>>(op);
    case DType::Int32:
      return typed<Plain<int32_t>>(op);
    case DType::UInt8:
      return typed<Plain<uint8_t>>(op);
    case DType::Bool:
      break;
  }
  throw TypeError(detail::cat("reductions do not support ", dtype_name(t), " tensors"));
}

void divide_in_place(void* p, DType t, size_t n, int by) {
  if (t == DType::Float64) {
    double* x = static_cast<double*>(p);
    for (size_t i = 0; i < n; ++i) x[i] /= by;
    return;
  }
  if (t == DType::Float32) {
    float* x = static_cast<float*>(p);
    for (size_t i = 0; i < n; ++i) x[i] /= static_cast<float>(by);
    return;
  }
  uint16_t* x = static_cast<uint16_t*>(p);
  bool half = t == DType::Float16;
  for (size_t i = 0; i < n; ++i) {
    float v = (half ? half_to_float(x[i]) : bfloat16_to_float(x[i])) / static_cast<float>(by);
    x[i] = half ? float_to_half(v) : float_to_bfloat16(v);
  }
}

}  // namespace phalanx::dist
