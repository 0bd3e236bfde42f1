#include "autograd/validate_outputs.h"

#include "core/error.h"

namespace phalanx::autograd {

void validate_outputs(const Node& node, const TensorList& grads) {
  PHX_CHECK(grads.size() == node.next_edges.size(), Error, "function ", node.name(),
            " returned an incorrect number of gradients (expected ", node.next_edges.size(),
            ", got ", grads.size(), ")");
  for (size_t i = 0; i < grads.size(); ++i) {
    const Edge& e = node.next_edges[i];
    const Tensor& g = grads[i];
    if (!e.fn || !g.defined()) continue;
    const Shape& expected = e.fn->output_shapes[e.input_nr];
    PHX_CHECK(g.sizes() == expected, Error, "function ", node.name(),
              " returned an invalid gradient at index ", i, " - got ", shape_str(g.sizes()),
              " but expected shape ", shape_str(expected));
    PHX_CHECK(g.dtype() == DType::Float32, Error, "function ", node.name(),
              " returned an invalid gradient at index ", i, " - expected dtype float32 but got ",
              g.describe());
  }
}

}  // namespace phalanx::autograd
