// Broadcasting elementwise math and comparisons, on plain strided tensors.
#pragma once
#include <cstddef>
#include <optional>

#include "core/tensor.h"

namespace phalanx::ops {

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };
enum class UnaryOp { Neg, Exp, Log, Sqrt, Abs, Sign, Reciprocal, Sin, Cos, LogicalNot };

// Each op's name (PyTorch's, used in messages and as the Python function/method name) and
// traits, in one table per enum, in enum order.
struct BinaryOpInfo {
  BinaryOp op;
  const char* name;
  bool is_comparison;  // returns bool and has no gradient
};
inline constexpr BinaryOpInfo kBinaryOps[] = {
    {BinaryOp::Add, "add", false},
    {BinaryOp::Sub, "sub", false},
    {BinaryOp::Mul, "mul", false},
    {BinaryOp::Div, "div", false},
    {BinaryOp::Pow, "pow", false},
    {BinaryOp::Maximum, "maximum", false},
    {BinaryOp::Minimum, "minimum", false},
    {BinaryOp::Eq, "eq", true},
    {BinaryOp::Ne, "ne", true},
    {BinaryOp::Lt, "lt", true},
    {BinaryOp::Le, "le", true},
    {BinaryOp::Gt, "gt", true},
    {BinaryOp::Ge, "ge", true},
};
struct UnaryOpInfo {
  UnaryOp op;
  const char* name;
};
inline constexpr UnaryOpInfo kUnaryOps[] = {
    {UnaryOp::Neg, "neg"},
    {UnaryOp::Exp, "exp"},
    {UnaryOp::Log, "log"},
    {UnaryOp::Sqrt, "sqrt"},
    {UnaryOp::Abs, "abs"},
    {UnaryOp::Sign, "sign"},
    {UnaryOp::Reciprocal, "reciprocal"},
    {UnaryOp::Sin, "sin"},
    {UnaryOp::Cos, "cos"},
    {UnaryOp::LogicalNot, "logical_not"},
};

template <class Info, size_t N, class Enum>
constexpr bool lists_every_op_in_order(const Info (&table)[N], Enum last) {
  for (size_t i = 0; i < N; ++i)
    if (table[i].op != static_cast<Enum>(i)) return false;
  return N == static_cast<size_t>(last) + 1;
}
static_assert(lists_every_op_in_order(kBinaryOps, BinaryOp::Ge));
static_assert(lists_every_op_in_order(kUnaryOps, UnaryOp::LogicalNot));

constexpr const char* binary_name(BinaryOp op) {
  return kBinaryOps[static_cast<size_t>(op)].name;
}
constexpr bool is_comparison(BinaryOp op) {
  return kBinaryOps[static_cast<size_t>(op)].is_comparison;
}
constexpr const char* unary_name(UnaryOp op) {
  return kUnaryOps[static_cast<size_t>(op)].name;
}
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
