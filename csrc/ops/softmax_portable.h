// softmax and log_softmax over the middle axis of an (outer, n, inner) float array, in portable
// C++: used where oneDNN has only its reference implementation (aarch64 without SVE, the
// phones), which is one or two orders of magnitude slower than a JIT kernel and, for
// log_softmax, less accurate. The results follow PyTorch's formulas, NaN and inf included.
#pragma once
#include <cstdint>

namespace phalanx::ops {

void softmax_portable_forward(const float* x, float* y, int64_t outer, int64_t n, int64_t inner,
                              bool log);
// y is the forward output; dx = y * (dy - sum(dy * y)), or for log: dy - exp(y) * sum(dy).
void softmax_portable_backward(const float* y, const float* dy, float* dx, int64_t outer, int64_t n,
                               int64_t inner, bool log);

// Tests force the portable kernels where oneDNN has a fast one, to check them on this machine.
void set_force_portable_softmax(bool force);
bool force_portable_softmax();

}  // namespace phalanx::ops
