// Module-level tensor functions: creation and math, with PyTorch's names and signatures.
#include "autograd/functions.h"
#include "bindings/convert.h"
#include "core/factory.h"
#include "ops/reduce.h"

namespace phalanx::bindings {

namespace ag = phalanx::autograd;
using ops::BinaryOp;
using ops::UnaryOp;

py::object max_or_min(const Tensor& t, py::handle dim, bool keepdim, bool is_max);

static Tensor with_grad(Tensor t, bool requires_grad) {
  if (requires_grad) {
    PHX_CHECK(is_floating(t.dtype()), Error,
              "only Tensors of floating point dtype can require gradients, got ", t.describe());
    check_differentiable_dtype(t, true);
    t.autograd_meta().requires_grad = true;
  }
  return t;
}

static std::vector<int64_t> dims_of(py::handle dim) {
  if (dim.is_none()) return {};
  if (py::isinstance<py::int_>(dim)) return {dim.cast<int64_t>()};
  return dim.cast<std::vector<int64_t>>();
}

void init_functions(py::module_& m) {
  m.def(
      "zeros",
      [](py::args size, std::optional<DType> dt, bool rg) {
        return with_grad(zeros(sizes_from_args(size, "zeros"), dt.value_or(DType::Float32)), rg);
      },
      py::arg("dtype") = py::none(), py::arg("requires_grad") = false);
  m.def(
      "ones",
      [](py::args size, std::optional<DType> dt, bool rg) {
        return with_grad(ones(sizes_from_args(size, "ones"), dt.value_or(DType::Float32)), rg);
      },
      py::arg("dtype") = py::none(), py::arg("requires_grad") = false);
  m.def(
      "empty",
      [](py::args size, std::optional<DType> dt, bool rg) {
        Shape s = sizes_from_args(size, "empty");
        for (int64_t v : s)
          PHX_CHECK(v >= 0, ValueError, "empty: negative dimension ", v, " in size ", shape_str(s));
        return with_grad(Tensor::empty(s, dt.value_or(DType::Float32)), rg);
      },
      py::arg("dtype") = py::none(), py::arg("requires_grad") = false);
  m.def(
      "full",
      [](const Shape& size, py::handle value, std::optional<DType> dtype, bool rg) {
        // like PyTorch, the fill value's Python type chooses the dtype when none is given
        DType dt = dtype                              ? *dtype
                   : py::isinstance<py::bool_>(value) ? DType::Bool
                   : py::isinstance<py::int_>(value)  ? DType::Int64
                                                      : DType::Float32;
        return with_grad(full(size, value.cast<double>(), dt), rg);
      },
      py::arg("size"), py::arg("fill_value"), py::kw_only(), py::arg("dtype") = py::none(),
      py::arg("requires_grad") = false);
  m.def("_arange", [](double start, double end, double step, DType dtype, bool rg) {
    return with_grad(arange(start, end, step, dtype), rg);
  });
  m.def(
      "rand",
      [](py::args size, std::shared_ptr<Generator> gen, std::optional<DType> dt, bool rg) {
        return with_grad(rand(sizes_from_args(size, "rand"), gen, dt.value_or(DType::Float32)), rg);
      },
      py::arg("generator") = nullptr, py::arg("dtype") = py::none(),
      py::arg("requires_grad") = false);
  m.def(
      "randn",
      [](py::args size, std::shared_ptr<Generator> gen, std::optional<DType> dt, bool rg) {
        return with_grad(randn(sizes_from_args(size, "randn"), gen, dt.value_or(DType::Float32)),
                         rg);
      },
      py::arg("generator") = nullptr, py::arg("dtype") = py::none(),
      py::arg("requires_grad") = false);
  m.def("_randint", [](int64_t low, int64_t high, const Shape& size, std::shared_ptr<Generator> gen,
                       DType dtype) { return randint(low, high, size, gen, dtype); });
  m.def(
      "randperm", [](int64_t n, std::shared_ptr<Generator> gen) { return randperm(n, gen); },
      py::arg("n"), py::kw_only(), py::arg("generator") = nullptr);
  m.def("_uniform_", [](const Tensor& t, double lo, double hi, std::shared_ptr<Generator> gen) {
    uniform_(t, lo, hi, gen);
  });
  m.def("_normal_", [](const Tensor& t, double mean, double std, std::shared_ptr<Generator> gen) {
    normal_(t, mean, std, gen);
  });
  m.def("_bernoulli_",
        [](const Tensor& t, double p, std::shared_ptr<Generator> gen) { bernoulli_(t, p, gen); });

  // Binary math: tensors or numbers on either side.
  static const std::pair<const char*, BinaryOp> binops[] = {
      {"add", BinaryOp::Add},        {"sub", BinaryOp::Sub}, {"mul", BinaryOp::Mul},
      {"div", BinaryOp::Div},        {"pow", BinaryOp::Pow}, {"maximum", BinaryOp::Maximum},
      {"minimum", BinaryOp::Minimum}};
  for (const auto& [name, op_] : binops) {
    BinaryOp op = op_;
    m.def(
        name,
        [op](py::handle a, py::handle b) {
          if (py::isinstance<Tensor>(a))
            return ag::binary(op, a.cast<Tensor>(), as_tensor_operand(b, a.cast<Tensor>()));
          Tensor tb = b.cast<Tensor>();
          return ag::binary(op, as_tensor_operand(a, tb), tb);
        },
        py::arg("input"), py::arg("other"));
  }
  for (const auto& info : ops::kBinaryOps) {
    if (!info.is_comparison) continue;
    const char* name = info.name;
    BinaryOp op = info.op;
    m.def(name, [op](const Tensor& a, py::handle b) {
      return ops::binary(op, a, as_tensor_operand(b, a));
    });
  }
  for (const auto& info : ops::kUnaryOps) {
    UnaryOp op = info.op;
    m.def(info.name, [op](const Tensor& a) { return ag::unary(op, a); });
  }
  m.def(
      "clamp",
      [](const Tensor& a, std::optional<double> lo, std::optional<double> hi) {
        return ag::clamp(a, lo, hi);
      },
      py::arg("input"), py::arg("min") = py::none(), py::arg("max") = py::none());
  m.def(
      "where",
      [](const Tensor& c, py::handle a, py::handle b) {
        Tensor ta = py::isinstance<Tensor>(a) ? a.cast<Tensor>() : Tensor();
        Tensor tb = py::isinstance<Tensor>(b) ? b.cast<Tensor>() : Tensor();
        Tensor like =
            ta.defined() ? ta : (tb.defined() ? tb : ops::scalar_tensor(0, DType::Float32));
        return ag::where(c, as_tensor_operand(a, like), as_tensor_operand(b, like));
      },
      py::arg("condition"), py::arg("input"), py::arg("other"));
  m.def(
      "sum",
      [](const Tensor& t, py::object dim, bool keepdim) {
        return ag::sum(t, dims_of(dim), keepdim);
      },
      py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "mean",
      [](const Tensor& t, py::object dim, bool keepdim) {
        return ag::mean(t, dims_of(dim), keepdim);
      },
      py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "max",
      [](const Tensor& t, py::object dim, bool keepdim) {
        return max_or_min(t, dim, keepdim, true);
      },
      py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "min",
      [](const Tensor& t, py::object dim, bool keepdim) {
        return max_or_min(t, dim, keepdim, false);
      },
      py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "argmax",
      [](const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
        return ops::argmax(t, dim, keepdim, true);
      },
      py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "argmin",
      [](const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
        return ops::argmax(t, dim, keepdim, false);
      },
      py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("matmul", &ag::matmul, py::arg("input"), py::arg("other"));
  m.def("cat", &ag::cat, py::arg("tensors"), py::arg("dim") = 0);
  m.def("stack", &ag::stack, py::arg("tensors"), py::arg("dim") = 0);
  m.def("index_select", &ag::index_select, py::arg("input"), py::arg("dim"), py::arg("index"));
  m.def("flatten", &ag::flatten, py::arg("input"), py::arg("start_dim") = 0,
        py::arg("end_dim") = -1);
  m.def("reshape", &ag::reshape, py::arg("input"), py::arg("shape"));
  m.def("transpose", &ag::transpose, py::arg("input"), py::arg("dim0"), py::arg("dim1"));
  m.def("permute", &ag::permute, py::arg("input"), py::arg("dims"));
  m.def("unsqueeze", &ag::unsqueeze, py::arg("input"), py::arg("dim"));
  m.def(
      "squeeze", [](const Tensor& t, std::optional<int64_t> d) { return ag::squeeze(t, d); },
      py::arg("input"), py::arg("dim") = py::none());
}

}  // namespace phalanx::bindings
