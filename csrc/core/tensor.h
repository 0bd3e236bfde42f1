// Tensor: a strided view of a Storage, with a dtype and (optionally) autograd state.
// A Tensor is a cheap handle; copies share the same TensorImpl.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/storage.h"

namespace phalanx {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
// Element count; ValueError naming the shape if it does not fit in int64.
int64_t shape_numel(const Shape& s);
// Row-major strides; ValueError naming the shape if one does not fit in int64.
Shape contiguous_strides(const Shape& sizes);
// The bytes a new row-major tensor of this shape needs, checked before anything is allocated:
// ValueError for a negative dimension, MemoryError naming the shape when the count overflows
// or exceeds kMaxStorageBytes (core/checked_math.h).
size_t storage_nbytes(const Shape& sizes, DType dtype);
// Wraps a possibly negative dimension index into [0, ndim); IndexError names both.
int64_t wrap_dim(int64_t dim, int64_t ndim);

namespace autograd {
struct Node;
}

// A oneDNN blocked layout, opaque to the core. The dnnl layer implements it; the core only
// asks it to turn the bytes back into a plain row-major tensor at a boundary.
struct OpaqueLayout {
  virtual ~OpaqueLayout() = default;
  virtual void to_plain(const void* blocked, void* plain) const = 0;
  // The reverse, for a plain tensor adopting this layout in place (Tensor::adopt_layout).
  virtual void from_plain(const void* plain, void* blocked) const = 0;
  // Bytes the layout occupies: more than the plain size where it pads a dimension (the padding
  // holds zeros).
  virtual size_t nbytes() const = 0;
  // Whether element i sits at the same place in both, so element loops can pair them.
  virtual bool same_as(const OpaqueLayout& other) const = 0;
};

class Tensor;
using TensorHook =
    std::function<Tensor(const Tensor&)>;  // returns an undefined Tensor to keep grad
using PostAccumulateHook = std::function<void(const Tensor&)>;

struct TensorImpl;

struct AutogradMeta {
  bool requires_grad = false;
  bool retains_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;  // null for leaves
  uint32_t output_nr = 0;
  std::weak_ptr<autograd::Node> grad_accumulator;  // the AccumulateGrad node of a leaf
  std::vector<TensorHook> leaf_hooks;              // hooks of a leaf, run before accumulation
  std::vector<PostAccumulateHook> post_accumulate_hooks;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape sizes, strides;
  DType dtype = DType::Float32;
  std::shared_ptr<const OpaqueLayout> layout;  // non-null: storage holds a oneDNN blocked layout
  std::shared_ptr<TensorImpl> view_base;       // set for views of another tensor
  std::unique_ptr<AutogradMeta> autograd;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Allocation.
  static Tensor empty(const Shape& sizes, DType dtype = DType::Float32);
  static Tensor from_blob(std::shared_ptr<Storage> storage, const Shape& sizes,
                          const Shape& strides, int64_t offset, DType dtype);

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  const Shape& sizes() const { return impl_->sizes; }
  const Shape& strides() const { return impl_->strides; }
  int64_t size(int64_t d) const { return impl_->sizes[wrap_dim(d, dim())]; }
  int64_t stride(int64_t d) const { return impl_->strides[wrap_dim(d, dim())]; }
  int64_t dim() const { return static_cast<int64_t>(impl_->sizes.size()); }
  int64_t numel() const { return shape_numel(impl_->sizes); }
  DType dtype() const { return impl_->dtype; }
  int64_t offset() const { return impl_->offset; }
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
  bool is_contiguous() const;
  // Threads: `layout` is read and cleared atomically (a conversion to plain may run on another
  // thread); storage, offset and strides change only together with it, under a lock.
  bool is_blocked() const { return layout() != nullptr; }
  std::shared_ptr<const OpaqueLayout> layout() const { return std::atomic_load(&impl_->layout); }
  // A handle whose storage and layout no conversion can change: *this when plain (a plain
  // tensor stays plain), else an alias taken under the conversion lock. Code that reads a
  // blocked tensor's bytes does so through one, so another thread converting the tensor in
  // place meanwhile cannot swap the storage under it.
  Tensor stable() const { return is_blocked() ? alias() : *this; }

  void* raw_data() const;  // address of element 0 (after offset)
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw_data());
  }

  uint64_t version() const { return impl_->storage->version; }
  // Every in-place write calls this: it also drops data derived from the old bytes.
  void bump_version() const {
    ++impl_->storage->version;
    impl_->storage->drop_derived();
  }

  // Views share storage (and version counter); they do not record autograd history here:
  // the autograd layer wraps them.
  Tensor as_strided(const Shape& sizes, const Shape& strides, int64_t offset) const;
  Tensor view(const Shape& sizes) const;     // ValueError if the strides do not allow it
  Tensor reshape(const Shape& sizes) const;  // view when possible, else copy
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor permute(const Shape& dims) const;
  Tensor expand(const Shape& sizes) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  Tensor contiguous() const;  // self if already plain row-major (converting a blocked layout
                              // in place), else a copy
  // Converts a tensor stored in a oneDNN blocked layout to plain row-major, in place: every
  // handle of this TensorImpl sees the plain data afterwards. No-op for plain tensors.
  // Threads: one conversion at a time (a process-wide lock); a tensor read by several threads
  // is converted once, and readers of its blocked bytes hold a stable() handle.
  void materialize_plain() const;
  // The reverse: stores a plain tensor in `layout`, in place, keeping its version (a
  // parameter kept in its convolution's layout between steps). Only a tensor that alone holds
  // its bytes converts: no view, no alias sharing the storage, no numpy memory or view, since
  // those would keep reading the old plain bytes. Returns whether the tensor is now stored in
  // `layout` (true at once when it already is; false for any other blocked layout).
  bool adopt_layout(std::shared_ptr<const OpaqueLayout> layout) const;
  // Elements the storage holds for this tensor: numel(), or a blocked layout's padded count.
  // Element loops over tensors that share a layout (same_layout) run over this many.
  int64_t stored_numel() const;
  // Both plain, or both in the same blocked layout.
  bool same_layout(const Tensor& other) const;
  // A new tensor of this one's shape, dtype and storage layout, uninitialised.
  Tensor empty_like_stored() const;
  Tensor clone() const;                     // always a fresh row-major copy
  Tensor to(DType dtype) const;             // self if same dtype
  Tensor alias() const;                     // same storage and version, no autograd state
  void copy_from(const Tensor& src) const;  // broadcasting, converting copy into self
  void fill(double value) const;
  double item() const;

  // Autograd state (the engine lives in autograd/; these are plain accessors).
  bool requires_grad() const { return impl_->autograd && impl_->autograd->requires_grad; }
  AutogradMeta& autograd_meta() const;  // creates it on first use
  AutogradMeta* autograd_meta_if_any() const { return impl_->autograd.get(); }
  bool is_leaf() const { return !impl_->autograd || !impl_->autograd->grad_fn; }
  const std::shared_ptr<autograd::Node>& grad_fn() const;

  std::string describe() const;  // "float32[2, 3]" for error messages

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Converts element i of a tensor of dtype t at address p into a double, and back.
double load_as_double(const void* p, DType t);
void store_from_double(void* p, DType t, double v);

}  // namespace phalanx
