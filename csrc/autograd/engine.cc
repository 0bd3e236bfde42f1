#include "autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_accumulation.h"
#include "autograd/grad_mode.h"
#include "autograd/hooks.h"
#include "autograd/validate_outputs.h"
#include "core/factory.h"

namespace phalanx::autograd {

namespace {

struct LaterFirst {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr < b->sequence_nr; }
};

// Counts, for every node reachable from the roots, how many edges point at it.
std::unordered_map<Node*, int> count_dependencies(const std::vector<Node*>& roots) {
  std::unordered_map<Node*, int> deps;
  std::unordered_set<Node*> seen(roots.begin(), roots.end());
  std::vector<Node*> stack(roots.begin(), roots.end());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.fn) continue;
      ++deps[e.fn.get()];
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }
  return deps;
}

// The callbacks of the backward pass running on this thread (null outside one).
thread_local std::vector<std::function<void()>>* current_callbacks = nullptr;

// Installs a callback list for one backward pass and restores the outer one on every exit.
class CallbackScope {
 public:
  CallbackScope() : outer_(current_callbacks) { current_callbacks = &list_; }
  ~CallbackScope() { current_callbacks = outer_; }
  // Runs the callbacks queued so far, and those they queue, in order.
  void run() {
    for (size_t i = 0; i < list_.size(); ++i) {
      std::function<void()> fn = std::move(list_[i]);
      fn();
    }
    list_.clear();
  }

 private:
  std::vector<std::function<void()>> list_;
  std::vector<std::function<void()>>* outer_;
};

// Where autograd::grad picks up the gradients it returns: for each node, which of its
// incoming gradients (input_nr) goes to which result slot.
struct Captures {
  std::unordered_map<Node*, std::vector<std::pair<uint32_t, size_t>>> at;
  TensorList results;
};

void run_backward(const TensorList& roots, const TensorList& grads, bool retain_graph,
                  Captures* captures);

}  // namespace

void backward(const TensorList& roots, const TensorList& grads, bool retain_graph) {
  run_backward(roots, grads, retain_graph, nullptr);
}

TensorList grad(const TensorList& roots, const TensorList& grads, const TensorList& inputs,
                bool retain_graph) {
  Captures captures;
  captures.results.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    PHX_CHECK(inputs[i].requires_grad(), Error, "grad: input ", i, " (", inputs[i].describe(),
              ") does not require grad");
    Edge e = gradient_edge(inputs[i]);
    captures.at[e.fn.get()].emplace_back(e.input_nr, i);
  }
  run_backward(roots, grads, retain_graph, &captures);
  return captures.results;
}

void queue_callback(std::function<void()> fn) {
  PHX_CHECK(current_callbacks != nullptr, Error,
            "queue_callback: only possible while a backward pass runs (call it from a hook)");
  current_callbacks->push_back(std::move(fn));
}

namespace {

void run_backward(const TensorList& roots, const TensorList& grads, bool retain_graph,
                  Captures* captures) {
  GradModeGuard no_grad(false);  // backward itself records no history
  CallbackScope callbacks;
  std::unordered_map<Node*, TensorList> buffers;
  std::vector<std::shared_ptr<Node>> root_nodes;  // keeps the graph alive while we run it
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    PHX_CHECK(r.requires_grad(), Error, "element ", i,
              " of tensors does not require grad and does not have a grad_fn");
    Tensor g = grads[i];
    if (!g.defined()) {
      PHX_CHECK(r.numel() == 1, Error,
                "grad can be implicitly created only for scalar outputs (got ", r.describe(),
                "); pass gradient=");
      g = ones(r.sizes());
    } else {
      PHX_CHECK(g.sizes() == r.sizes(), ValueError, "backward: gradient ", g.describe(),
                " does not match the shape of the output ", r.describe());
      g = g.to(DType::Float32);
    }
    Edge e = gradient_edge(r);
    auto& buf = buffers[e.fn.get()];
    buf.resize(e.fn->output_shapes.size());
    add_gradient(buf[e.input_nr], g, GradSink::EngineBuffer);
    root_nodes.push_back(e.fn);
  }
  std::vector<Node*> raw;
  for (auto& n : root_nodes) raw.push_back(n.get());
  auto deps = count_dependencies(raw);

  std::priority_queue<Node*, std::vector<Node*>, LaterFirst> ready;
  std::unordered_set<Node*> queued;
  for (Node* n : raw)
    if (deps[n] == 0 && queued.insert(n).second) ready.push(n);

  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    TensorList inputs = std::move(buffers[node]);
    buffers.erase(node);
    inputs.resize(node->output_shapes.size());
    for (size_t i = 0; i < inputs.size(); ++i)
      if (!inputs[i].defined()) inputs[i] = zeros(node->output_shapes[i]);
    run_pre_hooks(*node, inputs);
    if (captures) {
      if (auto it = captures->at.find(node); it != captures->at.end())
        for (auto [input_nr, slot] : it->second) captures->results[slot] = inputs[input_nr];
      // grad() returns gradients instead of accumulating them into any leaf
      if (dynamic_cast<AccumulateGrad*>(node)) continue;
    }
    std::shared_ptr<Node> keep = node->shared_from_this();
    TensorList outputs = node->apply(std::move(inputs));
    validate_outputs(*node, outputs);
    if (!retain_graph) node->release_saved();
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.fn) continue;
      Node* next = e.fn.get();
      auto& buf = buffers[next];
      buf.resize(next->output_shapes.size());
      add_gradient(buf[e.input_nr], outputs[i], GradSink::EngineBuffer);
      if (--deps[next] == 0 && queued.insert(next).second) ready.push(next);
    }
  }
  callbacks.run();
}

}  // namespace

}  // namespace phalanx::autograd
