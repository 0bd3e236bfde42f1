#include "ops/batch_norm.h"

#include <mutex>
#include <utility>

#include "core/factory.h"
#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "dnnl/layout.h"
#include "ops/batch_norm_blocked.h"
#include "ops/batch_norm_plain.h"
#include "ops/zero_size.h"

namespace phalanx::ops {

using dnnl::memory;
using dnnl::normalization_flags;
using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

namespace {

// oneDNN wants 4-D NCHW here; (N, C) and (N, C, L) become (N, C, L, 1).
Shape as_4d(const Tensor& x) {
  PHX_CHECK(x.dim() >= 2 && x.dim() <= 5, ValueError,
            "batch_norm: expected a 2-D to 5-D input (N, C, ...), got ", x.describe());
  if (x.dim() == 4) return x.sizes();  // keeps the real shape: blocked layouts refer to it
  Shape s{x.size(0), x.size(1), 1, 1};
  if (x.dim() == 3) s[2] = x.size(2);
  if (x.dim() == 5) s = {x.size(0), x.size(1), x.size(2) * x.size(3), x.size(4)};
  return s;
}

normalization_flags flags_for(bool affine, bool training, bool relu) {
  auto f = normalization_flags::none;
  if (relu) f = f | normalization_flags::fuse_norm_relu;
  if (affine) f = f | normalization_flags::use_scale | normalization_flags::use_shift;
  if (!training) f = f | normalization_flags::use_global_stats;
  return f;
}

using FwdEntry = Cached<dnnl::batch_normalization_forward>;

// The data descriptor: the input's blocked layout, or plain 4-D.
memory::desc data_desc(const Tensor& x, const Shape& s) {
  return desc_of(x, s);
}

std::shared_ptr<FwdEntry> forward_entry(const memory::desc& md, const std::string& layout,
                                        const Shape& s, bool affine, bool training, double eps,
                                        bool relu) {
  return cached<dnnl::batch_normalization_forward>(
      cache_key("bn_fwd", s, layout, affine, training, eps, relu), [&] {
        auto pd = compat::bn_fwd(cpu_engine(), dnnl::prop_kind::forward_training, md,
                                 static_cast<float>(eps), flags_for(affine, training, relu));
        return pd;
      });
}

// The block width when x is stored nChw16c or nChw8c (the loops of batch_norm_blocked.h take
// those), else 0 (oneDNN's primitive takes any other blocked layout).
int channel_block(const Tensor& x, const Shape& s, const memory::desc& md) {
  if (!x.is_blocked() || x.dim() != 4) return 0;
  for (auto [tag, width] :
       {std::pair{memory::format_tag::nChw16c, 16}, std::pair{memory::format_tag::nChw8c, 8}})
    if (md == memory::desc(s, memory::data_type::f32, tag)) return width;
  return 0;
}

std::mutex& running_stats_mutex() {  // one for all modules: held for two C-length loops
  static std::mutex m;
  return m;
}

Tensor channel_param(const Tensor& t, int64_t C, const char* name) {
  Tensor c = float_input(t, "batch_norm", name);
  PHX_CHECK(c.dim() == 1 && c.size(0) == C, ValueError, "batch_norm: ", name, " must have shape [",
            C, "], got ", c.describe());
  return c;
}

void run_onednn_forward(const Tensor& x, const Shape& s, BatchNormResult& r, const Tensor& w,
                        const Tensor& b, bool training, double eps, bool relu);
void update_running_stats(const BatchNormResult& r, const Tensor& running_mean,
                          const Tensor& running_var, bool training, double momentum,
                          int64_t per_channel);

}  // namespace

BatchNormResult batch_norm_forward(const Tensor& x_in, const Tensor& running_mean,
                                   const Tensor& running_var, const Tensor& weight,
                                   const Tensor& bias, bool training, double momentum, double eps,
                                   bool fuse_relu, PlainKernel plain_kernel) {
  Tensor x = dnnl_input(x_in, "batch_norm", "input");
  PHX_CHECK(!fuse_relu || x.is_blocked(), ValueError,
            "batch_norm: a fused ReLU needs a blocked input, got ", x.describe());
  Shape s = as_4d(x);
  const int64_t C = s[1];
  PHX_CHECK(eps > 0, ValueError, "batch_norm: eps must be positive, got ", eps);
  PHX_CHECK(weight.defined() == bias.defined(), ValueError,
            "batch_norm: weight and bias must be given together");
  const bool affine = weight.defined();
  // As PyTorch: exactly one value per channel has no variance to normalise by; none at all
  // (an empty batch) gives an empty output and leaves the running statistics alone.
  PHX_CHECK(!training || s[0] * s[2] * s[3] != 1, ValueError,
            "batch_norm: expected more than 1 value per channel when training, got input ",
            x.describe());
  PHX_CHECK(training || (running_mean.defined() && running_var.defined()), ValueError,
            "batch_norm: running_mean and running_var are required in eval mode");
  BatchNormResult r;
  if (x.numel() == 0) {
    r.x = x;
    r.y = Tensor::empty(x.sizes());
    return r;
  }
  r.x = x;
  Tensor w, b;  // held here: oneDNN memory objects only point at the data
  if (affine) {
    w = channel_param(weight, C, "weight");
    b = channel_param(bias, C, "bias");
  }
  if (training) {
    r.mean = Tensor::empty({C});
    r.var = Tensor::empty({C});
  } else {
    r.mean = channel_param(running_mean, C, "running_mean");
    r.var = channel_param(running_var, C, "running_var");
  }
  const memory::desc md = data_desc(x, s);
  if (const int block = channel_block(x, s, md)) {  // see batch_norm_blocked.h
    const bn_blocked::Dims d{s[0], C, s[2] * s[3], block};
    r.y = empty_like_desc(x.sizes(), md);
    if (fuse_relu) r.workspace = Tensor::empty({bn_blocked::stored_size(d)}, DType::UInt8);
    bn_blocked::forward(d, x.data<float>(), r.y.data<float>(), r.mean.data<float>(),
                        r.var.data<float>(), affine ? w.data<float>() : nullptr,
                        affine ? b.data<float>() : nullptr, training, static_cast<float>(eps),
                        fuse_relu ? r.workspace.data<uint8_t>() : nullptr);
  } else if (x.is_blocked() || plain_kernel == PlainKernel::OneDnn) {
    run_onednn_forward(x, s, r, w, b, training, eps, fuse_relu);
  } else {  // see batch_norm_plain.h
    r.y = Tensor::empty(x.sizes());
    bn_plain::forward({s[0], C, s[2] * s[3]}, x.data<float>(), r.y.data<float>(),
                      r.mean.data<float>(), r.var.data<float>(), affine ? w.data<float>() : nullptr,
                      affine ? b.data<float>() : nullptr, training, static_cast<float>(eps));
  }
  update_running_stats(r, running_mean, running_var, training, momentum, x.numel() / C);
  return r;
}

bool fused_relu_keeps_nan(const Tensor& x) {
  if (!x.is_blocked() || x.dim() != 4) return false;  // data_desc needs a blocked 4-D x
  return channel_block(x, x.sizes(), data_desc(x, x.sizes())) != 0;
}

namespace {

void run_onednn_forward(const Tensor& x, const Shape& s, BatchNormResult& r, const Tensor& w,
                        const Tensor& b, bool training, double eps, bool relu) {
  const bool affine = w.defined();
  const memory::desc md = data_desc(x, s);
  auto e = forward_entry(md, layout_key(x), s, affine, training, eps, relu);
  r.y = empty_like_desc(x.sizes(), md);  // the output keeps the input's layout
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory_of(x, md)},
                                       {DNNL_ARG_DST, memory_of(r.y, md)}};
  if (affine) {
    args[DNNL_ARG_SCALE] = plain_memory(w);
    args[DNNL_ARG_SHIFT] = plain_memory(b);
  }
  args[DNNL_ARG_MEAN] = plain_memory(r.mean);
  args[DNNL_ARG_VARIANCE] = plain_memory(r.var);
  if (relu) {  // which outputs the ReLU zeroed: the backward masks the gradient with it
    auto ws_md = e->pd.workspace_desc();
    r.workspace = Tensor::empty({static_cast<int64_t>(ws_md.get_size())}, DType::UInt8);
    args[DNNL_ARG_WORKSPACE] = memory(ws_md, cpu_engine(), r.workspace.raw_data());
  }
  execute(e->prim, std::move(args));
}

