// The Tensor class: properties, views, indexing, operators and autograd entry points.
#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/hooks.h"
#include "autograd/indexing.h"
#include "bindings/convert.h"
#include "ops/reduce.h"

namespace phalanx::bindings {

namespace ag = phalanx::autograd;
using ops::BinaryOp;
using ops::UnaryOp;

Tensor as_tensor_operand(py::handle v, const Tensor& like) {
  if (py::isinstance<Tensor>(v)) return v.cast<Tensor>();
  if (py::isinstance<py::bool_>(v)) return ops::scalar_tensor(v.cast<bool>(), DType::Bool);
  // Python numbers take the tensor's type where it can hold them (as PyTorch's scalars do)
  if (py::isinstance<py::int_>(v)) {
    DType dt = like.dtype() == DType::Bool ? DType::Int64 : like.dtype();
    return ops::scalar_tensor(static_cast<double>(v.cast<int64_t>()), dt);
  }
  if (py::isinstance<py::float_>(v))
    return ops::scalar_tensor(v.cast<double>(),
                              is_floating(like.dtype()) ? like.dtype() : DType::Float32);
  if (py::isinstance<py::array>(v)) return from_numpy(v.cast<py::array>());
  throw TypeError("expected a Tensor or a number, got " + std::string(py::str(py::type::of(v))));
}

int64_t int64_arg(py::handle v, const char* what) {
  PHX_CHECK(py::isinstance<py::int_>(v) || PyIndex_Check(v.ptr()), TypeError, what,
            " must be an int, got ", std::string(py::str(py::type::of(v))));
  py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  int overflow = 0;
  long long r = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  PHX_CHECK(overflow == 0, ValueError, what, " ", std::string(py::str(i)),
            " does not fit in int64");
  if (r == -1 && PyErr_Occurred()) throw py::error_already_set();
  return static_cast<int64_t>(r);
}

// A sequence of ints, each converted by int64_arg (so an overflow names its value).
static Shape int64_sequence(py::handle v, const char* what) {
  Shape s;
  for (auto item : py::reinterpret_borrow<py::sequence>(v)) s.push_back(int64_arg(item, what));
  return s;
}

Shape int_list(py::handle v, size_t n, const char* what) {
  if (py::isinstance<py::int_>(v)) return Shape(n, int64_arg(v, what));
  PHX_CHECK(py::isinstance<py::sequence>(v), TypeError, what,
            " must be an int or a sequence of ints");
  Shape s = int64_sequence(v, what);
  PHX_CHECK(s.size() == n, ValueError, what, " must have ", n, " values, got ", shape_str(s));
  return s;
}

Shape sizes_from_args(const py::args& args, const char* op) {
  if (args.size() == 1 && !py::isinstance<py::int_>(args[0])) {
    PHX_CHECK(py::isinstance<py::sequence>(args[0]), TypeError, op,
              "(): size must be ints or a sequence of ints");
    return int64_sequence(args[0], "size");
  }
  Shape s;
  for (auto a : args) {
    PHX_CHECK(py::isinstance<py::int_>(a), TypeError, op, "(): size must be ints, got ",
              std::string(py::str(py::type::of(a))));
    s.push_back(int64_arg(a, "size"));
  }
  return s;
}

// ---- indexing: Python index objects to autograd::TensorIndex --------------------------------

// A slice bound as Python reads it (__index__), clamped to int64 as slice.indices() clamps.
static std::optional<int64_t> slice_bound(py::handle v) {
  if (v.is_none()) return std::nullopt;
  Py_ssize_t b = PyNumber_AsSsize_t(v.ptr(), nullptr);
  if (b == -1 && PyErr_Occurred()) throw py::error_already_set();
  return static_cast<int64_t>(b);
}

static std::vector<ag::TensorIndex> index_items(py::handle index) {
  py::tuple items = py::isinstance<py::tuple>(index) ? py::reinterpret_borrow<py::tuple>(index)
                                                     : py::make_tuple(index);
  std::vector<ag::TensorIndex> out;
  for (auto it : items) {
    if (it.is_none()) {
      out.push_back(ag::TensorIndex::new_axis());
    } else if (py::isinstance<py::ellipsis>(it)) {
      out.push_back(ag::TensorIndex::ellipsis());
    } else if (py::isinstance<py::bool_>(it)) {
      throw TypeError("indexing with a Python bool is not supported");
    } else if (py::isinstance<py::int_>(it)) {
      out.push_back(ag::TensorIndex::integer_at(int64_arg(it, "index")));
    } else if (py::isinstance<py::slice>(it)) {
      auto step = slice_bound(it.attr("step"));
      out.push_back(ag::TensorIndex::slice(slice_bound(it.attr("start")),
                                           slice_bound(it.attr("stop")), step.value_or(1)));
    } else if (py::isinstance<Tensor>(it)) {
      out.push_back(ag::TensorIndex::index_tensor(it.cast<Tensor>()));
    } else if (py::isinstance<py::list>(it)) {
      out.push_back(ag::TensorIndex::index_tensor(
          from_numpy(py::module_::import("numpy").attr("asarray")(it))));
    } else {
      throw TypeError("invalid index of type " + std::string(py::str(py::type::of(it))) +
                      ": use ints, slices, None, Ellipsis or an integer tensor");
    }
  }
  return out;
}

static Tensor getitem(const Tensor& self, py::handle index) {
  return ag::index(self, index_items(index));
}

static void setitem(const Tensor& self, py::handle index, py::handle value) {
  auto items = index_items(index);
  if (py::isinstance<Tensor>(value))
    ag::index_put_(self, items, value.cast<Tensor>());
  else
    ag::index_fill_(self, items, value.cast<double>());
}

// ---- hooks: Python callables as autograd hooks ------------------------------------------------

// Hooks run on the backward's thread, which released the GIL.
static TensorHook python_hook(py::function fn) {
  return [fn](const Tensor& g) -> Tensor {
    py::gil_scoped_acquire gil;
    py::object r = fn(g);
    return r.is_none() ? Tensor() : r.cast<Tensor>();
  };
}

static ag::HookHandle register_hook(const Tensor& t, py::function fn) {
  return ag::register_hook(t, python_hook(std::move(fn)));
}

static ag::HookHandle register_post_accumulate_grad_hook(const Tensor& t, py::function fn) {
  return ag::register_post_accumulate_grad_hook(t, [fn](const Tensor& var) {
    py::gil_scoped_acquire gil;
    fn(var);
  });
}

// ---- reductions with PyTorch's optional-dim signatures -----------------------------------------

static std::vector<int64_t> dims_arg(py::handle dim) {
  if (dim.is_none()) return {};
  if (py::isinstance<py::int_>(dim)) return {dim.cast<int64_t>()};
  return dim.cast<std::vector<int64_t>>();
}

py::object max_or_min(const Tensor& t, py::handle dim, bool keepdim, bool is_max) {
  if (dim.is_none()) return py::cast(ag::amax_all(t, is_max));
  if (py::isinstance<Tensor>(dim))  // torch.max(a, b) is maximum
    return py::cast(
        ag::binary(is_max ? BinaryOp::Maximum : BinaryOp::Minimum, t, dim.cast<Tensor>()));
  auto [values, indices] = ag::max_dim(t, dim.cast<int64_t>(), keepdim, is_max);
  py::object result_type =
      py::module_::import("phalanx._tensor").attr(is_max ? "_max_result" : "_min_result");
  return result_type(values, indices);
}

static Tensor backward_gradient(py::handle g) {
  return g.is_none() ? Tensor() : g.cast<Tensor>();
}

void init_tensor(py::module_& m) {
  py::class_<ag::HookHandle>(m, "RemovableHandle").def("remove", &ag::HookHandle::remove);
  py::class_<autograd::Node, std::shared_ptr<autograd::Node>>(m, "Node")
      .def("name", &autograd::Node::name)
      .def("__repr__", [](const autograd::Node& n) { return "<" + n.name() + " object>"; })
      .def_property_readonly("next_functions", [](const autograd::Node& n) {
        py::list out;
        for (const auto& e : n.next_edges)
          out.append(py::make_tuple(e.fn ? py::cast(e.fn) : py::none(), e.input_nr));
        return py::tuple(out);
      });

  py::class_<Tensor> cls(m, "Tensor", py::dynamic_attr());
  // Tensor(t) shares t's TensorImpl: how Python subclasses (nn.Parameter) wrap a tensor.
  cls.def(py::init([] { return Tensor::empty({0}); }))  // as torch.Tensor(): empty, never undefined
      .def(py::init([](const Tensor& t) { return t; }), py::arg("data"))
      .def_property_readonly(
          "shape",
          [](const Tensor& t) {
            return py::module_::import("phalanx._tensor").attr("Size")(py::cast(t.sizes()));
          })
      .def(
          "size",
          [](const Tensor& t, py::object dim) -> py::object {
            if (dim.is_none())
              return py::module_::import("phalanx._tensor").attr("Size")(py::cast(t.sizes()));
            return py::cast(t.size(dim.cast<int64_t>()));
          },
          py::arg("dim") = py::none())
      .def(
          "stride",
          [](const Tensor& t, py::object dim) -> py::object {
            if (dim.is_none()) return py::tuple(py::cast(t.strides()));
            return py::cast(t.stride(dim.cast<int64_t>()));
          },
          py::arg("dim") = py::none())
      .def("dim", &Tensor::dim)
      .def_property_readonly("ndim", &Tensor::dim)
      .def("numel", &Tensor::numel)
      .def("element_size", [](const Tensor& t) { return itemsize(t.dtype()); })
      .def("storage_offset", &Tensor::offset)
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw_data()); })
      .def_property_readonly("dtype", &Tensor::dtype)
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("is_floating_point", [](const Tensor& t) { return is_floating(t.dtype()); })
      .def_property_readonly("_version", &Tensor::version)
      .def_property_readonly("_is_blocked", &Tensor::is_blocked)
      // views
      .def("view",
           [](const Tensor& t, py::args a) { return ag::view(t, sizes_from_args(a, "view")); })
      .def("reshape", [](const Tensor& t,
                         py::args a) { return ag::reshape(t, sizes_from_args(a, "reshape")); })
      .def("expand",
           [](const Tensor& t, py::args a) { return ag::expand(t, sizes_from_args(a, "expand")); })
      .def("permute", [](const Tensor& t,
                         py::args a) { return ag::permute(t, sizes_from_args(a, "permute")); })
      .def("transpose", &ag::transpose, py::arg("dim0"), py::arg("dim1"))
      .def("t",
           [](const Tensor& t) {
             PHX_CHECK(t.dim() <= 2, ValueError,
                       "t() expects a tensor with <= 2 dimensions, but self is ", t.dim(), "D");
             return t.dim() < 2 ? t : ag::transpose(t, 0, 1);
           })
      .def_property_readonly("T",
                             [](const Tensor& t) {
                               Shape perm;
                               for (int64_t i = t.dim() - 1; i >= 0; --i) perm.push_back(i);
                               return ag::permute(t, perm);
                             })
      .def("flatten", &ag::flatten, py::arg("start_dim") = 0, py::arg("end_dim") = -1)
      .def("unsqueeze", &ag::unsqueeze, py::arg("dim"))
      .def(
          "squeeze", [](const Tensor& t, std::optional<int64_t> d) { return ag::squeeze(t, d); },
          py::arg("dim") = py::none())
      .def("narrow",
           [](const Tensor& t, int64_t d, int64_t s, int64_t l) { return ag::narrow(t, d, s, l); })
      .def("select", &ag::select)
      .def("contiguous", &ag::contiguous)
      .def("clone", &ag::clone)
      .def("detach", &ag::detach)
      .def("detach_",
           [](Tensor& t) {
             if (auto* meta = t.autograd_meta_if_any()) {
               meta->grad_fn.reset();
               meta->requires_grad = false;
             }
             return t;
           })
      .def("index_select", &ag::index_select)
      .def("__getitem__", &getitem)
      .def("__setitem__", &setitem)
      .def("to", [](const Tensor& t, DType dt) { return ag::to_dtype(t, dt); })
      .def("float", [](const Tensor& t) { return ag::to_dtype(t, DType::Float32); })
      .def("half", [](const Tensor& t) { return ag::to_dtype(t, DType::Float16); })
      .def("double", [](const Tensor& t) { return ag::to_dtype(t, DType::Float64); })
      .def("bfloat16", [](const Tensor& t) { return ag::to_dtype(t, DType::BFloat16); })
      .def("long", [](const Tensor& t) { return ag::to_dtype(t, DType::Int64); })
      .def("int", [](const Tensor& t) { return ag::to_dtype(t, DType::Int32); })
      .def("bool", [](const Tensor& t) { return ag::to_dtype(t, DType::Bool); })
      .def("byte", [](const Tensor& t) { return ag::to_dtype(t, DType::UInt8); })
      .def("item",
           [](const Tensor& t) -> py::object {
             double v = t.item();
             if (is_floating(t.dtype())) return py::float_(v);
             if (t.dtype() == DType::Bool) return py::bool_(v != 0);
             return py::int_(static_cast<int64_t>(v));
           })
      .def("numpy",
           [](const Tensor& t) {
             PHX_CHECK(!t.requires_grad(), Error,
                       "Can't call numpy() on Tensor that requires grad. Use "
                       "tensor.detach().numpy() instead.");
             return to_numpy(t);
           })
      .def("_numpy_unchecked", &to_numpy)
      // autograd
      .def_property(
          "requires_grad", &Tensor::requires_grad,
          [](const Tensor& t, bool on) {
            PHX_CHECK(
                t.is_leaf() || on, Error,
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach().");
            PHX_CHECK(!on || is_floating(t.dtype()), Error,
                      "only Tensors of floating point dtype can require gradients, got ",
                      t.describe());
            check_differentiable_dtype(t, on);
            t.autograd_meta().requires_grad = on;
          })
      .def(
          "requires_grad_",
          [](const Tensor& t, bool on) {
            PHX_CHECK(t.is_leaf() || on, Error,
                      "you can only change requires_grad flags of leaf variables.");
            PHX_CHECK(!on || is_floating(t.dtype()), Error,
                      "only Tensors of floating point dtype can require gradients, got ",
                      t.describe());
            check_differentiable_dtype(t, on);
            t.autograd_meta().requires_grad = on;
            return t;
          },
          py::arg("requires_grad") = true)
      .def_property(
          "grad",
          [](const Tensor& t) -> py::object {
            auto* meta = t.autograd_meta_if_any();
            if (!meta || !meta->grad) return py::none();
            return py::cast(Tensor(meta->grad));
          },
          [](const Tensor& t, py::object g) {
            if (g.is_none()) {
              if (auto* meta = t.autograd_meta_if_any()) meta->grad.reset();
              return;
            }
            Tensor gt = g.cast<Tensor>();
            PHX_CHECK(gt.sizes() == t.sizes(), ValueError,
                      "assigned grad has data of a different size: ", gt.describe(), " vs tensor ",
                      t.describe());
            t.autograd_meta().grad = gt.impl_ptr();
          })
      .def_property_readonly("grad_fn",
                             [](const Tensor& t) -> py::object {
                               if (!t.grad_fn()) return py::none();
                               return py::cast(t.grad_fn());
                             })
      .def_property_readonly("is_leaf", &Tensor::is_leaf)
      .def(
          "backward",
          [](const Tensor& t, py::object gradient, std::optional<bool> retain_graph,
             bool create_graph) {
            PHX_CHECK(!create_graph, ValueError,
                      "backward: create_graph=True (higher-order gradients) is not supported");
            Tensor g = backward_gradient(gradient);
            // Python hooks take the GIL back when they run
            py::gil_scoped_release compute;
            ag::backward({t}, {g}, retain_graph.value_or(false));
          },
          py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none(),
          py::arg("create_graph") = false)
      .def("register_hook", &register_hook)
      .def("register_post_accumulate_grad_hook", &register_post_accumulate_grad_hook)
      .def("retain_grad", &ag::retain_grad)
      .def_property_readonly("retains_grad",
                             [](const Tensor& t) {
                               auto* meta = t.autograd_meta_if_any();
                               return meta && meta->retains_grad;
                             })
      // in place
      .def("zero_",
           [](const Tensor& t) {
             ag::fill_(t, 0);
             return t;
           })
      .def("fill_",
           [](const Tensor& t, double v) {
             ag::fill_(t, v);
             return t;
           })
      .def("copy_",
           [](const Tensor& t, const Tensor& src) {
             ag::copy_(t, src);
             return t;
           })
      .def(
          "clamp_",
          [](const Tensor& t, std::optional<double> lo, std::optional<double> hi) {
            ag::assign_(t, ag::clamp(t.requires_grad() && !t.is_leaf() ? ag::clone(t) : t, lo, hi),
                        "clamp_");
            return t;
          },
          py::arg("min") = py::none(), py::arg("max") = py::none())
      // reductions
      .def(
          "sum",
          [](const Tensor& t, py::object dim, bool keepdim) {
            return ag::sum(t, dims_arg(dim), keepdim);
          },
          py::arg("dim") = py::none(), py::arg("keepdim") = false)
      .def(
          "mean",
          [](const Tensor& t, py::object dim, bool keepdim) {
            return ag::mean(t, dims_arg(dim), keepdim);
          },
          py::arg("dim") = py::none(), py::arg("keepdim") = false)
      .def(
          "max",
          [](const Tensor& t, py::object dim, bool keepdim) {
            return max_or_min(t, dim, keepdim, true);
          },
          py::arg("dim") = py::none(), py::arg("keepdim") = false)
      .def(
          "min",
          [](const Tensor& t, py::object dim, bool keepdim) {
            return max_or_min(t, dim, keepdim, false);
          },
          py::arg("dim") = py::none(), py::arg("keepdim") = false)
      .def(
          "argmax",
          [](const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
            return ops::argmax(t, dim, keepdim, true);
          },
          py::arg("dim") = py::none(), py::arg("keepdim") = false)
      .def(
          "argmin",
          [](const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
            return ops::argmax(t, dim, keepdim, false);
          },
          py::arg("dim") = py::none(), py::arg("keepdim") = false)
      .def("matmul", &ag::matmul)
      .def("__matmul__", &ag::matmul)
      .def(
          "clamp",
          [](const Tensor& t, std::optional<double> lo, std::optional<double> hi) {
            return ag::clamp(t, lo, hi);
          },
          py::arg("min") = py::none(), py::arg("max") = py::none());

  // Arithmetic and comparison operators, with Python numbers on either side.
  struct Op {
    const char *name, *rname, *iname, *method;
    BinaryOp op;
  };
  static const Op binops[] = {
      {"__add__", "__radd__", "__iadd__", "add", BinaryOp::Add},
      {"__sub__", "__rsub__", "__isub__", "sub", BinaryOp::Sub},
      {"__mul__", "__rmul__", "__imul__", "mul", BinaryOp::Mul},
      {"__truediv__", "__rtruediv__", "__itruediv__", "div", BinaryOp::Div},
      {"__pow__", "__rpow__", "__ipow__", "pow", BinaryOp::Pow},
  };
  for (const Op& o : binops) {
    BinaryOp op = o.op;
    cls.def(
        o.name,
        [op](const Tensor& a, py::handle b) { return ag::binary(op, a, as_tensor_operand(b, a)); },
        py::is_operator());
    cls.def(
        o.rname,
        [op](const Tensor& a, py::handle b) { return ag::binary(op, as_tensor_operand(b, a), a); },
        py::is_operator());
    cls.def(
        o.iname,
        [op](const Tensor& a, py::handle b) {
          ag::binary_(op, a, as_tensor_operand(b, a));
          return a;
        },
        py::is_operator());
    cls.def(o.method, [op](const Tensor& a, py::handle b) {
      return ag::binary(op, a, as_tensor_operand(b, a));
    });
    cls.def((std::string(o.method) + "_").c_str(), [op](const Tensor& a, py::handle b) {
      ag::binary_(op, a, as_tensor_operand(b, a));
      return a;
    });
  }
  cls.def("maximum",
          [](const Tensor& a, const Tensor& b) { return ag::binary(BinaryOp::Maximum, a, b); });
  cls.def("minimum",
          [](const Tensor& a, const Tensor& b) { return ag::binary(BinaryOp::Minimum, a, b); });
  for (const auto& info : ops::kBinaryOps) {
    if (!info.is_comparison) continue;
    const char* name = info.name;
    BinaryOp op = info.op;
    auto fn = [op](const Tensor& a, py::handle b) {
      return ops::binary(op, a, as_tensor_operand(b, a));
    };
    cls.def(name, fn);
    cls.def(("__" + std::string(name) + "__").c_str(), fn, py::is_operator());
  }
  // == is elementwise, so hashing goes by object identity, as in PyTorch
  cls.def("__hash__", [](py::handle self) { return reinterpret_cast<uintptr_t>(self.ptr()); });

  for (const auto& info : ops::kUnaryOps) {
    UnaryOp op = info.op;
    cls.def(info.name, [op](const Tensor& a) { return ag::unary(op, a); });
  }
  cls.def("__neg__", [](const Tensor& a) { return ag::unary(UnaryOp::Neg, a); });
  cls.def("__abs__", [](const Tensor& a) { return ag::unary(UnaryOp::Abs, a); });
  cls.def("__invert__", [](const Tensor& a) { return ops::unary(UnaryOp::LogicalNot, a); });

  m.def("_from_numpy", &from_numpy);
  m.def("_backward", [](const std::vector<Tensor>& roots, py::list grads, bool retain_graph) {
    std::vector<Tensor> g;
    for (auto x : grads) g.push_back(backward_gradient(x));
    py::gil_scoped_release compute;
    ag::backward(roots, g, retain_graph);
  });
  m.def("_grad", [](const std::vector<Tensor>& roots, py::list grads,
                    const std::vector<Tensor>& inputs, bool retain_graph) {
    std::vector<Tensor> g;
    for (auto x : grads) g.push_back(backward_gradient(x));
    ag::TensorList out;
    {
      py::gil_scoped_release compute;
      out = ag::grad(roots, g, inputs, retain_graph);
    }
    py::list result;
    for (const Tensor& t : out) result.append(t.defined() ? py::cast(t) : py::none());
    return result;
  });
  // Called from a hook (the GIL held); the callback runs on the backward's thread at its end.
  m.def("_queue_backward_callback", [](py::function fn) {
    // The callback may be dropped unrun (a failing backward) on a thread without the GIL.
    std::shared_ptr<py::object> held(new py::object(std::move(fn)),
                                     [](py::object* f) { delete_python_object(f); });
    ag::queue_callback([held] {
      py::gil_scoped_acquire gil;
      (*held)();
    });
  });
}

}  // namespace phalanx::bindings
