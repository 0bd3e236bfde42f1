// Whether a float32 tensor holds only finite values (no NaN, no infinity).
#pragma once
#include <initializer_list>

#include "core/tensor.h"

namespace phalanx::ops {

// For the fusions whose oneDNN post-op would map NaN to 0: true only when t is known finite.
// t is read as oneDNN ops take it (blocked, padding included, which is 0; or plain
// contiguous), one vectorised pass. An undefined tensor counts as finite; one of another
// dtype or a strided one answers false (the caller then takes its unfused path).
bool all_finite(const Tensor& t);
bool all_finite(std::initializer_list<Tensor> ts);

}  // namespace phalanx::ops
