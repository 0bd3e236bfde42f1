// Differentiable operations: each calls the plain op in csrc/ops and, when history is needed,
// records a node whose backward calls the op's backward. This is the API the bindings expose.
#pragma once
#include <array>
#include <optional>
#include <utility>

#include "autograd/node.h"
#include "ops/activation.h"
#include "ops/batch_norm.h"
#include "ops/conv.h"
#include "ops/conv_transpose.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/pool.h"
#include "ops/resample.h"

namespace phalanx::autograd {

// ---- elementwise and reductions (functions_math.cc) --------------------------------------
Tensor binary(ops::BinaryOp op, const Tensor& a, const Tensor& b);
Tensor unary(ops::UnaryOp op, const Tensor& a);
Tensor clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim);
Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim);
Tensor amax_all(const Tensor& a, bool is_max);
std::pair<Tensor, Tensor> max_dim(const Tensor& a, int64_t dim, bool keepdim, bool is_max);
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index);

// ---- views and copies (functions_views.cc) -----------------------------------------------
Tensor reshape(const Tensor& a, const Shape& shape);
Tensor view(const Tensor& a, const Shape& shape);
Tensor permute(const Tensor& a, const Shape& dims);
Tensor transpose(const Tensor& a, int64_t d0, int64_t d1);
Tensor expand(const Tensor& a, const Shape& shape);
Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length, int64_t step = 1);
Tensor select(const Tensor& a, int64_t dim, int64_t index);
Tensor unsqueeze(const Tensor& a, int64_t dim);
Tensor squeeze(const Tensor& a, std::optional<int64_t> dim);
Tensor flatten(const Tensor& a, int64_t start_dim, int64_t end_dim);
Tensor contiguous(const Tensor& a);
Tensor clone(const Tensor& a);
Tensor detach(const Tensor& a);
Tensor to_dtype(const Tensor& a, DType dtype);

// In-place updates. `result` is the new value of self (computed with history); self takes its
// data and, when history is recorded, its place in the graph. Leaves that require grad refuse.
void assign_(const Tensor& self, const Tensor& result, const char* op);
void binary_(ops::BinaryOp op, const Tensor& self, const Tensor& other);
void copy_(const Tensor& self, const Tensor& src);
void fill_(const Tensor& self, double value);

// ---- neural-network ops (functions_nn.cc) ------------------------------------------------
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ops::Conv2dParams& p);
// relu(conv2d(x)): one oneDNN pass (a ReLU post-op), exact against the two ops in turn; the
// backward masks the gradient by the saved output, as ReLU's backward does.
Tensor conv2d_relu(const Tensor& x, const Tensor& w, const Tensor& bias,
                   const ops::Conv2dParams& p);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps, ops::PlainKernel plain_kernel = ops::PlainKernel::Loops);
// relu(batch_norm(x)): one oneDNN pass (fuse_norm_relu) on a blocked input, exact against the
// two ops; any other input runs them one after the other.
Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum,
                       double eps);
// ---- further layers (functions_layers.cc) ------------------------------------------------
// Normalises over the last normalized_ndim dims (oneDNN layer_normalization); weight and bias
// (each optional) have those dims' shape.
Tensor layer_norm(const Tensor& x, int64_t normalized_ndim, const Tensor& weight,
                  const Tensor& bias, double eps);
// oneDNN deconvolution; w as PyTorch's (in_channels, out_channels / groups, kH, kW).
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias,
                        const ops::ConvTranspose2dParams& p);
// oneDNN resampling of the spatial dims to out_spatial (see ops/resample.h for which of
// PyTorch's interpolations each mode equals).
Tensor resample(const Tensor& x, const Shape& out_spatial, ops::ResampleMode mode);
Tensor activation(ops::Activation kind, const Tensor& x, float alpha = 0.f);
// relu_(x) and friends: x becomes the activation's output, in its own memory when the
// backward needs only the output (as PyTorch's inplace=True), else through a copy.
Tensor activation_(ops::Activation kind, const Tensor& x, float alpha = 0.f);
Tensor max_pool2d(const Tensor& x, const ops::Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const ops::Pool2dParams& p);
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> out);
Tensor softmax(const Tensor& x, int64_t dim, bool log);
Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight,
                ops::Reduction reduction, int64_t ignore_index);

}  // namespace phalanx::autograd
