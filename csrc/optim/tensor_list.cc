#include "optim/tensor_list.h"

#include "core/error.h"

namespace phalanx::optim {

static void check_float_plain(const char* op, const char* what, size_t i, const Tensor& t) {
  PHX_CHECK(t.defined(), ValueError, op, ": ", what, " ", i, " is undefined");
  PHX_CHECK(t.dtype() == DType::Float32, TypeError, op, ": ", what, " ", i, " is ", t.describe(),
            "; the fused optimizers update float32 tensors only");
  t.materialize_plain();
  PHX_CHECK(t.is_contiguous(), ValueError, op, ": ", what, " ", i, " (", t.describe(),
            ") is not contiguous; optimize the tensor itself, not a strided view of it");
}

void check_params(const char* op, const std::vector<Tensor>& params) {
  for (size_t i = 0; i < params.size(); ++i) check_float_plain(op, "parameter", i, params[i]);
}

std::vector<Tensor> plain_grads(const char* op, const std::vector<Tensor>& params,
                                const std::vector<Tensor>& grads) {
  PHX_CHECK(grads.size() == params.size(), ValueError, op, ": got ", params.size(),
            " parameters but ", grads.size(), " gradients");
  std::vector<Tensor> out;
  out.reserve(grads.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    const Tensor& g = grads[i];
    PHX_CHECK(g.defined(), ValueError, op, ": gradient ", i, " is undefined");
    PHX_CHECK(g.dtype() == DType::Float32, TypeError, op, ": gradient ", i, " is ", g.describe(),
              "; expected float32 like its parameter");
    PHX_CHECK(g.sizes() == params[i].sizes(), ValueError, op, ": gradient ", i, " has shape ",
              shape_str(g.sizes()), " but its parameter has shape ", shape_str(params[i].sizes()));
    out.push_back(g.contiguous());
  }
  return out;
}

void check_state(const char* op, const char* what, const std::vector<Tensor>& params,
                 const std::vector<Tensor>& state, bool allow_undefined) {
  PHX_CHECK(state.size() == params.size(), ValueError, op, ": got ", params.size(),
            " parameters but ", state.size(), " ", what, " tensors");
  for (size_t i = 0; i < state.size(); ++i) {
    if (allow_undefined && !state[i].defined()) continue;
    check_float_plain(op, what, i, state[i]);
    PHX_CHECK(state[i].sizes() == params[i].sizes(), ValueError, op, ": ", what, " ", i,
              " has shape ", shape_str(state[i].sizes()), " but its parameter has shape ",
              shape_str(params[i].sizes()));
  }
}

void check_steps(const char* op, const std::vector<Tensor>& params,
                 const std::vector<Tensor>& steps) {
  PHX_CHECK(steps.size() == params.size(), ValueError, op, ": got ", params.size(),
            " parameters but ", steps.size(), " step counters");
  for (size_t i = 0; i < steps.size(); ++i)
    PHX_CHECK(steps[i].defined() && steps[i].dtype() == DType::Float32 && steps[i].numel() == 1,
              TypeError, op, ": step counter ", i, " must be a one-element float32 tensor, got ",
              steps[i].defined() ? steps[i].describe() : "undefined");
}

double increment_step(const Tensor& step) {
  float& count = *step.data<float>();  // one element: always contiguous
  count += 1;
  step.bump_version();
  return count;
}

}  // namespace phalanx::optim
