// The one place where oneDNN 2.x (Debian) and 3.x (built on phones) differ for phalanx.
// 2.x builds primitive descriptors from operation descriptors; 3.x builds them directly.
// Each function here returns a primitive descriptor with the same arguments on both.
#pragma once
#include <dnnl.hpp>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "dnnl/key_writer.h"

#if DNNL_VERSION_MAJOR >= 3
#define PHX_DNNL_V3 1
#else
#define PHX_DNNL_V3 0
#endif

namespace phalanx::dnnl_compat {

using dnnl::algorithm;
using dnnl::engine;
using dnnl::memory;
using dnnl::prop_kind;

// Threads: oneDNN's own (library) scratchpad is shared, by every primitive of a thread or by
// every execution of one primitive depending on how oneDNN was built; a primitive executed by
// two threads at once then has both use one scratchpad (wrong results, or a batch-norm kernel
// spinning forever on a barrier kept there). So every primitive is made with a user
// scratchpad, which execute() (engine.cc) passes from a buffer of the calling thread: any
// primitive can then run on any number of threads at once.
inline const dnnl::primitive_attr& user_scratchpad() {
  static const dnnl::primitive_attr attr = [] {
    dnnl::primitive_attr a;
    a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return a;
  }();
  return attr;
}

// user_scratchpad() plus a ReLU applied to the output in the same pass (a post-op): the
// convolution + ReLU fusion of ops/conv.cc.
inline const dnnl::primitive_attr& user_scratchpad_relu() {
  static const dnnl::primitive_attr attr = [] {
    dnnl::primitive_attr a;
    a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::post_ops ops;
#if PHX_DNNL_V3
    ops.append_eltwise(algorithm::eltwise_relu, 0.f, 0.f);
#else
    ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
#endif
    a.set_post_ops(ops);
    return a;
  }();
  return attr;
}

// The scratchpad a primitive made with user_scratchpad() needs (a zero-size desc: none).
inline memory::desc scratchpad_desc(const dnnl::primitive& p) {
#if PHX_DNNL_V3
  const_dnnl_memory_desc_t c =
      dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
  if (!c) return memory::desc();
  dnnl_memory_desc_t copy = nullptr;
  dnnl::error::wrap_c_api(dnnl_memory_desc_clone(&copy, c), "could not clone a scratchpad desc");
  return memory::desc(copy);
#else
  const dnnl_memory_desc_t* c =
      dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
  return c ? memory::desc(*c) : memory::desc();
#endif
}

inline memory::dims md_dims(const memory::desc& md) {
#if PHX_DNNL_V3
  return md.get_dims();
#else
  return md.dims();
#endif
}

// Whether a layout pads some dimension (a blocked channel dimension rounded up to the block).
inline bool md_is_padded(const memory::desc& md) {
#if PHX_DNNL_V3
  return md.get_dims() != md.get_padded_dims();
#else
  const auto& d = md.data;
  for (int i = 0; i < d.ndims; ++i)
    if (d.dims[i] != d.padded_dims[i]) return true;
  return false;
#endif
}

// A blocked layout spelled out: outer strides (elements) over the padded dims, then the
// inner blocks, outermost first (OIhw16i16o: idxs {1, 0}, blks {16, 16}).
struct Blocking {
  bool blocked = false;
  std::vector<int64_t> dims, padded, padded_offsets, strides, inner_blks, inner_idxs;
  int64_t offset0 = 0;
};

inline Blocking md_blocking(const memory::desc& md) {
  Blocking b;
#if PHX_DNNL_V3
  b.blocked = md.get_format_kind() == memory::format_kind::blocked;
  auto v = [](const memory::dims& d) { return std::vector<int64_t>(d.begin(), d.end()); };
  b.dims = v(md.get_dims());
  b.padded = v(md.get_padded_dims());
  b.padded_offsets = v(md.get_padded_offsets());
  b.offset0 = md.get_submemory_offset();
  if (b.blocked) {
    b.strides = v(md.get_strides());
    b.inner_blks = v(md.get_inner_blks());
    b.inner_idxs = v(md.get_inner_idxs());
  }
#else
  const auto& d = md.data;
  b.blocked = d.format_kind == dnnl_blocked;
  b.dims.assign(d.dims, d.dims + d.ndims);
  b.padded.assign(d.padded_dims, d.padded_dims + d.ndims);
  b.padded_offsets.assign(d.padded_offsets, d.padded_offsets + d.ndims);
  b.offset0 = d.offset0;
  if (b.blocked) {
    const auto& k = d.format_desc.blocking;
    b.strides.assign(k.strides, k.strides + d.ndims);
    b.inner_blks.assign(k.inner_blks, k.inner_blks + k.inner_nblks);
    b.inner_idxs.assign(k.inner_idxs, k.inner_idxs + k.inner_nblks);
  }
#endif
  return b;
}

// A string that identifies a memory descriptor's layout, for primitive-cache keys.
inline std::string md_key(const memory::desc& md) {
  phalanx::dnnl_util::KeyWriter os;
#if PHX_DNNL_V3
  os << static_cast<int>(md.get_format_kind()) << ':';
  for (auto d : md.get_dims()) os << d << ',';
  os << ':';
  for (auto d : md.get_padded_dims()) os << d << ',';
  os << ':';
  if (md.get_format_kind() == memory::format_kind::blocked) {
    for (auto s : md.get_strides()) os << s << ',';
    os << ':';
    auto blks = md.get_inner_blks();
    auto idxs = md.get_inner_idxs();
    for (int i = 0; i < md.get_inner_nblks(); ++i) os << idxs[i] << 'x' << blks[i] << ',';
  }
#else
  const auto& d = md.data;
  os << static_cast<int>(d.format_kind) << ':';
  for (int i = 0; i < d.ndims; ++i) os << d.dims[i] << ',';
  os << ':';
  for (int i = 0; i < d.ndims; ++i) os << d.padded_dims[i] << ',';
  os << ':';
  if (d.format_kind == dnnl_blocked) {
    const auto& b = d.format_desc.blocking;
    for (int i = 0; i < d.ndims; ++i) os << b.strides[i] << ',';
    os << ':';
    for (int i = 0; i < b.inner_nblks; ++i) os << b.inner_idxs[i] << 'x' << b.inner_blks[i] << ',';
  }
#endif
  return std::move(os).str();
}

// `alg`: convolution_direct, or convolution_auto (oneDNN may then take Winograd; ops/conv.h).
inline dnnl::convolution_forward::primitive_desc conv_fwd(
    const engine& e, prop_kind prop, algorithm alg, const memory::desc& src,
    const memory::desc& wei, const memory::desc* bias, const memory::desc& dst,
    const memory::dims& strides, const memory::dims& dilates, const memory::dims& pl,
    const memory::dims& pr, const dnnl::primitive_attr& attr = user_scratchpad()) {
  const memory::desc no_bias;
#if PHX_DNNL_V3
  return {e, prop, alg, src, wei, bias ? *bias : no_bias, dst, strides, dilates, pl, pr, attr};
#else
  dnnl::convolution_forward::desc d(prop, alg, src, wei, bias ? *bias : no_bias, dst, strides,
                                    dilates, pl, pr);
  return {d, attr, e};
#endif
}

inline dnnl::convolution_backward_data::primitive_desc conv_bwd_data(
    const engine& e, algorithm alg, const memory::desc& diff_src, const memory::desc& wei,
    const memory::desc& diff_dst, const memory::dims& strides, const memory::dims& dilates,
    const memory::dims& pl, const memory::dims& pr,
    const dnnl::convolution_forward::primitive_desc& hint) {
#if PHX_DNNL_V3
  return {e, alg, diff_src, wei, diff_dst, strides, dilates, pl, pr, hint, user_scratchpad()};
#else
  dnnl::convolution_backward_data::desc d(alg, diff_src, wei, diff_dst, strides, dilates, pl, pr);
  return {d, user_scratchpad(), e, hint};
#endif
}

inline dnnl::convolution_backward_weights::primitive_desc conv_bwd_weights(
    const engine& e, algorithm alg, const memory::desc& src, const memory::desc& diff_wei,
    const memory::desc* diff_bias, const memory::desc& diff_dst, const memory::dims& strides,
    const memory::dims& dilates, const memory::dims& pl, const memory::dims& pr,
    const dnnl::convolution_forward::primitive_desc& hint) {
  const memory::desc no_bias;
#if PHX_DNNL_V3
  return {
      e,  alg, src,  diff_wei,         diff_bias ? *diff_bias : no_bias, diff_dst, strides, dilates,
      pl, pr,  hint, user_scratchpad()};
#else
  dnnl::convolution_backward_weights::desc d(alg, src, diff_wei, diff_bias ? *diff_bias : no_bias,
                                             diff_dst, strides, dilates, pl, pr);
  return {d, user_scratchpad(), e, hint};
#endif
}

inline dnnl::batch_normalization_forward::primitive_desc bn_fwd(const engine& e, prop_kind prop,
                                                                const memory::desc& data, float eps,
                                                                dnnl::normalization_flags flags) {
#if PHX_DNNL_V3
  return {e, prop, data, data, eps, flags, user_scratchpad()};
#else
  dnnl::batch_normalization_forward::desc d(prop, data, eps, flags);
  return {d, user_scratchpad(), e};
#endif
}

inline dnnl::batch_normalization_backward::primitive_desc bn_bwd(
    const engine& e, prop_kind prop, const memory::desc& data, float eps,
    dnnl::normalization_flags flags,
    const dnnl::batch_normalization_forward::primitive_desc& hint) {
#if PHX_DNNL_V3
  return {e, prop, data, data, data, eps, flags, hint, user_scratchpad()};
#else
  dnnl::batch_normalization_backward::desc d(prop, data, data, eps, flags);
  return {d, user_scratchpad(), e, hint};
#endif
}

// Batch norm backward with use_shift: oneDNN 2.x counts the shift among the inputs (it does
// not read it) and refuses to run without it; 3.x refuses it ("bad number of inputs").
inline void bn_bwd_add_shift(std::unordered_map<int, memory>& args, const memory& shift) {
#if PHX_DNNL_V3
  (void)args;
  (void)shift;
#else
  args[DNNL_ARG_SHIFT] = shift;
#endif
}

inline dnnl::eltwise_forward::primitive_desc eltwise_fwd(const engine& e, prop_kind prop,
                                                         algorithm alg, const memory::desc& data,
                                                         float alpha, float beta) {
#if PHX_DNNL_V3
  return {e, prop, alg, data, data, alpha, beta, user_scratchpad()};
#else
  dnnl::eltwise_forward::desc d(prop, alg, data, alpha, beta);
  return {d, user_scratchpad(), e};
#endif
}

inline dnnl::eltwise_backward::primitive_desc eltwise_bwd(
    const engine& e, algorithm alg, const memory::desc& data, float alpha, float beta,
    const dnnl::eltwise_forward::primitive_desc& hint) {
#if PHX_DNNL_V3
  return {e, alg, data, data, data, alpha, beta, hint, user_scratchpad()};
#else
  dnnl::eltwise_backward::desc d(alg, data, data, alpha, beta);
  return {d, user_scratchpad(), e, hint};
#endif
}

#if PHX_DNNL_V3
using pooling_forward = dnnl::pooling_forward;
using pooling_backward = dnnl::pooling_backward;
using softmax_forward = dnnl::softmax_forward;
using softmax_backward = dnnl::softmax_backward;
#else
using pooling_forward = dnnl::pooling_v2_forward;
using pooling_backward = dnnl::pooling_v2_backward;
using softmax_forward = dnnl::softmax_v2_forward;
using softmax_backward = dnnl::softmax_v2_backward;
#endif

inline pooling_forward::primitive_desc pool_fwd(const engine& e, prop_kind prop, algorithm alg,
                                                const memory::desc& src, const memory::desc& dst,
                                                const memory::dims& strides,
                                                const memory::dims& kernel,
                                                const memory::dims& dilation,
                                                const memory::dims& pl, const memory::dims& pr) {
#if PHX_DNNL_V3
  return {e, prop, alg, src, dst, strides, kernel, dilation, pl, pr, user_scratchpad()};
#else
  pooling_forward::desc d(prop, alg, src, dst, strides, kernel, dilation, pl, pr);
  return {d, user_scratchpad(), e};
#endif
}

inline pooling_backward::primitive_desc pool_bwd(
    const engine& e, algorithm alg, const memory::desc& diff_src, const memory::desc& diff_dst,
    const memory::dims& strides, const memory::dims& kernel, const memory::dims& dilation,
    const memory::dims& pl, const memory::dims& pr, const pooling_forward::primitive_desc& hint) {
#if PHX_DNNL_V3
  return {e, alg, diff_src, diff_dst, strides, kernel, dilation, pl, pr, hint, user_scratchpad()};
#else
  pooling_backward::desc d(alg, diff_src, diff_dst, strides, kernel, dilation, pl, pr);
  return {d, user_scratchpad(), e, hint};
#endif
}

inline softmax_forward::primitive_desc softmax_fwd(const engine& e, prop_kind prop, bool log,
                                                   const memory::desc& data, int axis) {
  const algorithm alg = log ? algorithm::softmax_log : algorithm::softmax_accurate;
#if PHX_DNNL_V3
  return {e, prop, alg, data, data, axis, user_scratchpad()};
#else
  softmax_forward::desc d(prop, alg, data, data, axis);
  return {d, user_scratchpad(), e};
#endif
}

inline softmax_backward::primitive_desc softmax_bwd(const engine& e, bool log,
                                                    const memory::desc& data, int axis,
                                                    const softmax_forward::primitive_desc& hint) {
  const algorithm alg = log ? algorithm::softmax_log : algorithm::softmax_accurate;
#if PHX_DNNL_V3
  return {e, alg, data, data, data, axis, hint, user_scratchpad()};
#else
  softmax_backward::desc d(alg, data, data, data, axis);
  return {d, user_scratchpad(), e, hint};
#endif
}

inline dnnl::binary::primitive_desc binary_pd(const engine& e, algorithm alg,
                                              const memory::desc& src0, const memory::desc& src1,
                                              const memory::desc& dst) {
#if PHX_DNNL_V3
  return {e, alg, src0, src1, dst, user_scratchpad()};
#else
  dnnl::binary::desc d(alg, src0, src1, dst);
  return {d, user_scratchpad(), e};
#endif
}

inline dnnl::matmul::primitive_desc matmul_pd(const engine& e, const memory::desc& a,
                                              const memory::desc& b, const memory::desc& c) {
#if PHX_DNNL_V3
  return {e, a, b, c, user_scratchpad()};
#else
  dnnl::matmul::desc d(a, b, c);
  return {d, user_scratchpad(), e};
#endif
}

// matmul with a bias (its desc broadcast over the rows of c).
inline dnnl::matmul::primitive_desc matmul_bias_pd(const engine& e, const memory::desc& a,
                                                   const memory::desc& b, const memory::desc& bias,
                                                   const memory::desc& c) {
#if PHX_DNNL_V3
  return {e, a, b, bias, c, user_scratchpad()};
#else
  dnnl::matmul::desc d(a, b, bias, c);
  return {d, user_scratchpad(), e};
#endif
}

// Layer normalisation over the last logical dimension of `data`; `stat` describes the
// per-row mean and variance (the data's shape without its last dimension).
inline dnnl::layer_normalization_forward::primitive_desc ln_fwd(const engine& e, prop_kind prop,
                                                                const memory::desc& data,
                                                                const memory::desc& stat, float eps,
                                                                dnnl::normalization_flags flags) {
#if PHX_DNNL_V3
  return {e, prop, data, data, stat, eps, flags, user_scratchpad()};
#else
  dnnl::layer_normalization_forward::desc d(prop, data, stat, eps, flags);
  return {d, user_scratchpad(), e};
#endif
}

inline dnnl::layer_normalization_backward::primitive_desc ln_bwd(
    const engine& e, prop_kind prop, const memory::desc& data, const memory::desc& stat, float eps,
    dnnl::normalization_flags flags,
    const dnnl::layer_normalization_forward::primitive_desc& hint) {
#if PHX_DNNL_V3
  return {e, prop, data, data, data, stat, eps, flags, hint, user_scratchpad()};
#else
  dnnl::layer_normalization_backward::desc d(prop, data, data, stat, eps, flags);
  return {d, user_scratchpad(), e, hint};
#endif
}

// Deconvolution (transposed convolution): the arguments mean what they mean for a
// convolution whose forward is this op's backward-data (weights {OC, IC, KH, KW}, with OC the
// deconvolution's output channels).
inline dnnl::deconvolution_forward::primitive_desc deconv_fwd(
    const engine& e, prop_kind prop, const memory::desc& src, const memory::desc& wei,
    const memory::desc* bias, const memory::desc& dst, const memory::dims& strides,
    const memory::dims& dilates, const memory::dims& pl, const memory::dims& pr) {
  const memory::desc no_bias;
#if PHX_DNNL_V3
  return {e,   prop,    algorithm::deconvolution_direct,
          src, wei,     bias ? *bias : no_bias,
          dst, strides, dilates,
          pl,  pr,      user_scratchpad()};
#else
  dnnl::deconvolution_forward::desc d(prop, algorithm::deconvolution_direct, src, wei,
                                      bias ? *bias : no_bias, dst, strides, dilates, pl, pr);
  return {d, user_scratchpad(), e};
#endif
}

inline dnnl::deconvolution_backward_data::primitive_desc deconv_bwd_data(
    const engine& e, const memory::desc& diff_src, const memory::desc& wei,
    const memory::desc& diff_dst, const memory::dims& strides, const memory::dims& dilates,
    const memory::dims& pl, const memory::dims& pr,
    const dnnl::deconvolution_forward::primitive_desc& hint) {
#if PHX_DNNL_V3
  return {e,
          algorithm::deconvolution_direct,
          diff_src,
          wei,
          diff_dst,
          strides,
          dilates,
          pl,
          pr,
          hint,
          user_scratchpad()};
#else
  dnnl::deconvolution_backward_data::desc d(algorithm::deconvolution_direct, diff_src, wei,
                                            diff_dst, strides, dilates, pl, pr);
  return {d, user_scratchpad(), e, hint};
#endif
}

inline dnnl::deconvolution_backward_weights::primitive_desc deconv_bwd_weights(
    const engine& e, const memory::desc& src, const memory::desc& diff_wei,
    const memory::desc* diff_bias, const memory::desc& diff_dst, const memory::dims& strides,
    const memory::dims& dilates, const memory::dims& pl, const memory::dims& pr,
    const dnnl::deconvolution_forward::primitive_desc& hint) {
  const memory::desc no_bias;
#if PHX_DNNL_V3
  return {e,
          algorithm::deconvolution_direct,
          src,
          diff_wei,
          diff_bias ? *diff_bias : no_bias,
          diff_dst,
          strides,
          dilates,
          pl,
          pr,
          hint,
          user_scratchpad()};
#else
  dnnl::deconvolution_backward_weights::desc d(algorithm::deconvolution_direct, src, diff_wei,
                                               diff_bias ? *diff_bias : no_bias, diff_dst, strides,
                                               dilates, pl, pr);
  return {d, user_scratchpad(), e, hint};
#endif
}

// Resampling from src's spatial size to dst's (no explicit factors: oneDNN takes dst / src).
inline dnnl::resampling_forward::primitive_desc resampling_fwd(const engine& e, prop_kind prop,
                                                               algorithm alg,
                                                               const memory::desc& src,
                                                               const memory::desc& dst) {
#if PHX_DNNL_V3
  return {e, prop, alg, src, dst, user_scratchpad()};
#else
  dnnl::resampling_forward::desc d(prop, alg, src, dst);
  return {d, user_scratchpad(), e};
#endif
}

inline dnnl::resampling_backward::primitive_desc resampling_bwd(
    const engine& e, algorithm alg, const memory::desc& diff_src, const memory::desc& diff_dst,
    const dnnl::resampling_forward::primitive_desc& hint) {
#if PHX_DNNL_V3
  return {e, alg, diff_src, diff_dst, hint, user_scratchpad()};
#else
  dnnl::resampling_backward::desc d(alg, diff_src, diff_dst);
  return {d, user_scratchpad(), e, hint};
#endif
}

}  // namespace phalanx::dnnl_compat
