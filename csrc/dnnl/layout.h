// Tensors in oneDNN's blocked layouts. Consecutive oneDNN ops hand these to each other; a
// reorder to a plain row-major layout happens only when something else reads the tensor
// (numpy, an op oneDNN lacks, a checkpoint): Tensor::contiguous() converts it in place.
#pragma once
#include <dnnl.hpp>
#include <string>

#include "core/tensor.h"

namespace phalanx::dnnl_util {

class DnnlLayout : public OpaqueLayout {
 public:
  explicit DnnlLayout(dnnl::memory::desc md);
  void to_plain(const void* blocked, void* plain) const override;
  void from_plain(const void* plain, void* blocked) const override;
  size_t nbytes() const override { return md_.get_size(); }
  bool same_as(const OpaqueLayout& other) const override;
  const dnnl::memory::desc& desc() const { return md_; }

 private:
  dnnl::memory::desc md_, plain_;
};

// What was reordered, for tests and benchmarks that check reorders happen only at boundaries.
enum class ReorderKind { Data, Weights };
// to_blocked: tensors that adopted a blocked layout in place (a parameter kept in its
// convolution's layout, optimizer state and gradients joining it).
struct ReorderCounts {
  uint64_t data = 0, weights = 0, to_plain = 0, to_blocked = 0;
};
ReorderCounts reorder_counts();

// A descriptor that lets a primitive choose its preferred layout.
dnnl::memory::desc any_desc(const Shape& s);
// Float32 (N, C, H, W) stored channels-last (NHWC): vectorised in every oneDNN kernel on every
// ISA, for any channel count, with no padding.
dnnl::memory::desc channels_last_desc(const Shape& s);
// The descriptor of a float32 tensor as it is stored: its blocked desc, or plain row-major
// over `logical` (the same bytes seen with another shape, e.g. grouped conv weights).
dnnl::memory::desc desc_of(const Tensor& t);
dnnl::memory::desc desc_of(const Tensor& t, const Shape& logical);
std::string layout_key(const Tensor& t);  // for primitive-cache keys
// oneDNN memory over the tensor's bytes, which must be stored as `md`.
dnnl::memory memory_of(const Tensor& t, const dnnl::memory::desc& md);
// Stores a float32 tensor in `md` in place when it can (Tensor::adopt_layout: nothing else
// holds its bytes); whether it is now stored as `md`.
bool adopt_layout(const Tensor& t, const dnnl::memory::desc& md);
// A new float32 tensor of logical shape `sizes` whose bytes are laid out as `md`.
Tensor empty_like_desc(const Shape& sizes, const dnnl::memory::desc& md);
// t itself if already stored as `md`, else a reordered copy (counted under `kind`).
Tensor reorder_to(const Tensor& t, const dnnl::memory::desc& md, ReorderKind kind);
Tensor reorder_to(const Tensor& t, const Shape& logical, const dnnl::memory::desc& md,
                  ReorderKind kind);
// Copies src into dst memory, converting layouts.
void reorder_into(const dnnl::memory& src, const dnnl::memory& dst, ReorderKind kind);
// A float32 input as oneDNN ops take it: blocked stays blocked, strided becomes contiguous.
Tensor dnnl_input(const Tensor& t, const char* op, const char* arg);

}  // namespace phalanx::dnnl_util
