#include "dnnl/weight_cache.h"

#include <vector>

#include "dnnl/compat.h"
#include "dnnl/layout.h"

namespace phalanx::dnnl_util {

namespace {

// What a cached copy was made from: the version and the view of the storage it covers.
struct Source {
  uint64_t version;
  int64_t offset;
  Shape sizes, strides, logical;
  std::string layout;
  bool operator==(const Source& o) const {
    return version == o.version && offset == o.offset && sizes == o.sizes && strides == o.strides &&
           logical == o.logical && layout == o.layout;
  }
};

// Immutable once stored: a new entry means a new object, so readers need no lock.
struct BlockedWeights : DerivedData {
  // A convolution's forward and backward-data layouts (a weight shared by a few views or
  // layers may need more); the oldest entry goes first.
  static constexpr size_t kMaxEntries = 2;
  std::vector<std::pair<Source, Tensor>> entries;
};

// w reordered into `md`, its bytes read as `stored_as` (or row-major over `logical`).
Tensor reorder_from(const Tensor& w, const Shape& logical, const dnnl::memory::desc& md,
                    const dnnl::memory::desc* stored_as) {
  if (!stored_as) return reorder_to(w, logical, md, ReorderKind::Weights);
  Tensor plain = w.contiguous();
  if (*stored_as == md) return plain;
  Tensor out = empty_like_desc(w.sizes(), md);
  reorder_into(memory_of(plain, *stored_as), memory_of(out, md), ReorderKind::Weights);
  return out;
}

}  // namespace

Tensor reorder_weight(const Tensor& w, const Shape& logical, const dnnl::memory::desc& md,
                      bool cache, const dnnl::memory::desc* stored_as) {
  // Only plain float32 weights are cached: a blocked one already belongs to one computation.
  if (w.is_blocked() || w.dtype() != DType::Float32 || !w.is_contiguous())
    return reorder_from(w, logical, md, stored_as);
  Storage& storage = *w.storage();
  const uint64_t epoch = storage.derived_epoch();  // read before the bytes are
  std::string layout = dnnl_compat::md_key(md);
  if (stored_as) layout += "<" + dnnl_compat::md_key(*stored_as);
  const Source src{w.version(), w.offset(), w.sizes(), w.strides(), logical, layout};
  auto have = std::static_pointer_cast<const BlockedWeights>(storage.derived());
  if (have)
    for (const auto& [from, blocked] : have->entries)
      if (from == src) return blocked;
  Tensor out = reorder_from(w, logical, md, stored_as);
  if (!cache || out.same(w) || storage.has_external_writers()) return out;
  auto next = std::make_shared<BlockedWeights>();
  if (have)
    for (const auto& e : have->entries)
      if (e.first.version == src.version) next->entries.push_back(e);
  if (next->entries.size() >= BlockedWeights::kMaxEntries)
    next->entries.erase(next->entries.begin());
  next->entries.emplace_back(src, out);
  // A write during the reorder bumped the version: the entry then never matches (and the bump
  // dropped what was stored); a numpy view made meanwhile changed the epoch: not stored.
  storage.set_derived(std::move(next), epoch);
  return out;
}

}  // namespace phalanx::dnnl_util
