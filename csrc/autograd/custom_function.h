// A node whose backward is supplied at run time (phalanx.autograd.Function's backward, written
// in Python). The engine runs it like any other node; this file knows nothing of Python.
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "autograd/node.h"

namespace phalanx::autograd {

class CustomFunctionNode : public Node {
 public:
  // grads: one per output (zeros where nothing flowed); needs[i]: input i wants a gradient.
  // Returns one gradient per input, undefined where there is none.
  using Backward =
      std::function<TensorList(const TensorList& grads, const std::vector<bool>& needs)>;

  CustomFunctionNode(std::string name, Backward fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }
  TensorList apply(TensorList&& grads) override;
  void release_saved() override;

  // ctx.save_for_backward: kept with their versions, refused if modified in place later.
  void save(const TensorList& tensors);
  // ctx.saved_tensors: an error after a backward without retain_graph freed them.
  TensorList saved_tensors() const;
  // ctx.needs_input_grad as the graph sees it (an input needs one when it has an edge).
  std::vector<bool> needs_input_grad() const;

 private:
  std::string name_;
  Backward fn_;
  mutable std::mutex mutex_;  // saved_ is read by the backward's thread, written by release
  std::vector<SavedTensor> saved_;
  bool released_ = false;
};

// Makes `node` the history of `outputs`, with one edge per input. An output that is an input
// itself, or already has history, is replaced by an alias first, so an input's own place in the
// graph is never overwritten (PyTorch does the same when forward returns an input). Outputs with
// differentiable[i] false get no history. Returns the outputs as the caller must hand them out.
TensorList record_custom(const std::shared_ptr<CustomFunctionNode>& node, TensorList outputs,
                         const TensorList& inputs, const std::vector<bool>& differentiable);

}  // namespace phalanx::autograd
