#include "optim/tensor_list.h"

#include <cstring>

#include "core/error.h"

namespace phalanx::optim {

// A float32 tensor the loops can read: contiguous plain, or in the blocked layout of `like`.
static void check_float_stored(const char* op, const char* what, size_t i, const Tensor& t,
                               const Tensor& like) {
  PHX_CHECK(t.defined(), ValueError, op, ": ", what, " ", i, " is undefined");
  PHX_CHECK(t.dtype() == DType::Float32, TypeError, op, ": ", what, " ", i, " is ", t.describe(),
            "; the fused optimizers update float32 tensors only");
  if (like.is_blocked() && t.same_layout(like)) return;
  t.materialize_plain();
  PHX_CHECK(t.is_contiguous(), ValueError, op, ": ", what, " ", i, " (", t.describe(),
            ") is not contiguous; optimize the tensor itself, not a strided view of it");
  PHX_CHECK(!like.is_blocked(), Error, "internal: ", op, ": ", what, " ", i,
            " is not stored like its parameter");
}

// Whether the defined state tensor `s` of a blocked parameter is, or can be made, stored as it.
static bool joins_layout(const Tensor& s, const Tensor& param) {
  if (!s.defined() || s.same_layout(param)) return true;
  if (s.dtype() != param.dtype() || s.sizes() != param.sizes()) return false;  // checked later
  s.materialize_plain();  // a blocked state in another layout goes through plain
  return s.adopt_layout(param.layout());
}

void check_params(const char* op, const std::vector<Tensor>& params,
                  std::initializer_list<const std::vector<Tensor>*> states) {
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    check_float_stored(op, "parameter", i, p, p);  // defined, float32; plain ones contiguous
    if (!p.is_blocked()) continue;
    bool joined = true;
    for (const auto* list : states)
      if (i < list->size()) joined = joins_layout((*list)[i], p) && joined;
    if (!joined) {  // plain again, contiguous as materialize_plain leaves it
      p.materialize_plain();
      for (const auto* list : states)
        if (i < list->size() && (*list)[i].defined()) (*list)[i].materialize_plain();
    }
  }
}

std::vector<Tensor> grads_for_update(const char* op, const std::vector<Tensor>& params,
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
    const Tensor& p = params[i];
    if (!p.is_blocked()) {
      out.push_back(g.contiguous());
    } else if (g.same_layout(p)) {
      out.push_back(g.stable());
    } else {
      // A gradient read as plain meanwhile (DDP's buckets, clipping): reordered straight into
      // a new tensor in p's layout (one pass, no plain copy first).
      Tensor plain = g.contiguous();
      Tensor c = p.empty_like_stored();
      p.layout()->from_plain(plain.raw_data(), c.raw_data());
      out.push_back(c);
    }
  }
  return out;
}

Tensor make_state(const Tensor& param) {
  Tensor s = param.empty_like_stored();
  std::memset(s.raw_data(), 0, static_cast<size_t>(s.stored_numel()) * sizeof(float));
  return s;
}

void check_state(const char* op, const char* what, const std::vector<Tensor>& params,
                 const std::vector<Tensor>& state, bool allow_undefined) {
  PHX_CHECK(state.size() == params.size(), ValueError, op, ": got ", params.size(),
            " parameters but ", state.size(), " ", what, " tensors");
  for (size_t i = 0; i < state.size(); ++i) {
    if (allow_undefined && !state[i].defined()) continue;
    PHX_CHECK(state[i].defined(), ValueError, op, ": ", what, " ", i, " is undefined");
    PHX_CHECK(state[i].sizes() == params[i].sizes(), ValueError, op, ": ", what, " ", i,
              " has shape ", shape_str(state[i].sizes()), " but its parameter has shape ",
              shape_str(params[i].sizes()));
    check_float_stored(op, what, i, state[i], params[i]);
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
