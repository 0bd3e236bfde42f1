#include "ops/resample.h"

#include <utility>

#include "core/factory.h"
#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "dnnl/layout.h"
#include "ops/zero_size.h"

namespace phalanx::ops {

using dnnl::memory;
using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

namespace {

constexpr const char* kOp = "interpolate";

dnnl::algorithm algorithm_of(ResampleMode mode) {
  return mode == ResampleMode::Nearest ? dnnl::algorithm::resampling_nearest
                                       : dnnl::algorithm::resampling_linear;
}

Shape output_shape(const Shape& in, const Shape& out_spatial) {
  PHX_CHECK(in.size() >= 3 && in.size() <= 5, ValueError, kOp,
            ": expected a 3-D to 5-D input (N, C, spatial...), got ", in.size(), " dimensions");
  PHX_CHECK(out_spatial.size() + 2 == in.size(), ValueError, kOp, ": ", in.size() - 2,
            " output sizes needed, got ", out_spatial.size());
  Shape out{in[0], in[1]};
  for (size_t i = 0; i < out_spatial.size(); ++i) {
    PHX_CHECK(out_spatial[i] > 0, ValueError, kOp, ": output size ", out_spatial[i],
              " must be positive");
    PHX_CHECK(in[i + 2] > 0 || in[0] * in[1] == 0, ValueError, kOp, ": input spatial size ",
              in[i + 2], " must be positive");
    out.push_back(out_spatial[i]);
  }
  return out;
}

using FwdEntry = Cached<dnnl::resampling_forward>;

std::shared_ptr<FwdEntry> forward_entry(const memory::desc& src, const std::string& layout,
                                        const Shape& in, const Shape& out, ResampleMode mode) {
  return cached<dnnl::resampling_forward>(
      cache_key("resample_fwd", in, out, layout, static_cast<int>(mode)), [&] {
        return compat::resampling_fwd(cpu_engine(), dnnl::prop_kind::forward_training,
                                      algorithm_of(mode), src, any_desc(out));
      });
}

}  // namespace

Tensor resample_forward(const Tensor& x_in, const Shape& out_spatial, ResampleMode mode) {
  Tensor x = dnnl_input(x_in, kOp, "input");  // a blocked input stays blocked
  const Shape out = output_shape(x.sizes(), out_spatial);
  if (has_no_elements(x)) return Tensor::empty(out);
  const memory::desc src = desc_of(x);
  auto e = forward_entry(src, layout_key(x), x.sizes(), out, mode);
  Tensor y = empty_like_desc(out, e->pd.dst_desc());
  execute(e->prim,
          {{DNNL_ARG_SRC, memory_of(x, src)}, {DNNL_ARG_DST, memory_of(y, e->pd.dst_desc())}});
  return y;
}

Tensor resample_backward(const Tensor& dy_in, const Shape& in_shape, ResampleMode mode) {
  Tensor dy = dnnl_input(dy_in, "interpolate_backward", "grad_output");
  const Shape out_spatial(dy.sizes().begin() + 2, dy.sizes().end());
  PHX_CHECK(output_shape(in_shape, out_spatial) == dy.sizes(), ValueError,
            "interpolate_backward: grad_output ", dy.describe(),
            " does not match the input's batch and channels");
  if (has_no_elements(dy) || shape_numel(in_shape) == 0) return zeros(in_shape);
  // The forward hint: a plain input's (the backward cannot know the forward's layout, and
  // the hint only has to describe the same problem).
  auto fwd = forward_entry(plain_desc(in_shape), "plain", in_shape, dy.sizes(), mode);
  const memory::desc diff_dst = desc_of(dy);
  auto e = cached<dnnl::resampling_backward>(
      cache_key("resample_bwd", in_shape, dy.sizes(), layout_key(dy), static_cast<int>(mode)), [&] {
        return compat::resampling_bwd(cpu_engine(), algorithm_of(mode), any_desc(in_shape),
                                      diff_dst, fwd->pd);
      });
  Tensor dx = empty_like_desc(in_shape, e->pd.diff_src_desc());
  execute(e->prim, {{DNNL_ARG_DIFF_DST, memory_of(dy, diff_dst)},
                    {DNNL_ARG_DIFF_SRC, memory_of(dx, e->pd.diff_src_desc())}});
  return dx;
}

}  // namespace phalanx::ops
