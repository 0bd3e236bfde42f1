#include "autograd/grad_mode.h"

namespace phalanx::autograd {

namespace {
// Per thread, as in PyTorch: a no_grad block on one thread does not affect another's forward.
thread_local bool g_grad_enabled = true;
}  // namespace

bool grad_enabled() {
  return g_grad_enabled;
}
void set_grad_enabled(bool on) {
  g_grad_enabled = on;
}

}  // namespace phalanx::autograd
