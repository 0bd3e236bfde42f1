// phalanx._C.nn: the neural-network ops behind phalanx.nn.functional.
#include "autograd/functions.h"
#include "bindings/convert.h"
#include "ops/window_args.h"

namespace phalanx::bindings {

namespace ag = phalanx::autograd;

static std::array<int64_t, 2> pair(py::handle v, const char* what) {
  Shape s = int_list(v, 2, what);
  return {s[0], s[1]};
}

static Tensor opt(py::handle t) {
  return t.is_none() ? Tensor() : t.cast<Tensor>();
}

static ops::Conv2dParams conv_params(py::handle stride, py::handle padding, py::handle dilation,
                                     int64_t groups) {
  ops::Conv2dParams p;
  p.stride = pair(stride, "stride");
  p.padding = pair(padding, "padding");
  p.dilation = pair(dilation, "dilation");
  p.groups = groups;
  return p;
}

void init_nn(py::module_& parent) {
  py::module_ m = parent.def_submodule("nn", "neural-network ops");
  // The largest stride, padding, dilation or kernel size (the modules check it when built).
  m.attr("max_window_arg") = ops::kMaxWindowArg;
  m.def("conv2d", [](const Tensor& x, const Tensor& w, py::object bias, py::object stride,
                     py::object padding, py::object dilation, int64_t groups) {
    ops::Conv2dParams p = conv_params(stride, padding, dilation, groups);
    Tensor b = opt(bias);
    py::gil_scoped_release compute;  // lets data-loading threads run meanwhile
    return ag::conv2d(x, w, b, p);
  });
  m.def("conv_transpose2d",
        [](const Tensor& x, const Tensor& w, py::object bias, py::object stride, py::object padding,
           py::object output_padding, int64_t groups, py::object dilation) {
          ops::ConvTranspose2dParams p;
          p.stride = pair(stride, "stride");
          p.padding = pair(padding, "padding");
          p.output_padding = pair(output_padding, "output_padding");
          p.dilation = pair(dilation, "dilation");
          p.groups = groups;
          Tensor b = opt(bias);
          py::gil_scoped_release compute;
          return ag::conv_transpose2d(x, w, b, p);
        });
  // relu(conv2d(...)) in one oneDNN pass (autograd::conv2d_relu)
  m.def("conv2d_relu", [](const Tensor& x, const Tensor& w, py::object bias, py::object stride,
                          py::object padding, py::object dilation, int64_t groups) {
    ops::Conv2dParams p = conv_params(stride, padding, dilation, groups);
    Tensor b = opt(bias);
    py::gil_scoped_release compute;
    return ag::conv2d_relu(x, w, b, p);
  });
  // mode: "nearest" or "linear" (ops::ResampleMode)
  m.def("resample", [](const Tensor& x, const Shape& out_spatial, const std::string& mode) {
    PHX_CHECK(mode == "nearest" || mode == "linear", ValueError,
              "resample: mode must be 'nearest' or 'linear', got '", mode, "'");
    const auto m = mode == "nearest" ? ops::ResampleMode::Nearest : ops::ResampleMode::Linear;
    py::gil_scoped_release compute;
    return ag::resample(x, out_spatial, m);
  });
  m.def("linear", [](const Tensor& x, const Tensor& w, py::object bias) {
    Tensor b = opt(bias);
    py::gil_scoped_release compute;
    return ag::linear(x, w, b);
  });
  // onednn_plain: a plain input also goes to oneDNN's primitive (ops::PlainKernel)
  m.def(
      "batch_norm",
      [](const Tensor& x, py::object rm, py::object rv, py::object w, py::object b, bool training,
         double momentum, double eps, bool onednn_plain) {
        Tensor m = opt(rm), v = opt(rv), scale = opt(w), shift = opt(b);
        py::gil_scoped_release compute;
        return ag::batch_norm(x, m, v, scale, shift, training, momentum, eps,
                              onednn_plain ? ops::PlainKernel::OneDnn : ops::PlainKernel::Loops);
      },
      py::arg("input"), py::arg("running_mean"), py::arg("running_var"), py::arg("weight"),
      py::arg("bias"), py::arg("training"), py::arg("momentum"), py::arg("eps"),
      py::arg("onednn_plain") = false);
  // relu(batch_norm(...)) in one oneDNN pass where the input allows (autograd::batch_norm_relu)
  m.def("batch_norm_relu", [](const Tensor& x, py::object rm, py::object rv, py::object w,
                              py::object b, bool training, double momentum, double eps) {
    Tensor m = opt(rm), v = opt(rv), scale = opt(w), shift = opt(b);
    py::gil_scoped_release compute;
    return ag::batch_norm_relu(x, m, v, scale, shift, training, momentum, eps);
  });
  m.def("layer_norm",
        [](const Tensor& x, int64_t normalized_ndim, py::object w, py::object b, double eps) {
          Tensor scale = opt(w), shift = opt(b);
          py::gil_scoped_release compute;
          return ag::layer_norm(x, normalized_ndim, scale, shift, eps);
        });
  py::enum_<ops::Activation> activation_enum(m, "Activation");
  for (const auto& a : ops::kActivations) activation_enum.value(a.python_name, a.kind);
  m.def("activation", &ag::activation, py::arg("kind"), py::arg("input"), py::arg("alpha") = 0.f);
  m.def("activation_", &ag::activation_, py::arg("kind"), py::arg("input"), py::arg("alpha") = 0.f);
  m.def("max_pool2d", [](const Tensor& x, py::object k, py::object s, py::object p, py::object d,
                         bool ceil_mode) {
    ops::Pool2dParams pp;
    pp.kernel = pair(k, "kernel_size");
    pp.stride = s.is_none() ? pp.kernel : pair(s, "stride");
    pp.padding = pair(p, "padding");
    pp.dilation = pair(d, "dilation");
    pp.ceil_mode = ceil_mode;
    py::gil_scoped_release compute;
    return ag::max_pool2d(x, pp);
  });
  m.def("avg_pool2d", [](const Tensor& x, py::object k, py::object s, py::object p, bool ceil_mode,
                         bool include_pad) {
    ops::Pool2dParams pp;
    pp.kernel = pair(k, "kernel_size");
    pp.stride = s.is_none() ? pp.kernel : pair(s, "stride");
    pp.padding = pair(p, "padding");
    pp.ceil_mode = ceil_mode;
    pp.count_include_pad = include_pad;
    py::gil_scoped_release compute;
    return ag::avg_pool2d(x, pp);
  });
  m.def("adaptive_avg_pool2d", [](const Tensor& x, py::object size) {
    return ag::adaptive_avg_pool2d(x, pair(size, "output_size"));
  });
  m.def("softmax", &ag::softmax, py::arg("input"), py::arg("dim"), py::arg("log"));
  m.def("nll_loss", [](const Tensor& input, const Tensor& target, py::object weight,
                       const std::string& reduction, int64_t ignore_index) {
    return ag::nll_loss(input, target, opt(weight), ops::parse_reduction(reduction), ignore_index);
  });
}

}  // namespace phalanx::bindings
