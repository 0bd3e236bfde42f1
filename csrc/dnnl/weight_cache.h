// Weights reordered into a convolution's blocked layout, kept on the weight's storage so an
// unchanged weight is reordered once rather than on every call. Staleness is the danger; the
// rules (see Storage::derived in core/storage.h):
//  - an entry records the storage version it was made from and is used only at that version;
//    every in-place write bumps the version and also frees the entries (the optimizer step);
//  - storages that can change without a bump (numpy memory, tensors with live numpy views)
//    cache nothing;
//  - entries die with the storage, so a freed and reused address can never match.
// Threads: entries are immutable and swapped whole under the storage's lock (core/storage.cc);
// two threads missing at once both reorder, and either result is kept.
#pragma once
#include <dnnl.hpp>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace phalanx::dnnl_util {

// `w` (logically `logical`, e.g. a grouped view of its shape) in layout `md`: a cached copy
// when one was made from the current bytes, else a fresh reorder (counted as a weight
// reorder), cached when `cache` is set.
// stored_as: how a plain weight's bytes map to `logical` when that is not row-major (a
// transposed convolution's PyTorch weight is (in, out) where oneDNN's logical order is
// (out, in)); null for row-major.
Tensor reorder_weight(const Tensor& w, const Shape& logical, const dnnl::memory::desc& md,
                      bool cache, const dnnl::memory::desc* stored_as = nullptr);

// A parameter kept in its convolution's forward layout (OIhw16i16o on AVX-512) is read by
// backward-data in the other blocking (OIhw16o16i): the same blocks in the same order, each
// transposed. The backward caches that copy (reorder_weight); an optimizer updating the
// parameter element by element writes the copy alongside, block by block while the block is
// in cache, so the next backward finds it made from the new bytes and a training step
// reorders no weight (issue 17). A copy in any other blocked layout (a channel count that is
// not a whole block: LeNet's 6-channel layer, read padded to 16) is written element by
// element through a map made once per pair of layouts.
// Whether the backward caches a kept weight's copy for WeightTwins (default on; costs one copy
// of those weights between steps). PHALANX_TWIN_WEIGHTS=0 in the environment starts it off,
// phalanx.backends.onednn.twin_weights sets it (read at each backward).
bool twin_weights_enabled();
void set_twin_weights_enabled(bool on);

class WeightTwins {
 public:
  // The copies of `param` (about to be updated in place) cached at its current version in a
  // blocked layout of the same dimensions; none for a plain parameter or one whose storage
  // others may write (numpy).
  explicit WeightTwins(const Tensor& param);
  bool empty() const { return twins_.empty(); }
  // Elements per chunk handed to write(): whole blocks of every twin written by blocks.
  int64_t chunk() const { return chunk_; }
  // Copies stored elements [begin, end) of the updated parameter into every twin; begin is a
  // multiple of chunk(), end one or the stored size. Threads may write disjoint ranges.
  void write(const float* param, int64_t begin, int64_t end) const;
  // After the update bumped the parameter's version: caches the twins as made from it.
  void commit(const Tensor& param) const;

 private:
  struct Twin;
  std::vector<std::shared_ptr<Twin>> twins_;
  int64_t chunk_ = 0;
  uint64_t epoch_ = 0;
};

}  // namespace phalanx::dnnl_util
