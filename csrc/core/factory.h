// Tensor creation: constants, ranges and random tensors.
#pragma once
#include "core/generator.h"
#include "core/tensor.h"

namespace phalanx {

Tensor full(const Shape& sizes, double value, DType dtype = DType::Float32);
inline Tensor zeros(const Shape& sizes, DType dtype = DType::Float32) {
  return full(sizes, 0, dtype);
}
inline Tensor ones(const Shape& sizes, DType dtype = DType::Float32) {
  return full(sizes, 1, dtype);
}
Tensor arange(double start, double end, double step, DType dtype);
Tensor rand(const Shape& sizes, const GeneratorPtr& gen = nullptr, DType dtype = DType::Float32);
Tensor randn(const Shape& sizes, const GeneratorPtr& gen = nullptr, DType dtype = DType::Float32);
Tensor randint(int64_t low, int64_t high, const Shape& sizes, const GeneratorPtr& gen = nullptr,
               DType dtype = DType::Int64);
// A random permutation of 0..n-1 (int64), for shuffling.
Tensor randperm(int64_t n, const GeneratorPtr& gen = nullptr);
// In-place fills used by dropout and initialisers.
void uniform_(const Tensor& t, double low, double high, const GeneratorPtr& gen = nullptr);
void normal_(const Tensor& t, double mean, double std, const GeneratorPtr& gen = nullptr);
void bernoulli_(const Tensor& t, double p, const GeneratorPtr& gen = nullptr);

}  // namespace phalanx
