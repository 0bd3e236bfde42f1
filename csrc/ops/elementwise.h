// Broadcasting elementwise math and comparisons, on plain strided tensors.
#pragma once
#include <optional>

#include "core/tensor.h"

namespace phalanx::ops {

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };
enum class UnaryOp { Neg, Exp, Log, Sqrt, Abs, Sign, Reciprocal, Sin, Cos, LogicalNot };

const char* binary_name(BinaryOp op);
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// The dtype PyTorch would give op(a, b).
DType binary_result_dtype(BinaryOp op, DType a, DType b);

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor unary(UnaryOp op, const Tensor& a);
Tensor clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// A 0-d tensor holding v, for mixing Python scalars into tensor math.
Tensor scalar_tensor(double v, DType dtype);
// y = a * x + y over two float32 tensors of one shape (gradient accumulation).
void axpy_(const Tensor& y, float a, const Tensor& x);

// Reduces a gradient of a broadcast result back to the shape of the operand that was broadcast.
Tensor sum_to(const Tensor& g, const Shape& shape);

}  // namespace phalanx::ops
