// The Python names of the elementwise ops, shared by the module functions and Tensor methods.
#pragma once
#include <utility>

#include "ops/elementwise.h"

namespace phalanx::bindings {

inline constexpr std::pair<const char*, ops::BinaryOp> kComparisons[] = {
    {"eq", ops::BinaryOp::Eq}, {"ne", ops::BinaryOp::Ne}, {"lt", ops::BinaryOp::Lt},
    {"le", ops::BinaryOp::Le}, {"gt", ops::BinaryOp::Gt}, {"ge", ops::BinaryOp::Ge}};

inline constexpr std::pair<const char*, ops::UnaryOp> kUnaryOps[] = {
    {"exp", ops::UnaryOp::Exp},
    {"log", ops::UnaryOp::Log},
    {"sqrt", ops::UnaryOp::Sqrt},
    {"abs", ops::UnaryOp::Abs},
    {"neg", ops::UnaryOp::Neg},
    {"sign", ops::UnaryOp::Sign},
    {"reciprocal", ops::UnaryOp::Reciprocal},
    {"sin", ops::UnaryOp::Sin},
    {"cos", ops::UnaryOp::Cos},
    {"logical_not", ops::UnaryOp::LogicalNot}};

}  // namespace phalanx::bindings
