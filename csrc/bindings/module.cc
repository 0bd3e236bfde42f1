// The extension module phalanx._C: error mapping, dtypes, grad mode, threads, generators.
#include <dnnl.hpp>

#include "autograd/grad_mode.h"
#include "bindings/convert.h"
#include "core/allocator.h"
#include "core/fp32_peak.h"
#include "core/generator.h"
#include "dnnl/engine.h"
#include "dnnl/layout.h"
#include "dnnl/primitive_cache.h"
#include "dnnl/weight_cache.h"
#include "ops/softmax_portable.h"

namespace phalanx::bindings {

// PyTorch raises RuntimeError for most bad input (a shape mismatch, view of a non-contiguous
// tensor, .item() of many elements, mean of integers); phalanx's messages come as ValueError
// or TypeError. Each is raised as a class derived from both, so `except RuntimeError` in a
// PyTorch script and `except ValueError` in ours both catch it. Kept for the process's life.
static PyObject* value_error = nullptr;
static PyObject* type_error = nullptr;

static PyObject* runtime_error_too(py::module_& m, const char* name, PyObject* base) {
  py::dict ns;
  ns["__module__"] = "phalanx";
  ns["__doc__"] = std::string(name) + " that is also a RuntimeError, as PyTorch raises.";
  auto type = py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(&PyType_Type));
  py::object cls = type(name, py::make_tuple(py::handle(base), py::handle(PyExc_RuntimeError)), ns);
  m.attr(name) = cls;
  return cls.release().ptr();
}

static void register_errors(py::module_& m) {
  value_error = runtime_error_too(m, "ValueError", PyExc_ValueError);
  type_error = runtime_error_too(m, "TypeError", PyExc_TypeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ValueError& e) {
      PyErr_SetString(value_error, e.what());
    } catch (const TypeError& e) {
      PyErr_SetString(type_error, e.what());
    } catch (const IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const MemoryError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const TimeoutError& e) {
      PyErr_SetString(PyExc_TimeoutError, e.what());
    } catch (const IOError& e) {
      // OSError(errno, message) is a FileNotFoundError, PermissionError... as Python's own are.
      py::object err = py::reinterpret_borrow<py::object>(PyExc_OSError)(e.errno_value, e.what());
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())), err.ptr());
    } catch (const Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (const dnnl::error& e) {
      PyErr_SetString(PyExc_RuntimeError, (std::string("oneDNN: ") + e.what()).c_str());
    }
  });
}

}  // namespace phalanx::bindings

PYBIND11_MODULE(_C, m) {
  using namespace phalanx;
  using namespace phalanx::bindings;
  m.doc() = "phalanx C++ core";
  register_errors(m);

  py::enum_<DType>(m, "dtype")
      .value("float32", DType::Float32)
      .value("float16", DType::Float16)
      .value("bfloat16", DType::BFloat16)
      .value("int64", DType::Int64)
      .value("int32", DType::Int32)
      .value("uint8", DType::UInt8)
      .value("bool", DType::Bool)
      .value("float64", DType::Float64)
      .def("__repr__", [](DType t) { return std::string("phalanx.") + dtype_name(t); })
      .def("__str__", [](DType t) { return std::string("phalanx.") + dtype_name(t); })
      .def_property_readonly("is_floating_point", [](DType t) { return is_floating(t); })
      .def_property_readonly("itemsize", [](DType t) { return itemsize(t); });

  m.def("is_grad_enabled", &autograd::grad_enabled);
  m.def("_set_grad_enabled", &autograd::set_grad_enabled);
  m.def("set_num_threads", &dnnl_util::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &dnnl_util::get_num_threads);
  m.def("_primitive_cache_stats", [] {
    auto& c = dnnl_util::PrimitiveCache::global();
    return py::dict(py::arg("hits") = c.hits(), py::arg("created") = c.misses(),
                    py::arg("size") = c.size());
  });
  m.def("_reorder_counts", [] {
    auto c = dnnl_util::reorder_counts();
    return py::dict(py::arg("data") = c.data, py::arg("weights") = c.weights,
                    py::arg("to_plain") = c.to_plain, py::arg("to_blocked") = c.to_blocked);
  });
  m.def(
      "memory_stats",
      [] {
        MemoryStats s = memory_stats();
        return py::dict(
            py::arg("allocated_bytes") = s.allocated_bytes,
            py::arg("peak_allocated_bytes") = s.peak_allocated_bytes,
            py::arg("allocations") = s.allocations, py::arg("cached_bytes") = s.cached_bytes,
            py::arg("cache_hits") = s.cache_hits, py::arg("cache_misses") = s.cache_misses,
            py::arg("caching_allocator") = caching_allocator_enabled());
      },
      "Tensor memory: bytes live now and at the peak (since reset_peak_memory_stats), "
      "allocations made, and the caching allocator's cached bytes, hits and misses (and whether "
      "it is on: not with PHALANX_CACHING_ALLOCATOR=0 or in sanitizer builds).");
  m.def("reset_peak_memory_stats", &reset_peak_memory_stats,
        "Restarts the peak of memory_stats() from what is allocated now.");
  m.def("empty_cache", &empty_cache,
        "Returns the memory of freed large tensors, kept by the caching allocator for reuse, "
        "to the operating system.");
  m.def(
      "_measure_fp32_peak",
      [](int threads, double seconds) {
        Fp32Peak p;
        {
          py::gil_scoped_release nogil;
          p = measure_fp32_peak(threads, seconds);
        }
        return py::dict(py::arg("gflops") = p.gflops, py::arg("isa") = p.isa);
      },
      py::arg("threads"), py::arg("seconds") = 0.5,
      "fp32 GFLOP/s of a register-resident FMA loop on `threads` threads (best of 10 repeats).");
  m.def("_force_portable_softmax", &ops::set_force_portable_softmax, py::arg("force"),
        "Tests: run softmax and log_softmax on the portable kernels even where oneDNN has a "
        "fast one.");
  m.def("_winograd_allowed", &dnnl_util::winograd_allowed);
  m.def("_set_winograd_allowed", &dnnl_util::set_winograd_allowed, py::arg("on"));
  m.def("_twin_weights_enabled", &dnnl_util::twin_weights_enabled);
  m.def("_set_twin_weights_enabled", &dnnl_util::set_twin_weights_enabled, py::arg("on"));
  m.def("_onednn_version", [] {
    auto v = dnnl::version();
    return py::make_tuple(v->major, v->minor, v->patch);
  });

  py::class_<Generator, std::shared_ptr<Generator>>(m, "Generator")
      .def(py::init([](uint64_t seed) { return std::make_shared<Generator>(seed); }),
           py::arg("seed") = 67280421310721ULL)
      .def("manual_seed",
           [](const std::shared_ptr<Generator>& g, int64_t seed) {
             g->manual_seed(static_cast<uint64_t>(seed));
             return g;
           })
      .def("initial_seed", &Generator::initial_seed)
      .def("get_state", [](const Generator& g) { return py::bytes(g.get_state()); })
      .def("set_state", [](Generator& g, const py::bytes& s) { g.set_state(std::string(s)); });
  m.def("default_generator", [] { return Generator::default_generator(); });
  m.def(
      "manual_seed",
      [](int64_t seed) {
        Generator::default_generator()->manual_seed(static_cast<uint64_t>(seed));
        return Generator::default_generator();
      },
      py::arg("seed"));

  init_tensor(m);
  init_functions(m);
  init_custom_function(m);
  init_nn(m);
  init_optim(m);
  init_io(m);
  init_data(m);
  init_dist(m);
}
