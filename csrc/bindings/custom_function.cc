// Glue for phalanx.autograd.Function: the node and its Python backward (python/phalanx/autograd.py
// does the argument bookkeeping; csrc/autograd/custom_function.h is the node).
#include "autograd/custom_function.h"
#include "bindings/convert.h"

namespace phalanx::bindings {

namespace ag = phalanx::autograd;

namespace {

// What the Python ctx holds: a weak reference, because the node owns the backward closure that
// owns the ctx (a strong one would be a cycle no garbage collector can see through C++).
struct CustomFunctionRef {
  std::weak_ptr<ag::CustomFunctionNode> node;
  std::shared_ptr<ag::CustomFunctionNode> lock() const {
    auto n = node.lock();
    PHX_CHECK(n != nullptr, Error,
              "the graph of this autograd.Function was freed: its ctx outlives the backward pass");
    return n;
  }
};

// The backward as the engine calls it: on the backward's thread, which released the GIL.
ag::CustomFunctionNode::Backward python_backward(py::function fn) {
  // The node may die on a thread without the GIL (a communication thread dropping a graph).
  std::shared_ptr<py::object> held(new py::object(std::move(fn)),
                                   [](py::object* f) { delete_python_object(f); });
  return [held](const ag::TensorList& grads, const std::vector<bool>& needs) {
    py::gil_scoped_acquire gil;
    py::object r = (*held)(py::cast(grads), py::cast(needs));
    ag::TensorList out;
    for (py::handle g : r) out.push_back(g.is_none() ? Tensor() : g.cast<Tensor>());
    return out;
  };
}

}  // namespace

void init_custom_function(py::module_& m) {
  py::class_<CustomFunctionRef>(m, "_CustomFunctionRef")
      .def("saved_tensors", [](const CustomFunctionRef& r) { return r.lock()->saved_tensors(); })
      .def("needs_input_grad",
           [](const CustomFunctionRef& r) { return r.lock()->needs_input_grad(); });
  // Records the history of a Function's outputs; returns (outputs as to hand out, ctx's ref).
  m.def("_record_custom_function",
        [](const std::string& name, const std::vector<Tensor>& outputs,
           const std::vector<Tensor>& inputs, const std::vector<bool>& differentiable,
           const std::vector<Tensor>& saved, py::function backward) {
          auto node =
              std::make_shared<ag::CustomFunctionNode>(name, python_backward(std::move(backward)));
          ag::TensorList out = ag::record_custom(node, outputs, inputs, differentiable);
          node->save(saved);
          return py::make_tuple(py::cast(out), CustomFunctionRef{node});
        });
}

}  // namespace phalanx::bindings
