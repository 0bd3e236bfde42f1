// The batch image pipeline of the data loader: uint8 images in, normalized float32 NCHW out,
// with torchvision's RandomCrop (zero padding) and RandomHorizontalFlip in between.
//
// Random choices are drawn from a phalanx Generator serially, per sample in batch order
// (crop top, crop left, then the flip draw), exactly as the per-sample Python transforms
// draw them one image at a time; the pixel work then runs in parallel over the batch with
// OpenMP. So the batch and per-sample paths agree bit for bit given the same generator state,
// whatever the thread count.
#pragma once
#include <cstdint>
#include <vector>

#include "core/generator.h"
#include "core/tensor.h"

namespace phalanx::data {

// torchvision's RandomCrop.get_params on an image of h x w (already padded): no draw when the
// crop is the whole image, else top in [0, h - th] then left in [0, w - tw]. ValueError when
// the crop is larger than the image. The caller holds the generator's lock.
struct CropOffset {
  int64_t top = 0, left = 0;
};
CropOffset draw_crop(std::mt19937_64& engine, int64_t h, int64_t w, int64_t th, int64_t tw);
// torchvision's RandomHorizontalFlip draw: one uniform number in [0, 1), flip when below p.
bool draw_flip(std::mt19937_64& engine, double p);

// The locking versions, for the per-sample transforms.
CropOffset draw_crop(const GeneratorPtr& gen, int64_t h, int64_t w, int64_t th, int64_t tw);
bool draw_flip(const GeneratorPtr& gen, double p);

struct BatchTransformSpec {
  // Input layout: [N, H, W] (one channel), [N, C, H, W], or with channels_last [N, H, W, C]
  // (numpy / PIL order). The output is always [N, C, H', W'].
  bool channels_last = false;
  // RandomCrop: crop_h = 0 means no crop. The image is padded with zeros (before scaling, as
  // torchvision pads the uint8 image) by pad_* on each side, then cropped to crop_h x crop_w.
  int64_t crop_h = 0, crop_w = 0;
  int64_t pad_left = 0, pad_top = 0, pad_right = 0, pad_bottom = 0;
  bool flip = false;  // RandomHorizontalFlip with probability flip_p
  double flip_p = 0.5;
  // Normalize after scaling to [0, 1]: one value for every channel, or one per channel;
  // empty = no normalization (ToTensor alone).
  std::vector<double> mean, std;
};

// images: uint8 in one of the layouts above, any strides. indices: optional int64 [B] naming
// which samples of `images` form the batch (the gather is fused into the transform); undefined
// means all of them in order. Returns float32 [B, C, H', W'].
Tensor transform_batch(const Tensor& images, const Tensor& indices, const BatchTransformSpec& spec,
                       const GeneratorPtr& gen = nullptr);

}  // namespace phalanx::data
