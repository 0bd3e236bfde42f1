// Sliding-window geometry shared by convolution and pooling.
#pragma once
#include <cstdint>

namespace phalanx::ops {

// Output length of a sliding window, PyTorch's formula (ceil_mode as in its pooling);
// ValueError naming `op` if it is not positive.
int64_t window_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode,
                        const char* op);

// The geometry oneDNN needs along one spatial axis. When the last window ends before the
// input does, PyTorch simply ignores the tail; oneDNN wants a non-negative right padding, so
// the tail is cropped from the input instead (`used` < `in`).
struct WindowAxis {
  int64_t in, out, pad_l, pad_r, used;
};
WindowAxis window_axis(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int64_t out);

}  // namespace phalanx::ops