void update_running_stats(const BatchNormResult& r, const Tensor& running_mean,
                          const Tensor& running_var, bool training, double momentum,
                          int64_t per_channel) {
  const int64_t C = r.mean.numel();
  // Threads: one module's forward may run on several threads (training mode too); each
  // update of the running statistics is a read-modify-write done whole, under a lock, so the
  // result is that of some serial order of the calls.
  std::lock_guard<std::mutex> lock(running_stats_mutex());
  if (training && running_mean.defined()) {
    channel_param(running_mean, C, "running_mean");
    PHX_CHECK(running_mean.is_contiguous(), ValueError,
              "batch_norm: running_mean must be contiguous");
    float* pm = running_mean.data<float>();
    const float* bm = r.mean.data<float>();
    for (int64_t c = 0; c < C; ++c)
      pm[c] = static_cast<float>((1 - momentum) * pm[c] + momentum * bm[c]);
    running_mean.bump_version();
  }
  if (training && running_var.defined()) {
    channel_param(running_var, C, "running_var");
    PHX_CHECK(running_var.is_contiguous(), ValueError,
              "batch_norm: running_var must be contiguous");
    const double n = static_cast<double>(per_channel);
    float* pv = running_var.data<float>();
    const float* bv = r.var.data<float>();
    for (int64_t c = 0; c < C; ++c)
      pv[c] = static_cast<float>((1 - momentum) * pv[c] + momentum * bv[c] * n / (n - 1));
    running_var.bump_version();
  }
}

}  // namespace

