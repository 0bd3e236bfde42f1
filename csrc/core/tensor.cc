#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <sstream>

#include "core/checked_math.h"
#include "core/strided_loop.h"

namespace phalanx {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  // A zero anywhere makes the count 0, however large the other dimensions are.
  if (std::find(s.begin(), s.end(), 0) != s.end()) return 0;
  int64_t n = 1;
  for (int64_t v : s)
    PHX_CHECK(mul_fits(n, v, n), ValueError, "shape ", shape_str(s),
              " has more elements than fit in int64");
  return n;
}

Shape contiguous_strides(const Shape& sizes) {
  Shape st(sizes.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(sizes.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    PHX_CHECK(mul_fits(acc, std::max<int64_t>(sizes[i], 1), acc), ValueError, "shape ",
              shape_str(sizes), " has strides that do not fit in int64");
  }
  return st;
}

size_t storage_nbytes(const Shape& sizes, DType dtype) {
  for (int64_t s : sizes)
    PHX_CHECK(s >= 0, ValueError, "negative dimension ", s, " in size ", shape_str(sizes));
  if (std::find(sizes.begin(), sizes.end(), 0) != sizes.end()) {
    contiguous_strides(sizes);  // an empty tensor needs no bytes, but its strides must fit
    return 0;
  }
  size_t bytes = itemsize(dtype);
  bool fits = true;
  for (int64_t s : sizes) fits = fits && mul_fits(bytes, static_cast<size_t>(s), bytes);
  PHX_CHECK(fits && bytes <= kMaxStorageBytes, MemoryError, "cannot allocate a ", dtype_name(dtype),
            " tensor of size ", shape_str(sizes), ": it needs ",
            fits ? std::to_string(bytes) : std::string("more than 2**64"),
            " bytes, more than the maximum of ", kMaxStorageBytes, " bytes for one tensor");
  return bytes;
}

// A view must address only bytes of its storage: its lowest and highest elements lie inside.
static void check_view_fits(const Storage& storage, const Shape& sizes, const Shape& strides,
                            int64_t offset, DType dtype) {
  PHX_CHECK(sizes.size() == strides.size(), ValueError, "as_strided: size ", shape_str(sizes),
            " and stride ", shape_str(strides), " differ in length");
  for (int64_t s : sizes)
    PHX_CHECK(s >= 0, ValueError, "as_strided: negative dimension ", s, " in size ",
              shape_str(sizes));
  if (shape_numel(sizes) == 0) return;  // addresses nothing
  int64_t lo = offset, hi = offset;
  bool fits = true;
  for (size_t i = 0; i < sizes.size(); ++i) {
    int64_t reach = 0;
    fits = fits && mul_fits(sizes[i] - 1, strides[i], reach);
    fits = fits && add_fits(reach < 0 ? lo : hi, reach, reach < 0 ? lo : hi);
  }
  const auto capacity = static_cast<int64_t>(storage.nbytes / itemsize(dtype));
  PHX_CHECK(fits && lo >= 0 && hi < capacity, ValueError, "a view of size ", shape_str(sizes),
            ", stride ", shape_str(strides), " and offset ", offset,
            " does not fit in its storage of ", capacity, " elements");
}

int64_t wrap_dim(int64_t dim, int64_t ndim) {
  int64_t n = std::max<int64_t>(ndim, 1);  // a 0-d tensor accepts dim 0 and -1, as in PyTorch
  PHX_CHECK(dim >= -n && dim < n, IndexError,
            "dimension out of range (expected to be in range of [", -n, ", ", n - 1, "], but got ",
            dim, ")");
  return dim < 0 ? dim + n : dim;
}

Tensor Tensor::empty(const Shape& sizes, DType dtype) {
  const size_t nbytes = storage_nbytes(sizes, dtype);  // checks the shape before allocating
  auto impl = std::make_shared<TensorImpl>();
  impl->strides = contiguous_strides(sizes);
  impl->storage = Storage::allocate(nbytes);
  impl->sizes = sizes;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::from_blob(std::shared_ptr<Storage> storage, const Shape& sizes, const Shape& strides,
                         int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->sizes = sizes;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

bool Tensor::is_contiguous() const {
  if (is_blocked()) return false;
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (impl_->sizes[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->sizes[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl_->storage->data) + impl_->offset * itemsize(dtype());
}

AutogradMeta& Tensor::autograd_meta() const {
  if (!impl_->autograd) impl_->autograd = std::make_unique<AutogradMeta>();
  return *impl_->autograd;
}

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<autograd::Node> none;
  return impl_->autograd ? impl_->autograd->grad_fn : none;
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype())) + shape_str(sizes());
}

// ---- views -------------------------------------------------------------------------------

namespace {
// Held while a blocked tensor is converted in place and while a handle to its blocked bytes
// is taken (Tensor::alias): the two never interleave. Conversions happen at boundaries (numpy,
// ops oneDNN lacks), so one lock for all tensors costs little.
std::mutex& conversion_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

void Tensor::materialize_plain() const {
  if (!is_blocked()) return;
  std::lock_guard<std::mutex> lock(conversion_mutex());
  const auto layout = impl_->layout;  // writers hold the lock
  if (!layout) return;                // another thread converted it meanwhile
  auto plain = Storage::allocate(static_cast<size_t>(numel()) * itemsize(dtype()));
  layout->to_plain(raw_data(), plain->data);
  plain->version = impl_->storage->version.load();  // same values: saved tensors stay valid
  impl_->storage = std::move(plain);
  impl_->offset = 0;
  impl_->strides = contiguous_strides(impl_->sizes);
  // Last, and atomically: a thread that sees the tensor plain then sees the plain storage.
  std::atomic_store(&impl_->layout, std::shared_ptr<const OpaqueLayout>());
}

bool Tensor::adopt_layout(std::shared_ptr<const OpaqueLayout> layout) const {
  std::lock_guard<std::mutex> lock(conversion_mutex());
  if (const auto have = impl_->layout) return have->same_as(*layout);
  const auto& st = impl_->storage;
  // Any other holder of the storage (a view, a detached alias, a saved tensor, numpy) would
  // go on reading the plain bytes while the updates land in the blocked ones.
  if (impl_->view_base || impl_->offset != 0 || !is_contiguous() || st.use_count() != 1 ||
      st->owner || st->has_external_writers() ||
      st->nbytes != storage_nbytes(impl_->sizes, impl_->dtype))
    return false;
  auto blocked = Storage::allocate(layout->nbytes());
  layout->from_plain(st->data, blocked->data);
  blocked->version = st->version.load();  // same values: saved tensors stay valid
  impl_->storage = std::move(blocked);
  std::atomic_store(&impl_->layout, std::move(layout));
  return true;
}

int64_t Tensor::stored_numel() const {
  const auto l = layout();
  return l ? static_cast<int64_t>(l->nbytes() / itemsize(dtype())) : numel();
}

bool Tensor::same_layout(const Tensor& other) const {
  const auto a = layout(), b = other.layout();
  if (!a || !b) return !a && !b;
  return a == b || a->same_as(*b);
}

Tensor Tensor::empty_like_stored() const {
  const auto l = layout();
  if (!l) return Tensor::empty(sizes(), dtype());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(l->nbytes());
  impl->sizes = sizes();
  impl->strides = contiguous_strides(sizes());
  impl->dtype = dtype();
  impl->layout = l;
  return Tensor(std::move(impl));
}

Tensor Tensor::as_strided(const Shape& sizes, const Shape& strides, int64_t offset) const {
  materialize_plain();  // views address plain memory
  check_view_fits(*impl_->storage, sizes, strides, offset, dtype());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->sizes = sizes;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = impl_->dtype;
  impl->view_base = impl_->view_base ? impl_->view_base : impl_;
  return Tensor(std::move(impl));
}

// Computes strides for viewing `t` as `sizes` without copying, or returns false. The rule is
// PyTorch's: each group of old dimensions that merges into new ones must be contiguous.
static bool view_strides(const Shape& old_sizes, const Shape& old_strides, const Shape& sizes,
                         Shape& out) {
  out.assign(sizes.size(), 0);
  if (shape_numel(old_sizes) == 0 || old_sizes.empty()) {
    out = contiguous_strides(sizes);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(sizes.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_sizes[d];
    if (d == 0 ||
        (old_sizes[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || sizes[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

static Shape infer_size(const Shape& sizes, int64_t numel) {
  Shape out = sizes;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      PHX_CHECK(infer < 0, ValueError, "only one dimension can be inferred in shape ",
                shape_str(sizes));
      infer = static_cast<int64_t>(i);
    } else {
      PHX_CHECK(out[i] >= 0, ValueError, "invalid shape dimension ", out[i], " in ",
                shape_str(sizes));
      PHX_CHECK(mul_fits(known, out[i], known), ValueError, "shape ", shape_str(sizes),
                " is invalid for input of size ", numel);
    }
  }
  if (infer >= 0) {
    PHX_CHECK(known != 0 && numel % known == 0, ValueError, "shape ", shape_str(sizes),
              " is invalid for input of size ", numel);
    out[infer] = numel / known;
  }
  PHX_CHECK(shape_numel(out) == numel, ValueError, "shape ", shape_str(sizes),
            " is invalid for input of size ", numel);
  return out;
}

Tensor Tensor::view(const Shape& sizes) const {
  materialize_plain();
  Shape target = infer_size(sizes, numel());
  Shape st;
  PHX_CHECK(view_strides(this->sizes(), strides(), target, st), ValueError, "view size ",
            shape_str(target), " is not compatible with input size ", shape_str(this->sizes()),
            " and strides ", shape_str(strides()), "; use .reshape(...) instead");
  return as_strided(target, st, offset());
}

Tensor Tensor::reshape(const Shape& sizes) const {
  Shape target = infer_size(sizes, numel());
  Shape st;
  materialize_plain();
  if (view_strides(this->sizes(), strides(), target, st)) return as_strided(target, st, offset());
  return contiguous().view(target);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  Shape perm(dim());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[wrap_dim(d0, dim())], perm[wrap_dim(d1, dim())]);
  return dim() == 0 ? *this : permute(perm);
}

Tensor Tensor::permute(const Shape& dims) const {
  PHX_CHECK(static_cast<int64_t>(dims.size()) == dim(), ValueError, "permute: number of dims ",
            dims.size(), " does not match tensor dims ", dim());
  Shape sz(dims.size()), st(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim());
    PHX_CHECK(!seen[d], ValueError, "permute: repeated dim ", dims[i], " in ", shape_str(dims));
    seen[d] = true;
    sz[i] = sizes()[d];
    st[i] = strides()[d];
  }
  return as_strided(sz, st, offset());
}

Tensor Tensor::expand(const Shape& target) const {
  PHX_CHECK(target.size() >= sizes().size(), ValueError, "expand: the number of sizes provided (",
            target.size(), ") must be greater or equal to the number of dimensions in the tensor (",
            dim(), ")");
  size_t lead = target.size() - sizes().size();
  Shape sz(target.size()), st(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) {
      PHX_CHECK(target[i] >= 0, ValueError, "expand: -1 not allowed in leading dim of ",
                shape_str(target));
      sz[i] = target[i];
      st[i] = 0;
      continue;
    }
    int64_t have = sizes()[i - lead];
    int64_t want = target[i] == -1 ? have : target[i];
    PHX_CHECK(have == want || have == 1, ValueError, "expand: size ", shape_str(sizes()),
              " cannot be expanded to ", shape_str(target), " (dim ", i, ")");
    sz[i] = want;
    st[i] = (have == want) ? strides()[i - lead] : 0;
  }
  return as_strided(sz, st, offset());
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length, int64_t step) const {
  d = wrap_dim(d, dim());
  PHX_CHECK(step > 0, ValueError, "slice step must be positive, got ", step);
  int64_t last = 0;  // index of the last element taken; checked, a huge step must not wrap
  bool in_range = start >= 0 && length >= 0 &&
                  (length == 0 || (mul_fits(length - 1, step, last) &&
                                   add_fits(start, last, last) && last < sizes()[d]));
  PHX_CHECK(in_range, IndexError, "slice [", start, ", +", length, ", step ", step,
            "] out of range for dim ", d, " of size ", sizes()[d]);
  Shape sz = sizes(), st = strides();
  sz[d] = length;
  if (length > 1) st[d] *= step;  // fits: the last element is inside the tensor
  return as_strided(sz, st, offset() + start * strides()[d]);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  PHX_CHECK(dim() > 0, IndexError, "invalid index of a 0-dim tensor");
  d = wrap_dim(d, dim());
  int64_t n = sizes()[d];
  PHX_CHECK(index >= -n && index < n, IndexError, "index ", index,
            " is out of bounds for dimension ", d, " with size ", n);
  if (index < 0) index += n;
  Shape sz = sizes(), st = strides();
  sz.erase(sz.begin() + d);
  st.erase(st.begin() + d);
  return as_strided(sz, st, offset() + index * strides()[d]);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1);
  Shape sz = sizes(), st = strides();
  int64_t s = d < dim() ? sizes()[d] * strides()[d] : 1;
  sz.insert(sz.begin() + d, 1);
  st.insert(st.begin() + d, s);
  return as_strided(sz, st, offset());
}

Tensor Tensor::squeeze(int64_t d) const {
  if (dim() == 0) return as_strided(sizes(), strides(), offset());
  d = wrap_dim(d, dim());
  if (sizes()[d] != 1) return as_strided(sizes(), strides(), offset());
  Shape sz = sizes(), st = strides();
  sz.erase(sz.begin() + d);
  st.erase(st.begin() + d);
  return as_strided(sz, st, offset());
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim());
  end = wrap_dim(end, dim());
  PHX_CHECK(start <= end, ValueError, "flatten: start_dim ", start, " cannot come after end_dim ",
            end);
  Shape sz(sizes().begin(), sizes().begin() + start);
  int64_t m = 1;
  for (int64_t i = start; i <= end; ++i) m *= sizes()[i];
  sz.push_back(m);
  sz.insert(sz.end(), sizes().begin() + end + 1, sizes().end());
  return reshape(sz);
}

// ---- copies ------------------------------------------------------------------------------

double load_as_double(const void* p, DType t) {
  switch (t) {
    case DType::Float32:
      return *static_cast<const float*>(p);
    case DType::Float16:
      return half_to_float(*static_cast<const uint16_t*>(p));
    case DType::BFloat16:
      return bfloat16_to_float(*static_cast<const uint16_t*>(p));
    case DType::Int64:
      return static_cast<double>(*static_cast<const int64_t*>(p));
    case DType::Int32:
      return *static_cast<const int32_t*>(p);
    case DType::UInt8:
      return *static_cast<const uint8_t*>(p);
    case DType::Bool:
      return *static_cast<const bool*>(p) ? 1.0 : 0.0;
    case DType::Float64:
      return *static_cast<const double*>(p);
  }
  return 0;
}

void store_from_double(void* p, DType t, double v) {
  switch (t) {
    case DType::Float32:
      *static_cast<float*>(p) = static_cast<float>(v);
      break;
    case DType::Float16:
      *static_cast<uint16_t*>(p) = float_to_half(static_cast<float>(v));
      break;
    case DType::BFloat16:
      *static_cast<uint16_t*>(p) = float_to_bfloat16(static_cast<float>(v));
      break;
    case DType::Int64:
      *static_cast<int64_t*>(p) = static_cast<int64_t>(v);
      break;
    case DType::Int32:
      *static_cast<int32_t*>(p) = static_cast<int32_t>(v);
      break;
    case DType::UInt8:
      *static_cast<uint8_t*>(p) = static_cast<uint8_t>(static_cast<int64_t>(v));
      break;
    case DType::Bool:
      *static_cast<bool*>(p) = v != 0.0;
      break;
    case DType::Float64:
      *static_cast<double*>(p) = v;
      break;
  }
}

// A source whose last two dimensions run the other way round from the destination's (x.t(),
// a permute ending in (..., j, i)): copying it row by row reads down a column, a cache line
// (and, for wide rows, a page) per element, 10x slower than a copy. Copied in square tiles
// instead, so each tile's source and destination lines stay in cache. False: not that case.
template <typename D, typename S>
static bool copy_transposed_tiles(const Tensor& dst, const Tensor& src) {
  constexpr int64_t kTile = 32;
  const size_t nd = dst.sizes().size();
  if (nd < 2) return false;
  const auto& ds = dst.strides();
  const auto& ss = src.strides();
  const int64_t R = dst.sizes()[nd - 2], C = dst.sizes()[nd - 1];
  if (ds[nd - 1] != 1 || ss[nd - 2] != 1 || ss[nd - 1] == 1 || R < kTile || C < kTile) return false;
  D* d0 = static_cast<D*>(dst.storage()->data) + dst.offset();
  const S* s0 = static_cast<const S*>(src.storage()->data) + src.offset();
  const int64_t drow = ds[nd - 2], scol = ss[nd - 1];
  // the leading dimensions, each (i, j) plane one call
  std::vector<int64_t> outer(dst.sizes().begin(), dst.sizes().end() - 2);
  std::vector<int64_t> dso(ds.begin(), ds.end() - 2), sso(ss.begin(), ss.end() - 2);
  outer.push_back(1);
  dso.push_back(0);
  sso.push_back(0);
  strided_loop<2>(outer, {&dso, &sso},
                  [&](const std::array<int64_t, 2>& off, int64_t, const std::array<int64_t, 2>&) {
                    D* d = d0 + off[0];
                    const S* s = s0 + off[1];
                    for (int64_t i0 = 0; i0 < R; i0 += kTile)
                      for (int64_t j0 = 0; j0 < C; j0 += kTile) {
                        const int64_t i1 = std::min(R, i0 + kTile), j1 = std::min(C, j0 + kTile);
                        for (int64_t i = i0; i < i1; ++i)
                          for (int64_t j = j0; j < j1; ++j)
                            d[i * drow + j] = static_cast<D>(s[i + j * scol]);
                      }
                  });
  return true;
}

// Element converters between any two dtypes; same-type copies are a plain assignment.
template <typename D, typename S>
static void copy_rows(const Tensor& dst, const Tensor& src_expanded) {
  if (copy_transposed_tiles<D, S>(dst, src_expanded)) return;
  char* db = static_cast<char*>(dst.storage()->data);
  const char* sb = static_cast<const char*>(src_expanded.storage()->data);
  D* d0 = reinterpret_cast<D*>(db) + dst.offset();
  const S* s0 = reinterpret_cast<const S*>(sb) + src_expanded.offset();
  strided_loop<2>(
      dst.sizes(), {&dst.strides(), &src_expanded.strides()},
      [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& in) {
        D* d = d0 + off[0];
        const S* s = s0 + off[1];
        for (int64_t i = 0; i < n; ++i) d[i * in[0]] = static_cast<D>(s[i * in[1]]);
      });
}

void Tensor::copy_from(const Tensor& src_in) const {
  materialize_plain();
  src_in.materialize_plain();  // strided sources are fine; blocked ones become plain first
  Tensor src = src_in;
  src = src.dim() > dim() ? src.reshape(Shape(sizes())) : src.expand(sizes());
  DType dt = dtype(), st = src.dtype();
  if (dt == st && (dt == DType::Float16 || dt == DType::BFloat16)) {
    copy_rows<uint16_t, uint16_t>(*this, src);
  } else if (is_reduced_float(dt) || is_reduced_float(st)) {
    // conversions through float, element by element
    char* db = static_cast<char*>(storage()->data);
    const char* sb = static_cast<const char*>(src.storage()->data);
    size_t di = itemsize(dt), si = itemsize(st);
    strided_loop<2>(
        sizes(), {&strides(), &src.strides()},
        [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& in) {
          for (int64_t i = 0; i < n; ++i)
            store_from_double(db + (offset() + off[0] + i * in[0]) * di, dt,
                              load_as_double(sb + (src.offset() + off[1] + i * in[1]) * si, st));
        });
  } else {
    dispatch_compute(dt, "copy", [&](auto d) {
      using D = decltype(d);
      dispatch_compute(st, "copy", [&](auto s) {
        using S = decltype(s);
        copy_rows<D, S>(*this, src);
      });
    });
  }
  bump_version();
}

Tensor Tensor::contiguous() const {
  materialize_plain();
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  materialize_plain();
  Tensor out = Tensor::empty(sizes(), dtype());
  out.copy_from(*this);
  out.storage()->version = 0;  // a new tensor: filling it is not a modification
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = Tensor::empty(sizes(), t);
  out.copy_from(*this);
  out.storage()->version = 0;
  return out;
}

Tensor Tensor::alias() const {
  auto impl = std::make_shared<TensorImpl>();
  // A blocked tensor's fields may be replaced by a conversion on another thread: copied
  // under its lock, they are consistent (and the copy keeps the blocked storage alive).
  std::unique_lock<std::mutex> lock(conversion_mutex(), std::defer_lock);
  if (is_blocked()) lock.lock();
  impl->storage = impl_->storage;
  impl->sizes = impl_->sizes;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  impl->layout = impl_->layout;
  impl->view_base = impl_->view_base;
  return Tensor(std::move(impl));
}

void Tensor::fill(double value) const {
  materialize_plain();
  char* base = static_cast<char*>(storage()->data);
  size_t is = itemsize(dtype());
  // write one element, then replicate its bytes
  alignas(8) char pattern[8];
  store_from_double(pattern, dtype(), value);
  strided_loop<1>(
      sizes(), {&strides()},
      [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& in) {
        for (int64_t i = 0; i < n; ++i)
          std::memcpy(base + (offset() + off[0] + i * in[0]) * is, pattern, is);
      });
  bump_version();
}

double Tensor::item() const {
  PHX_CHECK(numel() == 1, ValueError, "a Tensor with ", numel(),
            " elements cannot be converted to Scalar");
  Tensor c = contiguous();
  return load_as_double(c.raw_data(), dtype());
}

}  // namespace phalanx
