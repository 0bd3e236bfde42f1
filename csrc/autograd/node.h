// The backward graph: a Node turns the gradients of its outputs into gradients of its inputs
// and knows, through its edges, where those go next.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace phalanx::autograd {

using TensorList = std::vector<Tensor>;
struct Node;

struct Edge {
  std::shared_ptr<Node> fn;  // null: this input needs no gradient
  uint32_t input_nr = 0;
};

struct Node : std::enable_shared_from_this<Node> {
  Node();
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  // grads[i] is the gradient of output i (zeros where nothing flowed); returns one gradient per
  // next edge, undefined where an input needs none.
  virtual TensorList apply(TensorList&& grads) = 0;
  // Frees what was saved for backward (after a backward without retain_graph).
  virtual void release_saved() {}

  std::vector<Edge> next_edges;
  std::vector<Shape> output_shapes;  // to materialise zero gradients
  // Hooks on the gradient of one output (tensor.register_hook on a non-leaf, retain_grad).
  std::vector<std::pair<uint32_t, TensorHook>> pre_hooks;
  uint64_t sequence_nr;  // creation order: later nodes run first
};

// A tensor saved for backward: an alias without autograd state (no reference cycles), plus the
// version it had, to refuse it if it was modified in place afterwards.
struct SavedTensor {
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  Tensor unpack(const std::string& node_name) const;
  Tensor data;
  uint64_t version = 0;
};

// What a backward function sees.
struct BackwardContext {
  const TensorList& grads;
  const TensorList& saved;
  const std::vector<bool>& needs;  // needs[i]: input i wants a gradient
  const Tensor& grad(size_t i = 0) const { return grads[i]; }
  bool need(size_t i) const { return needs[i]; }
};
using BackwardFn = std::function<TensorList(const BackwardContext&)>;

// The node every differentiable op makes: a backward function and the tensors it saved.
class FunctionNode : public Node {
 public:
  FunctionNode(std::string name, std::vector<SavedTensor> saved, BackwardFn fn)
      : name_(std::move(name)), saved_(std::move(saved)), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }
  TensorList apply(TensorList&& grads) override;
  void release_saved() override;

 private:
  std::string name_;
  std::vector<SavedTensor> saved_;
  BackwardFn fn_;
  bool released_ = false;
};

// The sink of a leaf: adds the incoming gradient into tensor.grad.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> variable);
  std::string name() const override { return "AccumulateGrad"; }
  TensorList apply(TensorList&& grads) override;
  Tensor variable() const { return Tensor(variable_); }

 private:
  std::shared_ptr<TensorImpl> variable_;
};

// The edge a gradient for `t` must flow into: its grad_fn, or its leaf accumulator.
Edge gradient_edge(const Tensor& t);
std::shared_ptr<Node> grad_accumulator(const Tensor& t);

// Records `node` as the history of `outputs` (which then require grad) with edges to `inputs`.
// Does nothing when grad mode is off or no input requires grad.
bool needs_history(const TensorList& inputs);
void set_history(const TensorList& outputs, const TensorList& inputs,
                 const std::shared_ptr<Node>& node);
// Makes a FunctionNode from a backward function and the tensors it saves, and records it as
// the history of `outputs` when history is needed.
void record(const char* name, const TensorList& outputs, const TensorList& inputs,
            const TensorList& saved, BackwardFn fn);

}  // namespace phalanx::autograd
