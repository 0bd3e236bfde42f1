// Whether a float32 tensor holds only finite values (no NaN, no infinity).
#pragma once
#include "core/tensor.h"

namespace phalanx::ops {

// t as oneDNN ops take it (blocked, or plain contiguous; padding of a blocked layout is 0).
// An undefined tensor counts as finite. One read of the bytes, vectorised.
bool all_finite(const Tensor& t);

}  // namespace phalanx::ops
