#include "dnnl/layout.h"

#include <atomic>

#include "dnnl/compat.h"
#include "dnnl/engine.h"

namespace phalanx::dnnl_util {

namespace {
std::atomic<uint64_t> g_data{0}, g_weights{0}, g_to_plain{0}, g_to_blocked{0};

void run_reorder(const dnnl::memory& src, const dnnl::memory& dst) {
  // oneDNN caches reorder primitives internally; creating one for a seen pair is cheap.
  dnnl::reorder r(dnnl::reorder::primitive_desc(src, dst, dnnl_compat::user_scratchpad()));
  execute(r, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
}
}  // namespace

ReorderCounts reorder_counts() {
  return {g_data.load(), g_weights.load(), g_to_plain.load(), g_to_blocked.load()};
}

DnnlLayout::DnnlLayout(dnnl::memory::desc md) : md_(std::move(md)) {
  auto dims = dnnl_compat::md_dims(md_);
  plain_ = plain_desc(Shape(dims.begin(), dims.end()));
}

void DnnlLayout::to_plain(const void* blocked, void* plain) const {
  ++g_to_plain;
  run_reorder(dnnl::memory(md_, cpu_engine(), const_cast<void*>(blocked)),
              dnnl::memory(plain_, cpu_engine(), plain));
}

void DnnlLayout::from_plain(const void* plain, void* blocked) const {
  ++g_to_blocked;
  run_reorder(dnnl::memory(plain_, cpu_engine(), const_cast<void*>(plain)),
              dnnl::memory(md_, cpu_engine(), blocked));
}

bool DnnlLayout::same_as(const OpaqueLayout& other) const {
  const auto* o = dynamic_cast<const DnnlLayout*>(&other);
  return o && o->md_ == md_;
}

bool adopt_layout(const Tensor& t, const dnnl::memory::desc& md) {
  if (t.dtype() != DType::Float32) return false;
  if (auto have = t.layout()) return static_cast<const DnnlLayout&>(*have).desc() == md;
  auto dims = dnnl_compat::md_dims(md);
  if (md == plain_desc(Shape(dims.begin(), dims.end()))) return t.is_contiguous();
  return t.adopt_layout(std::make_shared<DnnlLayout>(md));
}

dnnl::memory::desc any_desc(const Shape& s) {
  return dnnl::memory::desc(to_dims(s), dnnl::memory::data_type::f32,
                            dnnl::memory::format_tag::any);
}

dnnl::memory::desc channels_last_desc(const Shape& s) {
  return dnnl::memory::desc(to_dims(s), dnnl::memory::data_type::f32,
                            dnnl::memory::format_tag::acdb);
}

dnnl::memory::desc desc_of(const Tensor& t) {
  return desc_of(t, t.sizes());
}

dnnl::memory::desc desc_of(const Tensor& t, const Shape& logical) {
  if (auto layout = t.layout()) return static_cast<const DnnlLayout&>(*layout).desc();
  return plain_desc(logical);
}

std::string layout_key(const Tensor& t) {
  auto layout = t.layout();
  return layout ? dnnl_compat::md_key(static_cast<const DnnlLayout&>(*layout).desc())
                : std::string("plain");
}

dnnl::memory memory_of(const Tensor& t, const dnnl::memory::desc& md) {
  PHX_CHECK(t.dtype() == DType::Float32 && (t.is_blocked() || t.is_contiguous()), Error,
            "internal: oneDNN memory needs a float32 tensor stored densely, got ", t.describe());
  return dnnl::memory(md, cpu_engine(), t.raw_data());
}

Tensor empty_like_desc(const Shape& sizes, const dnnl::memory::desc& md) {
  auto dims = dnnl_compat::md_dims(md);
  if (md == plain_desc(Shape(dims.begin(), dims.end()))) return Tensor::empty(sizes);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(md.get_size());
  impl->sizes = sizes;
  impl->strides = contiguous_strides(sizes);
  impl->dtype = DType::Float32;
  impl->layout = std::make_shared<DnnlLayout>(md);
  return Tensor(std::move(impl));
}

void reorder_into(const dnnl::memory& src, const dnnl::memory& dst, ReorderKind kind) {
  (kind == ReorderKind::Weights ? g_weights : g_data)++;
  run_reorder(src, dst);
}

Tensor reorder_to(const Tensor& t, const Shape& logical, const dnnl::memory::desc& md,
                  ReorderKind kind) {
  Tensor src = t.stable();
  if (!src.is_blocked()) src = src.contiguous();
  auto have = desc_of(src, logical);
  if (have == md) return src;
  Tensor out = empty_like_desc(t.sizes(), md);
  reorder_into(memory_of(src, have), memory_of(out, md), kind);
  return out;
}

Tensor reorder_to(const Tensor& t, const dnnl::memory::desc& md, ReorderKind kind) {
  return reorder_to(t, t.sizes(), md, kind);
}

Tensor dnnl_input(const Tensor& t, const char* op, const char* arg) {
  PHX_CHECK(t.defined(), ValueError, op, ": argument '", arg, "' is missing");
  PHX_CHECK(t.dtype() == DType::Float32, TypeError, op, ": expected '", arg,
            "' to be float32, got ", t.describe());
  Tensor s = t.stable();  // see Tensor::stable: the bytes this op reads stay put
  return s.is_blocked() ? s : s.contiguous();
}

}  // namespace phalanx::dnnl_util
