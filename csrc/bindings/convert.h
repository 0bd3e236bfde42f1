// Conversions between Python values and phalanx C++ types, shared by the binding files.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/tensor.h"

namespace phalanx::bindings {

namespace py = pybind11;

// A Tensor, or a Python number turned into a 0-d tensor that mixes with `like` as PyTorch's
// scalars do (an int keeps an integer tensor's dtype, a float makes float32).
Tensor as_tensor_operand(py::handle v, const Tensor& like);
// Sizes given either as varargs (2, 3) or as one sequence ((2, 3) or [2, 3]).
Shape sizes_from_args(const py::args& args, const char* op);
// A Python int as int64; ValueError "<what> <value> does not fit in int64" when it does not.
int64_t int64_arg(py::handle v, const char* what);
Shape int_list(py::handle v, size_t n_expected, const char* what);  // int or sequence -> n values

py::array to_numpy(const Tensor& t);
// float64 tensors hold and compute data but never require grad: autograd is float32 only.
inline void check_differentiable_dtype(const Tensor& t, bool requires_grad) {
  PHX_CHECK(!requires_grad || t.dtype() != DType::Float64, TypeError,
            "requires_grad: phalanx differentiates in float32 only, got ", t.describe(),
            "; convert with .float() first");
}

// Deletes a Python object held from C++, on any thread (a tensor wrapping a numpy array may
// die on a communication thread). The GIL is taken, except while the interpreter shuts down:
// CPython then ends a thread that asks for the GIL with pthread_exit, whose unwinding through
// C++ destructors aborts the whole process ("terminate called without an active exception").
// The object is leaked instead; the process is exiting anyway.
void delete_python_object(py::object* p);
Tensor from_numpy(const py::array& a);

void init_tensor(py::module_& m);
void init_functions(py::module_& m);
void init_custom_function(py::module_& m);  // phalanx.autograd.Function's node
void init_nn(py::module_& m);
void init_optim(py::module_& m);  // fused optimizer updates (csrc/optim)
void init_io(py::module_& m);     // checkpoints (csrc/io)
void init_data(py::module_& m);   // dataset readers and batch transforms (csrc/io)
void init_dist(py::module_& m);   // rendezvous store and process groups (csrc/dist)

}  // namespace phalanx::bindings
