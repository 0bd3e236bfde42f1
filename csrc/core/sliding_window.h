// Sliding-window geometry shared by convolution and pooling.
#pragma once
#include <cstdint>

namespace phalanx {

// Output length of a sliding window, PyTorch's formula (ceil_mode as in its pooling);
// ValueError naming `op` if it is not positive.
int64_t window_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode,
                        const char* op);

// The padding oneDNN needs along one spatial axis. When the last window ends before the input
// does, PyTorch ignores the tail; oneDNN does the same with a right padding of 0, since its
// output-size rule rounds down.
struct WindowAxis {
  int64_t in, out, pad_l, pad_r;
};
WindowAxis window_axis(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int64_t out);

}  // namespace phalanx
