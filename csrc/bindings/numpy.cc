// Zero-copy numpy interop: a numpy array's memory becomes a Storage that keeps the array
// alive, and a tensor's storage becomes the base of a numpy array.
#include "bindings/convert.h"

namespace phalanx::bindings {

static DType dtype_from_numpy(const py::dtype& dt) {
  char kind = dt.kind();
  auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return DType::Float32;
  if (kind == 'f' && size == 8) return DType::Float64;
  if (kind == 'f' && size == 2) return DType::Float16;
  if (kind == 'i' && size == 8) return DType::Int64;
  if (kind == 'i' && size == 4) return DType::Int32;
  if (kind == 'u' && size == 1) return DType::UInt8;
  if (kind == 'b') return DType::Bool;
  throw TypeError(
      "from_numpy: numpy dtype " + std::string(py::str(dt)) +
      " is not supported (supported: float64, float32, float16, int64, int32, uint8, bool); "
      "convert with arr.astype(...) first");
}

static py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::Float32:
      return py::dtype("float32");
    case DType::Float16:
      return py::dtype("float16");
    case DType::Int64:
      return py::dtype("int64");
    case DType::Int32:
      return py::dtype("int32");
    case DType::UInt8:
      return py::dtype("uint8");
    case DType::Bool:
      return py::dtype("bool");
    case DType::Float64:
      return py::dtype("float64");
    case DType::BFloat16:
      break;
  }
  throw TypeError("numpy has no bfloat16: convert with .float() first");
}

void delete_python_object(py::object* p) {
  if (!PyGILState_Check()) {
#if PY_VERSION_HEX >= 0x030D0000
    const bool finalizing = Py_IsFinalizing();
#else
    const bool finalizing = _Py_IsFinalizing();
#endif
    if (finalizing) return;
    py::gil_scoped_acquire gil;
    delete p;
    return;
  }
  delete p;
}

// Memory numpy lends read-only (a `bytes` object, a read-only np.load mmap, an array whose
// writeable flag is off) is copied, never shared. Sharing it would make every write path (in-
// place ops, optimizer steps, copy_, fill_, setitem, layout conversion, .grad accumulation,
// collectives) responsible for refusing it, and one missed path writes into a caller's
// immutable bytes or faults on a read-only mapping. A copy closes all of them by construction,
// at a cost paid only for read-only arrays. (PyTorch shares and warns.)
Tensor from_numpy(const py::array& a) {
  // Bytes in the other order would be read as garbage; numpy converts them on request.
  PHX_CHECK(a.dtype().attr("isnative").cast<bool>(), TypeError, "from_numpy: numpy dtype ",
            std::string(py::str(a.dtype().attr("str"))),
            " is not in this machine's byte order; use phalanx.tensor(arr) (which converts) or "
            "arr.astype(arr.dtype.newbyteorder('='))");
  if (!a.writeable()) {
    py::array copy = py::module_::import("numpy").attr("array")(a, py::arg("copy") = true);
    return from_numpy(copy);
  }
  DType dt = dtype_from_numpy(a.dtype());
  const auto item = static_cast<int64_t>(a.itemsize());
  Shape sizes, strides;
  int64_t lo = 0, hi = 0;  // extent of the array in elements, relative to its data pointer
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    int64_t stride_bytes = a.strides(d);
    PHX_CHECK(stride_bytes >= 0, ValueError, "from_numpy: the array has a negative stride (",
              stride_bytes, " bytes in dim ", d,
              "); phalanx tensors need non-negative strides: use arr.copy()");
    PHX_CHECK(stride_bytes % item == 0, ValueError, "from_numpy: stride ", stride_bytes,
              " bytes in dim ", d, " is not a multiple of the element size ", item,
              "; use np.ascontiguousarray(arr)");
    sizes.push_back(a.shape(d));
    strides.push_back(stride_bytes / item);
    if (a.shape(d) > 0) hi += (a.shape(d) - 1) * (stride_bytes / item);
  }
  (void)lo;
  // Releasing the array needs the GIL; the last owner may be any thread.
  auto* keep = new py::object(py::reinterpret_borrow<py::object>(a));
  std::shared_ptr<void> owner(keep,
                              [](void* p) { delete_python_object(static_cast<py::object*>(p)); });
  void* data = const_cast<void*>(a.data());
  auto storage = Storage::wrap(data, static_cast<size_t>((hi + 1) * item), owner);
  return Tensor::from_blob(storage, sizes, strides, 0, dt);
}

py::array to_numpy(const Tensor& t_in) {
  Tensor t = t_in.is_blocked() ? t_in.contiguous() : t_in;
  py::dtype dt = numpy_dtype(t.dtype());
  const auto item = static_cast<py::ssize_t>(itemsize(t.dtype()));
  std::vector<py::ssize_t> shape(t.sizes().begin(), t.sizes().end()), strides;
  for (int64_t s : t.strides()) strides.push_back(s * item);
  // The array can write our bytes without bumping the version: while it lives, nothing
  // derived from them (a cached blocked weight) is kept.
  auto* holder = new std::shared_ptr<void>(Storage::external_writer(t.storage()));
  py::capsule base(holder, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  return py::array(dt, shape, strides, t.raw_data(), base);
}

}  // namespace phalanx::bindings
