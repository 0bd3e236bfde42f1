#include "autograd/node.h"

#include <atomic>
#include <mutex>

#include "autograd/grad_mode.h"
#include "ops/elementwise.h"

namespace phalanx::autograd {

namespace {
thread_local bool g_grad_enabled = true;
std::atomic<uint64_t> g_next_sequence_nr{0};
}  // namespace

bool grad_enabled() {
  return g_grad_enabled;
}
void set_grad_enabled(bool on) {
  g_grad_enabled = on;
}

Node::Node() : sequence_nr(g_next_sequence_nr++) {}

SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  data = t.alias();
  version = t.version();
}

Tensor SavedTensor::unpack(const std::string& node_name) const {
  if (data.defined() && data.version() != version)
    throw Error(
        detail::cat("one of the variables needed for gradient computation has been modified "
                    "by an inplace operation: [",
                    data.describe(), "], saved by ", node_name, ", is at version ", data.version(),
                    "; expected version ", version,
                    " instead. Hint: clone the tensor before modifying it in place."));
  return data;
}

TensorList FunctionNode::apply(TensorList&& grads) {
  if (released_)
    throw Error(
        "Trying to backward through the graph a second time (or directly access saved "
        "tensors after they have already been freed). Saved intermediate values of the "
        "graph are freed when you call .backward(); specify retain_graph=True if you need "
        "to backward through the graph a second time. (at " +
        name_ + ")");
  TensorList saved;
  saved.reserve(saved_.size());
  for (const auto& s : saved_) saved.push_back(s.unpack(name_));
  std::vector<bool> needs(next_edges.size());
  for (size_t i = 0; i < next_edges.size(); ++i) needs[i] = next_edges[i].fn != nullptr;
  return fn_(BackwardContext{grads, saved, needs});
}

void FunctionNode::release_saved() {
  if (saved_.empty()) return;  // nothing saved: a second backward is harmless, as in PyTorch
  saved_.clear();
  released_ = true;
}

namespace {
std::mutex& grad_mutex() {  // one for all leaves: held for one add
  static std::mutex m;
  return m;
}
std::mutex& accumulator_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> variable)
    : variable_(std::move(variable)) {
  output_shapes.push_back(variable_->sizes);
}

TensorList AccumulateGrad::apply(TensorList&& grads) {
  Tensor var(variable_);
  AutogradMeta& meta = var.autograd_meta();
  Tensor g = grads[0];
  for (auto& hook : meta.leaf_hooks) {
    Tensor r = hook(g);
    if (r.defined()) g = r;
  }
  GradModeGuard no_grad(false);
  // Threads: backward passes of different graphs may reach one leaf (a shared module's
  // parameter) at once; the read-add-write of .grad is theirs to share, one at a time.
  // Hooks run outside: Python ones take the GIL, which a thread waiting here may hold.
  std::unique_lock<std::mutex> lock(grad_mutex());
  if (!meta.grad) {
    // A fresh tensor: the incoming one may alias something the graph still holds.
    meta.grad = g.clone().impl_ptr();
  } else {
    Tensor old(meta.grad);
    if (old.is_contiguous() && old.dtype() == DType::Float32 && old.sizes() == g.sizes())
      ops::axpy_(old, 1.0f, g);  // in place: keeps the .grad object the optimizer holds
    else
      meta.grad = ops::binary(ops::BinaryOp::Add, old, g).impl_ptr();
  }
  lock.unlock();
  for (auto& hook : meta.post_accumulate_hooks) hook(var);
  return {};
}

std::shared_ptr<Node> grad_accumulator(const Tensor& t) {
  AutogradMeta& meta = t.autograd_meta();
  // Threads building graphs on one leaf share its accumulator: made once, under a lock (an
  // unguarded weak_ptr written by two threads ends in bad_weak_ptr or a double free).
  std::lock_guard<std::mutex> lock(accumulator_mutex());
  if (auto acc = meta.grad_accumulator.lock()) return acc;
  auto acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
  meta.grad_accumulator = acc;
  return acc;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (const auto& fn = t.grad_fn()) return {fn, t.autograd_meta().output_nr};
  return {grad_accumulator(t), 0};
}

bool needs_history(const TensorList& inputs) {
  if (!grad_enabled()) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void set_history(const TensorList& outputs, const TensorList& inputs,
                 const std::shared_ptr<Node>& node) {
  node->next_edges.clear();
  for (const auto& t : inputs) node->next_edges.push_back(gradient_edge(t));
  node->output_shapes.clear();
  for (uint32_t i = 0; i < outputs.size(); ++i) {
    AutogradMeta& meta = outputs[i].autograd_meta();
    meta.requires_grad = true;
    meta.grad_fn = node;
    meta.output_nr = i;
    node->output_shapes.push_back(outputs[i].sizes());
  }
}

}  // namespace phalanx::autograd
