// Checks shared by the fused optimizer updates: every update walks parallel lists of
// parameters, gradients and state tensors, so one bad entry must be named by its position.
#pragma once
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/tensor.h"
#include "dnnl/weight_cache.h"

namespace phalanx::optim {

// Element counts above this are split across OpenMP threads; below it the fork costs more
// than the arithmetic (bias vectors, BatchNorm scales).
constexpr int64_t kParallelGrain = 32768;

// Parameters are updated through raw float pointers, element by element, each together with
// its gradient and state tensors at the same index. A parameter is plain and contiguous, or
// stored in a oneDNN blocked layout (a convolution weight kept in its layout between steps,
// ops/conv.h): then its state tensors join that layout, adopting it in place, so the loops pair
// element i of each over stored_numel() elements (the layout's padding holds zeros and stays
// zero). A state tensor that cannot (a numpy view of it is alive, an alias shares it) sends the
// parameter and its states back to plain. `states`: the optimizer's state lists, one entry per
// parameter (undefined entries: buffers not made yet, which make_state creates alike).
void check_params(const char* op, const std::vector<Tensor>& params,
                  std::initializer_list<const std::vector<Tensor>*> states = {});

// Gradients, one per parameter, of the same shape, stored as their parameters are after
// check_params: a gradient in its parameter's layout as it is, any other a converted copy
// (read only).
std::vector<Tensor> grads_for_update(const char* op, const std::vector<Tensor>& params,
                                     const std::vector<Tensor>& grads);

// A new state tensor for `param`, stored as the parameter is, filled with zeros.
Tensor make_state(const Tensor& param);

// A list of optimizer state tensors (momentum buffers, moments), one per parameter, shaped
// and stored like it (check_params aligned them). Undefined entries are allowed only when
// `allow_undefined` (lazy buffers).
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

// The element loop `f` of parameter `param` over its n stored elements, then its version bump:
// for_each_element, except that a parameter kept blocked whose backward-data copy is cached
// in the transposed blocking (dnnl_util::WeightTwins) has the copy written alongside, chunk by
// chunk while the chunk is in cache, and cached as made from the new bytes.
template <typename F>
void update_parameter(const Tensor& param, int64_t n, const F& f) {
  const dnnl_util::WeightTwins twins(param);
  if (twins.empty()) {
    for_each_element(n, f);
  } else {
    const float* p = param.data<float>();
    const int64_t chunk = twins.chunk(), chunks = (n + chunk - 1) / chunk;
#pragma omp parallel if (n > kParallelGrain)
    {
      const F body = f;
#pragma omp for
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t begin = c * chunk, end = std::min(n, begin + chunk);
        for (int64_t i = begin; i < end; ++i) body(i);
        twins.write(p, begin, end);
      }
    }
  }
  param.bump_version();
  twins.commit(param);
}

}  // namespace phalanx::optim