BatchNormGrads batch_norm_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& mean,
                                   const Tensor& var, const Tensor& weight, bool training,
                                   double eps, std::array<bool, 3> need,
                                   const Tensor& relu_workspace, PlainKernel plain_kernel) {
  Tensor x = dnnl_input(x_in, "batch_norm_backward", "input");
  const bool relu = relu_workspace.defined();
  PHX_CHECK(!relu || x.is_blocked(), ValueError,
            "batch_norm_backward: a fused ReLU needs a blocked input, got ", x.describe());
  Shape s = as_4d(x);
  if (has_no_elements(x)) {  // no samples (or no spatial extent): every sum is empty
    const bool affine = weight.defined();
    return {zero_grad_if(need[0], x.sizes()), zero_grad_if(need[1] && affine, {s[1]}),
            zero_grad_if(need[2] && affine, {s[1]})};
  }
  const int64_t C = s[1];
  const bool affine = weight.defined();
  if (!x.is_blocked() && plain_kernel == PlainKernel::Loops) {  // see batch_norm_plain.h
    Tensor dy = float_input(dy_in, "batch_norm_backward", "grad_output");
    Tensor m = mean.contiguous(), v = var.contiguous(), w;
    if (affine) w = weight.contiguous();
    BatchNormGrads g;
    if (need[0]) g.dx = Tensor::empty(x.sizes());
    if (affine) {
      g.dweight = Tensor::empty({C});
      g.dbias = Tensor::empty({C});
    }
    bn_plain::backward({s[0], C, s[2] * s[3]}, dy.data<float>(), x.data<float>(), m.data<float>(),
                       v.data<float>(), affine ? w.data<float>() : nullptr, training,
                       static_cast<float>(eps), need[0] ? g.dx.data<float>() : nullptr,
                       affine ? g.dweight.data<float>() : nullptr,
                       affine ? g.dbias.data<float>() : nullptr);
    return g;
  }
  const memory::desc md = data_desc(x, s);
  Tensor dy =
      reorder_to(dnnl_input(dy_in, "batch_norm_backward", "grad_output"), s, md, ReorderKind::Data);
  if (const int block = channel_block(x, s, md)) {  // see batch_norm_blocked.h
    const bn_blocked::Dims d{s[0], C, s[2] * s[3], block};
    PHX_CHECK(!relu || relu_workspace.numel() == bn_blocked::stored_size(d), ValueError,
              "batch_norm_backward: the ReLU workspace ", relu_workspace.describe(),
              " is not the one the forward of ", x.describe(), " makes");
    Tensor m = mean.contiguous(), v = var.contiguous(), w;
    if (affine) w = weight.contiguous();
    BatchNormGrads g;
    if (need[0]) g.dx = empty_like_desc(x.sizes(), md);
    if (affine) {
      g.dweight = Tensor::empty({C});
      g.dbias = Tensor::empty({C});
    }
    bn_blocked::backward(
        d, dy.data<float>(), x.data<float>(), m.data<float>(), v.data<float>(),
        affine ? w.data<float>() : nullptr, training, static_cast<float>(eps),
        relu ? relu_workspace.data<uint8_t>() : nullptr, need[0] ? g.dx.data<float>() : nullptr,
        affine ? g.dweight.data<float>() : nullptr, affine ? g.dbias.data<float>() : nullptr);
    return g;
  }
  const std::string layout = layout_key(x);
  auto fwd = forward_entry(md, layout, s, affine, training, eps, relu);
  auto e = cached<dnnl::batch_normalization_backward>(
      cache_key("bn_bwd", s, layout, affine, training, eps, relu), [&] {
        auto pd = compat::bn_bwd(
            cpu_engine(), affine ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data, md,
            static_cast<float>(eps), flags_for(affine, training, relu), fwd->pd);
        return pd;
      });
  BatchNormGrads g;
  g.dx = empty_like_desc(x.sizes(), md);
  Tensor m = mean.contiguous(), v = var.contiguous(), w;
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory_of(x, md)},
                                       {DNNL_ARG_DIFF_DST, memory_of(dy, md)},
                                       {DNNL_ARG_MEAN, plain_memory(m)},
                                       {DNNL_ARG_VARIANCE, plain_memory(v)},
                                       {DNNL_ARG_DIFF_SRC, memory_of(g.dx, md)}};
  if (affine) {
    g.dweight = Tensor::empty({C});
    g.dbias = Tensor::empty({C});
    w = weight.contiguous();
    args[DNNL_ARG_SCALE] = plain_memory(w);
    compat::bn_bwd_add_shift(args, plain_memory(w));  // 2.x only, see compat.h
    args[DNNL_ARG_DIFF_SCALE] = plain_memory(g.dweight);
    args[DNNL_ARG_DIFF_SHIFT] = plain_memory(g.dbias);
  }
  if (relu)
    args[DNNL_ARG_WORKSPACE] =
        memory(fwd->pd.workspace_desc(), cpu_engine(), relu_workspace.raw_data());
  execute(e->prim, std::move(args));
  if (!need[0]) g.dx = Tensor();
  return g;
}

}  // namespace phalanx::ops
