#include "autograd/node.h"

#include <atomic>
#include <mutex>

#include "autograd/grad_accumulation.h"
#include "autograd/grad_mode.h"
#include "autograd/hooks.h"

namespace phalanx::autograd {

namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};
}  // namespace

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
  // grads[0] moved through: an unshared gradient reaches .grad without a copy
  accumulate_into_grad(var, run_hooks(meta.leaf_hooks, std::move(grads[0])));
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

void record(const char* name, const TensorList& outputs, const TensorList& inputs,
            const TensorList& saved, BackwardFn fn) {
  if (!needs_history(inputs)) return;
  std::vector<SavedTensor> s;
  for (const auto& t : saved) s.emplace_back(t);
  auto node = std::make_shared<FunctionNode>(name, std::move(s), std::move(fn));
  set_history(outputs, inputs, node);
}

}  // namespace phalanx::autograd
