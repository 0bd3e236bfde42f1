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

}  // namespace phalanx::dnnl_util
