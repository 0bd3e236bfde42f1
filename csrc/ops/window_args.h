// Argument checks for sliding-window ops (convolution, pooling), made before oneDNN sees
// them: each refused argument is named with its value, instead of oneDNN's "could not create
// a descriptor".
#pragma once
#include <cstdint>

namespace phalanx::ops {

// oneDNN keeps window geometry in 32-bit integers: larger strides, paddings, dilations or
// kernels make its descriptor creation fail.
constexpr int64_t kMaxWindowArg = (int64_t(1) << 31) - 1;

// ValueError "<op>: <name> must be at least <min> and at most kMaxWindowArg, got <value>".
void check_window_arg(const char* op, const char* name, int64_t value, int64_t min);

}  // namespace phalanx::ops
