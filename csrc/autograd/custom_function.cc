#include "autograd/custom_function.h"

#include "core/error.h"

namespace phalanx::autograd {

TensorList CustomFunctionNode::apply(TensorList&& grads) {
  return fn_(grads, needs_input_grad());
}

void CustomFunctionNode::release_saved() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (saved_.empty()) return;  // nothing saved: a second backward is harmless, as in PyTorch
  saved_.clear();
  released_ = true;
}

void CustomFunctionNode::save(const TensorList& tensors) {
  std::lock_guard<std::mutex> lock(mutex_);
  saved_.clear();
  for (const auto& t : tensors) saved_.emplace_back(t);
  released_ = false;
}

TensorList CustomFunctionNode::saved_tensors() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (released_)
    throw Error(
        "Trying to backward through the graph a second time (or directly access saved "
        "tensors after they have already been freed). Saved intermediate values of the "
        "graph are freed when you call .backward(); specify retain_graph=True if you need "
        "to backward through the graph a second time. (at " +
        name_ + ")");
  TensorList out;
  out.reserve(saved_.size());
  for (const auto& s : saved_) out.push_back(s.unpack(name_));
  return out;
}

std::vector<bool> CustomFunctionNode::needs_input_grad() const {
  std::vector<bool> needs(next_edges.size());
  for (size_t i = 0; i < next_edges.size(); ++i) needs[i] = next_edges[i].fn != nullptr;
  return needs;
}

TensorList record_custom(const std::shared_ptr<CustomFunctionNode>& node, TensorList outputs,
                         const TensorList& inputs, const std::vector<bool>& differentiable) {
  PHX_CHECK(differentiable.size() == outputs.size(), Error, "record_custom: ", outputs.size(),
            " outputs but ", differentiable.size(), " differentiable flags");
  node->next_edges.clear();
  for (const auto& t : inputs) node->next_edges.push_back(gradient_edge(t));
  node->output_shapes.clear();
  for (uint32_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = outputs[i];
    PHX_CHECK(out.defined(), Error, node->name(), ": output ", i, " is not a tensor");
    node->output_shapes.push_back(out.sizes());
    bool is_input = false;
    for (const auto& t : inputs)
      if (t.defined() && t.impl_ptr() == out.impl_ptr()) is_input = true;
    for (uint32_t j = 0; j < i; ++j)  // the same tensor returned twice gets two places
      if (outputs[j].impl_ptr() == out.impl_ptr()) is_input = true;
    if (is_input || out.requires_grad()) out = out.alias();
    if (!differentiable[i]) continue;
    AutogradMeta& meta = out.autograd_meta();
    meta.requires_grad = true;
    meta.grad_fn = node;
    meta.output_nr = i;
  }
  return outputs;
}

}  // namespace phalanx::autograd
