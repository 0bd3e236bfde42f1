// phalanx._C.data bindings: dataset readers and the batch transform (csrc/io).
#include <optional>

#include "bindings/convert.h"
#include "data/batch_transforms.h"
#include "io/dataset_readers.h"

namespace phalanx::bindings {

namespace {

std::pair<const uint8_t*, size_t> byte_view(const py::bytes& b) {
  return {reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(b.ptr())),
          static_cast<size_t>(PyBytes_GET_SIZE(b.ptr()))};
}

py::array read_idx(const py::bytes& data, const std::string& path,
                   std::optional<int64_t> expected_magic) {
  auto [p, n] = byte_view(data);
  io::IdxHeader h;
  {
    py::gil_scoped_release nogil;
    h = io::parse_idx_header(p, n, path, expected_magic.value_or(-1));
  }
  std::vector<py::ssize_t> shape(h.shape.begin(), h.shape.end());
  py::array out(py::dtype(io::idx_type_name(h.type_code)), shape);
  void* dst = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    io::decode_idx(h, p, dst);
  }
  return out;
}

py::tuple cifar_tuple(const io::CifarData& d) {
  return py::make_tuple(d.images, d.labels);
}

}  // namespace

void init_data(py::module_& m) {
  auto d = m.def_submodule("data", "dataset readers and batch transforms");

  d.def("read_idx", &read_idx, py::arg("data"), py::arg("path"),
        py::arg("expected_magic") = py::none(),
        "Parses an IDX buffer (already decompressed) into a numpy array of native byte order.");
  d.def(
      "parse_cifar10",
      [](const py::bytes& data, const std::string& path) {
        auto [p, n] = byte_view(data);
        io::CifarData out;
        {
          py::gil_scoped_release nogil;
          out = io::parse_cifar10(p, n, path);
        }
        return cifar_tuple(out);
      },
      py::arg("data"), py::arg("path"));
  d.def(
      "read_cifar10",
      [](const std::vector<std::string>& paths) {
        io::CifarData out;
        {
          py::gil_scoped_release nogil;
          out = io::read_cifar10_files(paths);
        }
        return cifar_tuple(out);
      },
      py::arg("paths"));

  d.def(
      "draw_crop",
      [](int64_t h, int64_t w, int64_t th, int64_t tw, std::shared_ptr<Generator> gen) {
        auto o = data::draw_crop(gen, h, w, th, tw);
        return py::make_tuple(o.top, o.left);
      },
      py::arg("h"), py::arg("w"), py::arg("th"), py::arg("tw"), py::arg("generator") = nullptr);
  d.def(
      "draw_flip", [](double p, std::shared_ptr<Generator> gen) { return data::draw_flip(gen, p); },
      py::arg("p"), py::arg("generator") = nullptr);

  d.def(
      "transform_batch",
      [](const Tensor& images, std::optional<Tensor> indices,
         std::optional<std::pair<int64_t, int64_t>> crop, std::array<int64_t, 4> padding,
         std::optional<double> flip_p, std::vector<double> mean, std::vector<double> std,
         bool channels_last, std::shared_ptr<Generator> gen) {
        data::BatchTransformSpec spec;
        spec.channels_last = channels_last;
        if (crop) spec.crop_h = crop->first, spec.crop_w = crop->second;
        spec.pad_left = padding[0], spec.pad_top = padding[1];
        spec.pad_right = padding[2], spec.pad_bottom = padding[3];
        spec.flip = flip_p.has_value();
        spec.flip_p = flip_p.value_or(0.5);
        spec.mean = std::move(mean);
        spec.std = std::move(std);
        py::gil_scoped_release nogil;
        return data::transform_batch(images, indices.value_or(Tensor()), spec, gen);
      },
      py::arg("images"), py::arg("indices") = py::none(), py::kw_only(),
      py::arg("crop") = py::none(), py::arg("padding") = std::array<int64_t, 4>{0, 0, 0, 0},
      py::arg("flip_p") = py::none(), py::arg("mean") = std::vector<double>{},
      py::arg("std") = std::vector<double>{}, py::arg("channels_last") = false,
      py::arg("generator") = nullptr,
      "uint8 images [N,H,W] / [N,C,H,W] / [N,H,W,C] (channels_last) -> float32 [B,C,H',W']: "
      "gather by indices, zero-pad (left, top, right, bottom), random crop, random horizontal "
      "flip, scale to [0, 1] and normalize.");
}

}  // namespace phalanx::bindings
