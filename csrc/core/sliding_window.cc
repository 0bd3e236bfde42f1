#include "core/sliding_window.h"

#include <algorithm>

#include "core/error.h"

namespace phalanx {

int64_t window_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode,
                        const char* op) {
  int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t out = (span < 0 ? -1 : (span + (ceil_mode ? s - 1 : 0)) / s) + 1;
  if (ceil_mode && out > 0 && (out - 1) * s >= in + p) --out;  // last window must start inside
  PHX_CHECK(out > 0, ValueError, op, ": input size ", in, " with padding ", p,
            " is smaller than the (dilated) kernel size ", d * (k - 1) + 1);
  return out;
}

WindowAxis window_axis(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int64_t out) {
  int64_t end = (out - 1) * s + d * (k - 1) + 1;  // in padded coordinates
  return {in, out, p, std::max<int64_t>(end - in - p, 0)};
}

}  // namespace phalanx
