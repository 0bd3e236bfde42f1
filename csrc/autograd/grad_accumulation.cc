#include "autograd/grad_accumulation.h"

#include <cstring>
#include <mutex>

#include "autograd/grad_mode.h"
#include "ops/elementwise.h"

namespace phalanx::autograd {

bool exclusively_owned(const Tensor& g) {
  if (!g.defined() || g.impl_ptr().use_count() != 1 || !(g.is_blocked() || g.is_contiguous()) ||
      g.impl()->view_base || g.offset() != 0)
    return false;
  const auto& st = g.storage();
  const size_t held = g.is_blocked() ? g.layout()->nbytes() : storage_nbytes(g.sizes(), g.dtype());
  return st.use_count() == 1 && !st->owner && !st->has_external_writers() && st->nbytes == held;
}

void add_gradient(Tensor& total, const Tensor& g, GradSink sink) {
  if (!g.defined()) return;
  GradModeGuard no_grad(false);  // summing gradients records no history
  if (!total.defined()) {
    // A blocked gradient nobody else holds goes plain in place (.grad is read plain): one
    // conversion instead of a conversion and a copy.
    if (sink == GradSink::TensorGrad && g.is_blocked() && g.impl_ptr().use_count() == 1)
      g.materialize_plain();
    total = sink == GradSink::TensorGrad && !exclusively_owned(g) ? g.clone() : g;
    return;
  }
  const bool same_blocked = total.is_blocked() && total.same_layout(g);
  if (sink == GradSink::TensorGrad && (total.is_contiguous() || same_blocked) &&
      total.dtype() == DType::Float32 && total.sizes() == g.sizes()) {
    ops::axpy_(total, 1.0f, g);
    return;
  }
  total = ops::binary(ops::BinaryOp::Add, total, g);
}

namespace {
std::mutex& grad_mutex() {  // one for all leaves: held for one add
  static std::mutex m;
  return m;
}

// A copy of g stored in g's (blocked) layout.
Tensor clone_stored(const Tensor& g) {
  Tensor src = g.stable();
  Tensor out = src.empty_like_stored();
  std::memcpy(out.raw_data(), src.raw_data(),
              static_cast<size_t>(src.stored_numel()) * itemsize(src.dtype()));
  return out;
}

}  // namespace

void accumulate_into_grad(const Tensor& t, Tensor g) {
  AutogradMeta& meta = t.autograd_meta();
  // Threads: backward passes of different graphs may reach one leaf (a shared module's
  // parameter) at once; the read-add-write of .grad is theirs to share, one at a time. Hooks
  // run before this, outside the lock: Python ones take the GIL, which a waiting thread may hold.
  std::lock_guard<std::mutex> lock(grad_mutex());
  Tensor total = meta.grad ? Tensor(meta.grad) : Tensor();
  // A gradient in its parameter's blocked layout (a convolution weight kept blocked, see
  // ops/conv.h) stays so: the optimizer updates the two element by element. Read as .grad by
  // anything else, it converts to plain in place.
  if (!total.defined() && g.defined() && g.is_blocked() && g.same_layout(t)) {
    meta.grad = (exclusively_owned(g) ? g : clone_stored(g)).impl_ptr();
    return;
  }
  add_gradient(total, g, GradSink::TensorGrad);
  if (total.defined()) meta.grad = total.impl_ptr();
}

}  // namespace phalanx::autograd
