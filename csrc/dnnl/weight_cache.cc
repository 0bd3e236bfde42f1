#include "dnnl/weight_cache.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "core/env_switch.h"
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

// The cache key's layout part: the copy's layout, how the weight's bytes were read, and the
// weight's own layout (a parameter kept blocked adopts its layout in place at the same
// version: a copy made from its plain bytes must not match its blocked ones).
std::string copy_key(const Tensor& w, const dnnl::memory::desc& md,
                     const dnnl::memory::desc* stored_as) {
  std::string key = dnnl_compat::md_key(md);
  if (stored_as) key += "<" + dnnl_compat::md_key(*stored_as);
  return key + "<" + layout_key(w);
}

}  // namespace

Tensor reorder_weight(const Tensor& w, const Shape& logical, const dnnl::memory::desc& md,
                      bool cache, const dnnl::memory::desc* stored_as) {
  // Plain weights are cached when contiguous; blocked ones (a parameter kept in its forward
  // layout) too, for WeightTwins to keep the backward's copy current.
  // A kept weight already in `md` (the forward's layout, every training forward) is read as
  // it is, without building a cache key.
  if (w.dtype() != DType::Float32 || (!w.is_blocked() && !w.is_contiguous()) ||
      (w.is_blocked() && !stored_as && desc_of(w) == md))
    return reorder_from(w, logical, md, stored_as);
  Storage& storage = *w.storage();
  const uint64_t epoch = storage.derived_epoch();  // read before the bytes are
  const Source src{w.version(), w.offset(), w.sizes(),
                   w.strides(), logical,    copy_key(w, md, stored_as)};
  auto have = std::static_pointer_cast<const BlockedWeights>(storage.derived());
  if (have)
    for (const auto& [from, blocked] : have->entries)
      if (from == src) return blocked;
  Tensor out = reorder_from(w, logical, md, stored_as);
  // Never the weight's own bytes (the weight itself, or an alias of it when already in `md`):
  // the storage would hold itself.
  if (!cache || out.storage().get() == &storage || storage.has_external_writers()) return out;
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

namespace {

// How a parameter's stored elements land in a twin copy of another layout.
struct TwinMap {
  // rows x cols > 0: the twin holds the parameter's blocks (rows x cols each, rows along the
  // parameter's outer inner dimension) transposed, block k of the parameter at block to[k].
  // 0: element k of the parameter goes to element to[k] (-1: padding, not copied), and the
  // twin's own padding, at `zeros`, is zero.
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> to, zeros;
};

// Where each block of `mine` sits in `twin`, by block index, when `twin` holds the same
// blocks (in any order, each at a whole-block offset) with the two inner block dimensions
// swapped: OIhw16i16o and OIhw16o16i (3x3 convolutions), ABcd16b16a and BAcd16a16b (1x1
// convolutions: the blocks' order transposed too). False for any other pair.
bool transposed_blocks(const dnnl_compat::Blocking& a, const dnnl_compat::Blocking& b, size_t bytes,
                       TwinMap* map) {
  if (a.padded != b.padded || a.inner_blks.size() != 2 || b.inner_blks.size() != 2) return false;
  if (a.inner_idxs[0] == a.inner_idxs[1] || a.inner_idxs[0] != b.inner_idxs[1] ||
      a.inner_idxs[1] != b.inner_idxs[0] || a.inner_blks[0] != b.inner_blks[1] ||
      a.inner_blks[1] != b.inner_blks[0])
    return false;
  const int64_t block = a.inner_blks[0] * a.inner_blks[1];
  if (bytes % (block * sizeof(float))) return false;
  const size_t nd = a.padded.size();
  std::vector<int64_t> extent(a.padded);  // blocks along each dimension
  for (int k = 0; k < 2; ++k) {
    const int64_t d = a.inner_idxs[k];
    if (extent[d] % a.inner_blks[k]) return false;
    extent[d] /= a.inner_blks[k];
  }
  for (size_t d = 0; d < nd; ++d)
    if (a.strides[d] % block || b.strides[d] % block) return false;
  const int64_t blocks = static_cast<int64_t>(bytes / sizeof(float)) / block;
  std::vector<int64_t> to(static_cast<size_t>(blocks), -1), index(nd, 0);
  for (int64_t seen = 0;; ++seen) {  // every block: its index along each dimension
    int64_t from = 0, into = 0;
    for (size_t d = 0; d < nd; ++d) {
      from += index[d] * a.strides[d] / block;
      into += index[d] * b.strides[d] / block;
    }
    if (seen >= blocks || from >= blocks || into >= blocks || to[from] != -1) return false;
    to[from] = into;
    size_t d = nd;
    while (d > 0 && ++index[d - 1] == extent[d - 1]) index[--d] = 0;
    if (d == 0) break;
  }
  for (int64_t t : to)
    if (t < 0) return false;  // a block of mine no index reaches: not a dense layout
  map->rows = a.inner_blks[0];
  map->cols = a.inner_blks[1];
  map->to = std::move(to);
  return true;
}

// Element offsets in a blocked layout, by logical index.
class ElementOffsets {
 public:
  explicit ElementOffsets(const dnnl_compat::Blocking& b) : b_(b), block_(b.dims.size(), 1) {
    for (size_t k = 0; k < b.inner_blks.size(); ++k) block_[b.inner_idxs[k]] *= b.inner_blks[k];
  }
  int64_t operator()(const std::vector<int64_t>& index) const {
    int64_t offset = 0;
    for (size_t d = 0; d < index.size(); ++d) offset += index[d] / block_[d] * b_.strides[d];
    // the inner blocks, outermost first, are the digits of each index within its whole block
    int64_t inner = 0;
    for (size_t k = 0; k < b_.inner_blks.size(); ++k) {
      const int64_t d = b_.inner_idxs[k];
      int64_t below = 1;  // the dimension's inner blocks inside this one
      for (size_t j = k + 1; j < b_.inner_blks.size(); ++j)
        if (b_.inner_idxs[j] == d) below *= b_.inner_blks[j];
      inner = inner * b_.inner_blks[k] + index[d] % block_[d] / below % b_.inner_blks[k];
    }
    return offset + inner;
  }

 private:
  const dnnl_compat::Blocking& b_;
  std::vector<int64_t> block_;  // each dimension's whole inner block
};

// Any other pair of dense blocked layouts of the same dimensions, element by element (LeNet's
// 6-channel layer: Acdb16a forward, ABcd16a16b with the channels padded for backward-data).
bool element_map(const dnnl_compat::Blocking& a, const dnnl_compat::Blocking& b, size_t a_bytes,
                 size_t b_bytes, TwinMap* map) {
  const int64_t na = static_cast<int64_t>(a_bytes / sizeof(float));
  const int64_t nb = static_cast<int64_t>(b_bytes / sizeof(float));
  std::vector<int64_t> to(static_cast<size_t>(na), -1);
  std::vector<char> written(static_cast<size_t>(nb), 0);
  const ElementOffsets in_a(a), in_b(b);
  std::vector<int64_t> index(a.dims.size(), 0);
  for (bool more = !a.dims.empty(); more;) {  // every logical element
    const int64_t from = in_a(index), into = in_b(index);
    if (from < 0 || from >= na || into < 0 || into >= nb || to[from] != -1 || written[into])
      return false;
    to[from] = into;
    written[into] = 1;
    size_t d = index.size();
    while (d > 0 && ++index[d - 1] == a.dims[d - 1]) index[--d] = 0;
    more = d > 0;
  }
  for (int64_t k = 0; k < nb; ++k)
    if (!written[k]) map->zeros.push_back(k);
  map->to = std::move(to);
  return true;
}

// The map from `mine` to `twin`, made once per pair of layouts; null where neither kind fits.
std::shared_ptr<const TwinMap> twin_map(const dnnl::memory::desc& mine,
                                        const dnnl::memory::desc& twin) {
  static std::mutex lock;
  static std::unordered_map<std::string, std::shared_ptr<const TwinMap>> made;
  const std::string key = dnnl_compat::md_key(mine) + ">" + dnnl_compat::md_key(twin);
  {
    std::lock_guard<std::mutex> hold(lock);
    auto it = made.find(key);
    if (it != made.end()) return it->second;
  }
  const auto a = dnnl_compat::md_blocking(mine), b = dnnl_compat::md_blocking(twin);
  auto map = std::make_shared<TwinMap>();
  const bool comparable = a.blocked && b.blocked && a.dims == b.dims && a.offset0 == 0 &&
                          b.offset0 == 0 && a.padded_offsets == b.padded_offsets &&
                          std::all_of(a.padded_offsets.begin(), a.padded_offsets.end(),
                                      [](int64_t o) { return o == 0; });
  const bool fits = comparable && ((mine.get_size() == twin.get_size() &&
                                    transposed_blocks(a, b, mine.get_size(), map.get())) ||
                                   element_map(a, b, mine.get_size(), twin.get_size(), map.get()));
  std::shared_ptr<const TwinMap> result = fits ? std::move(map) : nullptr;
  std::lock_guard<std::mutex> hold(lock);
  return made.emplace(key, result).first->second;
}

EnvSwitch& twin_switch() {
  static EnvSwitch on("PHALANX_TWIN_WEIGHTS");
  return on;
}

}  // namespace

bool twin_weights_enabled() {
  return twin_switch().get();
}

void set_twin_weights_enabled(bool on) {
  twin_switch().set(on);
}

struct WeightTwins::Twin {
  Source source;  // the cached copy's key; its version becomes the update's
  Tensor fresh;   // the copy the update writes
  float* out;
  std::shared_ptr<const TwinMap> map;
};

WeightTwins::WeightTwins(const Tensor& param) {
  if (!param.is_blocked() || param.dtype() != DType::Float32) return;
  Storage& storage = *param.storage();
  if (storage.has_external_writers()) return;
  epoch_ = storage.derived_epoch();
  auto have = std::static_pointer_cast<const BlockedWeights>(storage.derived());
  if (!have) return;
  const dnnl::memory::desc mine = desc_of(param);
  int64_t block = 0;
  for (const auto& [from, copy] : have->entries) {
    if (from.version != param.version() || from.offset != param.offset() ||
        from.sizes != param.sizes() || from.strides != param.strides() || !copy.is_blocked())
      continue;
    const dnnl::memory::desc& theirs = static_cast<const DnnlLayout&>(*copy.layout()).desc();
    if (from.layout != copy_key(param, theirs, nullptr)) continue;
    std::shared_ptr<const TwinMap> map = twin_map(mine, theirs);
    if (!map) continue;
    const int64_t unit = map->rows * map->cols;  // 0 for an element map: any chunk will do
    if (unit && block && block != unit) continue;
    if (unit) block = unit;
    Tensor fresh = empty_like_desc(copy.sizes(), theirs);
    auto* out = static_cast<float*>(fresh.raw_data());
    for (int64_t k : map->zeros) out[k] = 0.0f;
    twins_.push_back(std::make_shared<Twin>(Twin{from, std::move(fresh), out, std::move(map)}));
  }
  // about 16 KiB of the parameter per chunk: it is still in cache when the twins read it
  if (!twins_.empty()) chunk_ = block ? block * std::max<int64_t>(1, 4096 / block) : 4096;
}

namespace {

// One rows x cols block transposed (dst holds cols x rows). On x86-64 in 4x4 tiles of SSE
// registers (every x86-64 CPU has SSE), streamed: the copies add 0.5-0.6 ns an element to
// the SGD step at one thread, where a scalar loop with plain stores added 1 ns, more than
// the reorders they replace cost.
void transpose_block(const float* src, float* dst, int64_t rows, int64_t cols) {
#if defined(__SSE__)
  // 16-byte aligned stores: the copy's storage is 64-byte aligned and its blocks whole
  if (rows % 4 == 0 && cols % 4 == 0 && reinterpret_cast<uintptr_t>(dst) % 16 == 0) {
    // four rows of the copy at a time, each written whole before the next four (a
    // streamed line is written out once all of it is)
    for (int64_t c = 0; c < cols; c += 4)
      for (int64_t r = 0; r < rows; r += 4) {
        __m128 r0 = _mm_loadu_ps(src + (r + 0) * cols + c);
        __m128 r1 = _mm_loadu_ps(src + (r + 1) * cols + c);
        __m128 r2 = _mm_loadu_ps(src + (r + 2) * cols + c);
        __m128 r3 = _mm_loadu_ps(src + (r + 3) * cols + c);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        // streamed past the cache: the copy is read in the next backward, from memory
        // anyway, and a plain store would first read every line it writes
        _mm_stream_ps(dst + (c + 0) * rows + r, r0);
        _mm_stream_ps(dst + (c + 1) * rows + r, r1);
        _mm_stream_ps(dst + (c + 2) * rows + r, r2);
        _mm_stream_ps(dst + (c + 3) * rows + r, r3);
      }
    return;
  }
#endif
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) dst[c * rows + r] = src[r * cols + c];
}

}  // namespace

void WeightTwins::write(const float* param, int64_t begin, int64_t end) const {
  for (const auto& t : twins_) {
    const TwinMap& m = *t->map;
    const int64_t block = m.rows * m.cols;
    if (block == 0) {
      for (int64_t k = begin; k < end; ++k)
        if (m.to[static_cast<size_t>(k)] >= 0) t->out[m.to[static_cast<size_t>(k)]] = param[k];
      continue;
    }
    for (int64_t k = begin / block; k < end / block; ++k)
      transpose_block(param + k * block, t->out + m.to[static_cast<size_t>(k)] * block, m.rows,
                      m.cols);
  }
#if defined(__SSE__)
  _mm_sfence();  // the streamed stores are visible before the update's barrier
#endif
}

void WeightTwins::commit(const Tensor& param) const {
  if (twins_.empty()) return;
  auto next = std::make_shared<BlockedWeights>();
  for (const auto& t : twins_) {
    Source made = t->source;
    made.version = param.version();
    next->entries.emplace_back(std::move(made), t->fresh);
  }
  // Not stored if a numpy view of the parameter appeared during the update (the epoch moved).
  param.storage()->set_derived(std::move(next), epoch_);
}

}  // namespace phalanx::dnnl_util
