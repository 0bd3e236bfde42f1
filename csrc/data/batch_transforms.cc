#include "data/batch_transforms.h"

#include <mutex>

#include "core/error.h"

namespace phalanx::data {

CropOffset draw_crop(std::mt19937_64& engine, int64_t h, int64_t w, int64_t th, int64_t tw) {
  PHX_CHECK(th <= h && tw <= w, ValueError, "RandomCrop: required crop size (", th, ", ", tw,
            ") is larger than the (padded) input image size (", h, ", ", w, ")");
  if (h == th && w == tw) return {};
  CropOffset o;
  o.top = std::uniform_int_distribution<int64_t>(0, h - th)(engine);
  o.left = std::uniform_int_distribution<int64_t>(0, w - tw)(engine);
  return o;
}

bool draw_flip(std::mt19937_64& engine, double p) {
  // The same uniform float as phalanx.rand, so `rand(1) < p` and this draw agree.
  const float u = static_cast<float>(engine() >> 40) * (1.0f / 16777216.0f);
  return u < p;
}

CropOffset draw_crop(const GeneratorPtr& gen, int64_t h, int64_t w, int64_t th, int64_t tw) {
  auto g = or_default(gen);
  std::lock_guard<std::mutex> lock(g->mutex());
  return draw_crop(g->engine(), h, w, th, tw);
}

bool draw_flip(const GeneratorPtr& gen, double p) {
  auto g = or_default(gen);
  std::lock_guard<std::mutex> lock(g->mutex());
  return draw_flip(g->engine(), p);
}

namespace {

// Per-channel table from pixel value to output value: (p / 255 - mean) / std, computed in
// float32 in the same order as ToTensor then Normalize, so both paths round identically.
std::vector<float> value_table(const BatchTransformSpec& spec, int64_t channels) {
  std::vector<float> lut(static_cast<size_t>(channels) * 256);
  for (int64_t c = 0; c < channels; ++c) {
    const bool norm = !spec.mean.empty();
    const auto m = norm ? static_cast<float>(spec.mean[spec.mean.size() == 1 ? 0 : c]) : 0.0f;
    const auto s = norm ? static_cast<float>(spec.std[spec.std.size() == 1 ? 0 : c]) : 1.0f;
    for (int p = 0; p < 256; ++p) {
      const float x = static_cast<float>(p) / 255.0f;
      lut[static_cast<size_t>(c * 256 + p)] = norm ? (x - m) / s : x;
    }
  }
  return lut;
}

void check_stats(const std::vector<double>& v, const char* name, int64_t channels) {
  PHX_CHECK(v.size() == 1 || static_cast<int64_t>(v.size()) == channels, ValueError,
            "transform_batch: ", name, " has ", v.size(), " values for ", channels,
            " channels (give one value or one per channel)");
}

}  // namespace

Tensor transform_batch(const Tensor& images_in, const Tensor& indices_in,
                       const BatchTransformSpec& spec, const GeneratorPtr& gen) {
  PHX_CHECK(images_in.defined() && images_in.dtype() == DType::UInt8, TypeError,
            "transform_batch: expects uint8 images, got ",
            images_in.defined() ? images_in.describe() : std::string("an undefined tensor"));
  const Tensor images = images_in.is_blocked() ? images_in.contiguous() : images_in;
  const int64_t nd = images.dim();
  PHX_CHECK(nd == 3 || nd == 4, ValueError,
            "transform_batch: expects images of [N, H, W], [N, C, H, W]", " or [N, H, W, C], got ",
            images.describe());
  PHX_CHECK(!spec.channels_last || nd == 4, ValueError,
            "transform_batch: channels_last needs [N, H, W, C] images, got ", images.describe());
  const auto& sz = images.sizes();
  const auto& st = images.strides();
  int64_t n = sz[0], c = 1, h, w, sn = st[0], sc = 0, sh, sw;
  if (nd == 3) {
    h = sz[1], w = sz[2], sh = st[1], sw = st[2];
  } else if (spec.channels_last) {
    h = sz[1], w = sz[2], c = sz[3], sh = st[1], sw = st[2], sc = st[3];
  } else {
    c = sz[1], h = sz[2], w = sz[3], sc = st[1], sh = st[2], sw = st[3];
  }

  Tensor indices;
  int64_t b = n;
  if (indices_in.defined()) {
    PHX_CHECK(indices_in.dtype() == DType::Int64 && indices_in.dim() == 1, TypeError,
              "transform_batch: indices must be a 1-d int64 tensor, got ", indices_in.describe());
    indices = indices_in.contiguous();
    b = indices.numel();
    const int64_t* idx = indices.data<int64_t>();
    for (int64_t i = 0; i < b; ++i)
      PHX_CHECK(idx[i] >= 0 && idx[i] < n, IndexError, "transform_batch: index ", idx[i],
                " is out of range for ", n, " images");
  }

  PHX_CHECK(spec.mean.empty() == spec.std.empty(), ValueError,
            "transform_batch: give both mean and std, or neither");
  if (!spec.mean.empty()) {
    check_stats(spec.mean, "mean", c);
    check_stats(spec.std, "std", c);
    for (double s : spec.std)
      PHX_CHECK(s != 0.0, ValueError,
                "transform_batch: std evaluated to zero, leading to division by zero");
  }

  const bool crop = spec.crop_h > 0 || spec.crop_w > 0;
  const int64_t pt = crop ? spec.pad_top : 0, pl = crop ? spec.pad_left : 0;
  const int64_t hp = h + pt + (crop ? spec.pad_bottom : 0),
                wp = w + pl + (crop ? spec.pad_right : 0);
  PHX_CHECK(!crop || (spec.pad_top >= 0 && spec.pad_left >= 0 && spec.pad_bottom >= 0 &&
                      spec.pad_right >= 0),
            ValueError, "transform_batch: padding must be non-negative");
  const int64_t oh = crop ? spec.crop_h : h, ow = crop ? spec.crop_w : w;
  PHX_CHECK(oh > 0 && ow > 0, ValueError, "transform_batch: crop size must be positive, got (", oh,
            ", ", ow, ")");
  PHX_CHECK(oh <= hp && ow <= wp, ValueError, "RandomCrop: required crop size (", oh, ", ", ow,
            ") is larger than the (padded) input image size (", hp, ", ", wp, ")");

  // The random choices, serially in batch order (see the header).
  std::vector<CropOffset> offsets(static_cast<size_t>(b));
  std::vector<uint8_t> flips(static_cast<size_t>(b), 0);
  if (crop || spec.flip) {
    auto g = or_default(gen);
    std::lock_guard<std::mutex> lock(g->mutex());
    for (int64_t i = 0; i < b; ++i) {
      if (crop) offsets[static_cast<size_t>(i)] = draw_crop(g->engine(), hp, wp, oh, ow);
      if (spec.flip) flips[static_cast<size_t>(i)] = draw_flip(g->engine(), spec.flip_p);
    }
  }

  const std::vector<float> lut = value_table(spec, c);
  Tensor out = Tensor::empty({b, c, oh, ow}, DType::Float32);
  float* dst = out.data<float>();
  const uint8_t* src = images.data<uint8_t>();
  const int64_t* idx = indices.defined() ? indices.data<int64_t>() : nullptr;

#pragma omp parallel for schedule(static) if (b * c * oh * ow > 32768)
  for (int64_t i = 0; i < b; ++i) {
    const uint8_t* img = src + (idx ? idx[i] : i) * sn;
    const CropOffset o = offsets[static_cast<size_t>(i)];
    const bool flip = flips[static_cast<size_t>(i)] != 0;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* table = lut.data() + ch * 256;
      const float pad = table[0];  // zero padding is the pixel value 0
      for (int64_t y = 0; y < oh; ++y) {
        float* row = dst + ((i * c + ch) * oh + y) * ow;
        const int64_t sy = o.top + y - pt;
        if (sy < 0 || sy >= h) {
          for (int64_t x = 0; x < ow; ++x) row[x] = pad;
          continue;
        }
        const uint8_t* srow = img + ch * sc + sy * sh;
        for (int64_t x = 0; x < ow; ++x) {
          const int64_t sx = o.left + (flip ? ow - 1 - x : x) - pl;
          row[x] = (sx >= 0 && sx < w) ? table[srow[sx * sw]] : pad;
        }
      }
    }
  }
  return out;
}

}  // namespace phalanx::data
