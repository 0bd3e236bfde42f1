// Checks shared by the fused optimizer updates: every update walks parallel lists of
// parameters, gradients and state tensors, so one bad entry must be named by its position.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace phalanx::optim {

// Element counts above this are split across OpenMP threads; below it the fork costs more
// than the arithmetic (bias vectors, BatchNorm scales).
constexpr int64_t kParallelGrain = 32768;

// Parameters are updated through raw float pointers, so each must be a plain, contiguous
// float32 tensor. A oneDNN blocked parameter is converted to plain in place first (every
// handle sees the plain data), since the update itself is layout-blind element arithmetic.
void check_params(const char* op, const std::vector<Tensor>& params);

// Gradients, one per parameter, of the same shape. Returns them as plain float32 tensors a
// raw loop can read: a blocked or strided gradient becomes a contiguous copy (read only).
std::vector<Tensor> plain_grads(const char* op, const std::vector<Tensor>& params,
                                const std::vector<Tensor>& grads);

// A list of optimizer state tensors (momentum buffers, moments), one per parameter and
// shaped like it. Undefined entries are allowed only when `allow_undefined` (lazy buffers).
void check_state(const char* op, const char* what, const std::vector<Tensor>& params,
                 const std::vector<Tensor>& state, bool allow_undefined = false);

// Per-parameter step counters: one-element float32 tensors, one per parameter (PyTorch keeps
// them per parameter because a parameter that missed a step has its own count).
void check_steps(const char* op, const std::vector<Tensor>& params,
                 const std::vector<Tensor>& steps);

// Adds one to a counter checked by check_steps and returns the new count.
double increment_step(const Tensor& step);

// Runs f(i) for i in [0, n): the element loop of one tensor, threaded only when large. Give
// it a lambda capturing by value: each thread runs a private copy, whose scalars the
// compiler then keeps in registers; captured by reference, they could alias the float stores
// through the parameter pointers, are reloaded every element and the loop is not vectorised
// (2x slower on ResNet-50's SGD step).
template <typename F>
void for_each_element(int64_t n, const F& f) {
#pragma omp parallel if (n > kParallelGrain)
  {
    const F body = f;
#pragma omp for
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

}  // namespace phalanx::optim
