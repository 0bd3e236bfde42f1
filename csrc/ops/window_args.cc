#include "ops/window_args.h"

#include "core/error.h"

namespace phalanx::ops {

void check_window_arg(const char* op, const char* name, int64_t value, int64_t min) {
  PHX_CHECK(value >= min && value <= kMaxWindowArg, ValueError, op, ": ", name, " must be ",
            min > 0 ? "positive" : "non-negative", " and at most ", kMaxWindowArg, ", got ", value);
}

}  // namespace phalanx::ops
