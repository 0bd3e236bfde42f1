#include "ops/loss.h"

#include <cmath>

#include "core/factory.h"
#include "dnnl/engine.h"

namespace phalanx::ops {

Reduction parse_reduction(const std::string& s) {
  if (s == "mean") return Reduction::Mean;
  if (s == "sum") return Reduction::Sum;
  if (s == "none") return Reduction::None;
  throw ValueError("reduction must be 'none', 'mean' or 'sum', got '" + s + "'");
}

namespace {

// Sizes of the (N, C, S) view of input, S being the product of the extra dims.
struct NllShape {
  int64_t N, C, S;
  Shape target_shape;
};

NllShape nll_shape(const Tensor& input, const Tensor& target, const Tensor& weight) {
  PHX_CHECK(input.dtype() == DType::Float32, TypeError, "nll_loss: expected float32 input, got ",
            input.describe());
  PHX_CHECK(target.dtype() == DType::Int64 || target.dtype() == DType::Int32, TypeError,
            "nll_loss: expected target of class indices (int64), got ", target.describe());
  PHX_CHECK(input.dim() >= 1, ValueError, "nll_loss: input must have at least 1 dimension, got ",
            input.describe());
  NllShape s{};
  if (input.dim() == 1) {
    PHX_CHECK(target.dim() == 0, ValueError, "nll_loss: for an unbatched input ", input.describe(),
              " the target must be 0-d, got ", target.describe());
    s = {1, input.size(0), 1, {}};
  } else {
    s.N = input.size(0);
    s.C = input.size(1);
    s.S = 1;
    Shape expected{s.N};
    for (int64_t d = 2; d < input.dim(); ++d) {
      s.S *= input.size(d);
      expected.push_back(input.size(d));
    }
    PHX_CHECK(target.sizes() == expected, ValueError, "nll_loss: expected target of shape ",
              shape_str(expected), " for input ", input.describe(), ", got ", target.describe());
    s.target_shape = expected;
  }
  if (weight.defined())
    PHX_CHECK(weight.dim() == 1 && weight.size(0) == s.C && weight.dtype() == DType::Float32,
              ValueError, "nll_loss: weight must be a float32 tensor of shape [", s.C, "], got ",
              weight.describe());
  return s;
}

}  // namespace

NllResult nll_loss_forward(const Tensor& input_in, const Tensor& target_in, const Tensor& weight_in,
                           Reduction reduction, int64_t ignore_index) {
  NllShape s = nll_shape(input_in, target_in, weight_in);
  Tensor input = input_in.contiguous();
  Tensor target = target_in.contiguous().to(DType::Int64);
  Tensor weight = weight_in.defined() ? weight_in.contiguous() : Tensor();
  const float* x = input.data<float>();
  const int64_t* t = target.data<int64_t>();
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  Tensor per = Tensor::empty(s.target_shape);
  float* pl = per.data<float>();
  double loss_sum = 0, weight_sum = 0;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t k = 0; k < s.S; ++k) {
      int64_t i = n * s.S + k, c = t[i];
      if (c == ignore_index) {
        pl[i] = 0;
        continue;
      }
      PHX_CHECK(c >= 0 && c < s.C, IndexError, "nll_loss: target ", c, " is out of bounds for ",
                s.C, " classes (at position ", i, ")");
      float wc = w ? w[c] : 1.0f;
      pl[i] = -wc * x[(n * s.C + c) * s.S + k];
      loss_sum += pl[i];
      weight_sum += wc;
    }
  NllResult r;
  r.total_weight = full({}, static_cast<float>(weight_sum));
  if (reduction == Reduction::None) {
    r.loss = per;
  } else {
    double v =
        reduction == Reduction::Sum ? loss_sum : loss_sum / weight_sum;  // 0/0 = NaN, as PyTorch
    r.loss = full({}, static_cast<float>(v));
  }
  return r;
}

Tensor nll_loss_backward(const Tensor& grad_in, const Tensor& input, const Tensor& target_in,
                         const Tensor& weight_in, Reduction reduction, int64_t ignore_index,
                         const Tensor& total_weight) {
  NllShape s = nll_shape(input, target_in, weight_in);
  Tensor target = target_in.contiguous().to(DType::Int64);
  Tensor weight = weight_in.defined() ? weight_in.contiguous() : Tensor();
  Tensor grad = grad_in.contiguous().to(DType::Float32);
  Tensor dx = zeros(input.sizes());
  const int64_t* t = target.data<int64_t>();
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  const float* g = grad.data<float>();
  float* pdx = dx.data<float>();
  const float scale = reduction == Reduction::Mean ? 1.0f / total_weight.data<float>()[0] : 1.0f;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t k = 0; k < s.S; ++k) {
      int64_t i = n * s.S + k, c = t[i];
      if (c == ignore_index) continue;
      float gi = reduction == Reduction::None ? g[i] : g[0] * scale;
      pdx[(n * s.C + c) * s.S + k] = -(w ? w[c] : 1.0f) * gi;
    }
  return dx;
}

}  // namespace phalanx::ops
