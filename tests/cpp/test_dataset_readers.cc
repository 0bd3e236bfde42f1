// The IDX and CIFAR-10 parsers and the batch transform, on in-memory bytes.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/batch_transforms.h"
#include "io/dataset_readers.h"

using namespace phalanx;

namespace {

std::vector<uint8_t> idx_u8(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& payload,
                            uint8_t type = 0x08) {
  std::vector<uint8_t> b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

template <typename E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<no error>";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::vector<uint8_t> cifar_records(int n) {
  std::vector<uint8_t> b;
  for (int i = 0; i < n; ++i) {
    b.push_back(static_cast<uint8_t>(i % 10));
    for (int p = 0; p < 3072; ++p) b.push_back(static_cast<uint8_t>((p * 7 + i) % 256));
  }
  return b;
}

}  // namespace

TEST(IdxReader, ParsesUint8) {
  auto b = idx_u8({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor t = io::read_idx_uint8(b.data(), b.size(), "a.idx", 0x00000802);
  ASSERT_EQ(t.sizes(), (Shape{2, 3}));
  EXPECT_EQ(t.dtype(), DType::UInt8);
  EXPECT_EQ(t.data<uint8_t>()[5], 6);
}

TEST(IdxReader, DecodesBigEndianInt32) {
  auto b = idx_u8({2}, {0, 0, 1, 2, 0xff, 0xff, 0xff, 0xfe}, 0x0C);
  auto h = io::parse_idx_header(b.data(), b.size(), "i.idx");
  ASSERT_EQ(h.itemsize, 4u);
  int32_t out[2];
  io::decode_idx(h, b.data(), out);
  EXPECT_EQ(out[0], 258);
  EXPECT_EQ(out[1], -2);
}

TEST(IdxReader, WrongMagicNamesPathAndBothNumbers) {
  auto b = idx_u8({3}, {0, 1, 2});  // a labels file (2049)
  auto msg =
      error_of<ValueError>([&] { io::parse_idx_header(b.data(), b.size(), "/d/imgs", 2051); });
  EXPECT_TRUE(
      contains(msg, "/d/imgs: bad IDX magic number: expected 2051 (0x00000803), found 2049"))
      << msg;
}

TEST(IdxReader, NotAnIdxFile) {
  std::vector<uint8_t> b = {'P', 'K', 3, 4, 0, 0, 0, 0};
  auto msg = error_of<ValueError>([&] { io::parse_idx_header(b.data(), b.size(), "junk"); });
  EXPECT_TRUE(contains(msg, "junk: not an IDX file: bad magic number 1347093252")) << msg;
}

TEST(IdxReader, TruncatedHeaderAndData) {
  auto b = idx_u8({2, 2}, {1, 2, 3, 4});
  for (size_t cut : {0, 3, 7, 11}) {
    auto msg = error_of<ValueError>([&] { io::parse_idx_header(b.data(), cut, "h.idx"); });
    EXPECT_TRUE(contains(msg, "h.idx: truncated IDX header")) << cut << ": " << msg;
  }
  auto msg = error_of<ValueError>([&] { io::parse_idx_header(b.data(), b.size() - 1, "d.idx"); });
  EXPECT_TRUE(
      contains(msg, "d.idx: truncated IDX data: shape [2, 2] of uint8 needs 4 data bytes, found 3"))
      << msg;
  b.push_back(0);
  msg = error_of<ValueError>([&] { io::parse_idx_header(b.data(), b.size(), "t.idx"); });
  EXPECT_TRUE(contains(msg, "trailing bytes after IDX data")) << msg;
}

TEST(IdxReader, HugeClaimedShapeIsTruncationNotOverflow) {
  auto b = idx_u8({0xffffffffu, 0xffffffffu, 0xffffffffu}, {1, 2, 3});
  auto msg = error_of<ValueError>([&] { io::parse_idx_header(b.data(), b.size(), "big"); });
  EXPECT_TRUE(contains(msg, "truncated IDX data")) << msg;
}

TEST(IdxReader, NonUint8RejectedByUint8Reader) {
  auto b = idx_u8({1}, {0, 0, 0, 1}, 0x0C);
  auto msg = error_of<TypeError>([&] { io::read_idx_uint8(b.data(), b.size(), "x"); });
  EXPECT_TRUE(contains(msg, "int32")) << msg;
}

TEST(CifarReader, ParsesPlanarRecords) {
  auto b = cifar_records(3);
  auto d = io::parse_cifar10(b.data(), b.size(), "c.bin");
  ASSERT_EQ(d.images.sizes(), (Shape{3, 3, 32, 32}));
  ASSERT_EQ(d.labels.sizes(), (Shape{3}));
  EXPECT_EQ(d.labels.data<int64_t>()[2], 2);
  // Record 1, green plane (offset 1024), row 0, column 5: pixel byte index 1029.
  EXPECT_EQ(d.images.data<uint8_t>()[3072 + 1024 + 5], (1029 * 7 + 1) % 256);
}

TEST(CifarReader, TruncatedAndBadLabel) {
  auto b = cifar_records(2);
  auto msg = error_of<ValueError>(
      [&] { io::parse_cifar10(b.data(), b.size() - 10, "/x/data_batch_1.bin"); });
  EXPECT_TRUE(contains(msg, "/x/data_batch_1.bin: truncated CIFAR-10 file")) << msg;
  b[3073] = 200;
  msg = error_of<ValueError>([&] { io::parse_cifar10(b.data(), b.size(), "y.bin"); });
  EXPECT_TRUE(contains(msg, "y.bin: not a CIFAR-10 file: record 1 has label 200")) << msg;
}

TEST(CifarReader, EmptyFileIsRefusedNotAnEmptyDataset) {
  auto msg = error_of<ValueError>([&] { io::parse_cifar10(nullptr, 0, "/x/data_batch_2.bin"); });
  EXPECT_TRUE(contains(msg, "/x/data_batch_2.bin: empty CIFAR-10 file (0 bytes)")) << msg;
  const std::string p = testing::TempDir() + "phx_empty_cifar.bin";
  std::ofstream(p, std::ios::binary).close();
  msg = error_of<ValueError>([&] { io::read_cifar10_files({p}); });
  std::remove(p.c_str());
  EXPECT_TRUE(contains(msg, p + ": empty CIFAR-10 file")) << msg;
}

TEST(CifarReader, ReadsAndConcatenatesFiles) {
  auto b = cifar_records(3);
  const std::string p1 = testing::TempDir() + "phx_c1.bin", p2 = testing::TempDir() + "phx_c2.bin";
  std::ofstream(p1, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  std::ofstream(p2, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), 3073);
  auto d = io::read_cifar10_files({p1, p2});
  EXPECT_EQ(d.images.size(0), 4);
  EXPECT_EQ(d.labels.data<int64_t>()[3], 0);
  auto msg = error_of<ValueError>([&] { io::read_cifar10_files({p1, p1 + ".missing"}); });
  EXPECT_TRUE(contains(msg, p1 + ".missing")) << msg;
  std::remove(p1.c_str());
  std::remove(p2.c_str());
}

TEST(TransformBatch, NormalizesAndGathers) {
  Tensor imgs = Tensor::empty({2, 1, 2, 2}, DType::UInt8);
  for (int i = 0; i < 8; ++i) imgs.data<uint8_t>()[i] = static_cast<uint8_t>(i * 30);
  Tensor idx = Tensor::empty({3}, DType::Int64);
  idx.data<int64_t>()[0] = 1, idx.data<int64_t>()[1] = 0, idx.data<int64_t>()[2] = 1;
  data::BatchTransformSpec spec;
  spec.mean = {0.5};
  spec.std = {0.25};
  Tensor out = data::transform_batch(imgs, idx, spec);
  ASSERT_EQ(out.sizes(), (Shape{3, 1, 2, 2}));
  EXPECT_FLOAT_EQ(out.data<float>()[0], (120 / 255.0f - 0.5f) / 0.25f);
  EXPECT_FLOAT_EQ(out.data<float>()[4], -2.0f);
}

TEST(TransformBatch, CropWithPaddingAndFlipMatchesDraws) {
  Tensor imgs = Tensor::empty({4, 3, 5}, DType::UInt8);  // [N, H, W]
  for (int i = 0; i < 60; ++i) imgs.data<uint8_t>()[i] = static_cast<uint8_t>(i + 1);
  data::BatchTransformSpec spec;
  spec.crop_h = 3, spec.crop_w = 5;
  spec.pad_left = spec.pad_top = spec.pad_right = spec.pad_bottom = 2;
  spec.flip = true;
  auto g1 = std::make_shared<Generator>(5), g2 = std::make_shared<Generator>(5);
  Tensor out = data::transform_batch(imgs, Tensor(), spec, g1);
  for (int64_t n = 0; n < 4; ++n) {
    auto o = data::draw_crop(g2, 7, 9, 3, 5);
    bool flip = data::draw_flip(g2, 0.5);
    for (int64_t y = 0; y < 3; ++y)
      for (int64_t x = 0; x < 5; ++x) {
        int64_t sy = o.top + y - 2, sx = o.left + (flip ? 4 - x : x) - 2;
        float want = (sy >= 0 && sy < 3 && sx >= 0 && sx < 5)
                         ? imgs.data<uint8_t>()[n * 15 + sy * 5 + sx] / 255.0f
                         : 0.0f;
        EXPECT_EQ(out.data<float>()[(n * 3 + y) * 5 + x], want) << n << " " << y << " " << x;
      }
  }
}

TEST(TransformBatch, Errors) {
  data::BatchTransformSpec spec;
  EXPECT_THROW(data::transform_batch(Tensor::empty({2, 3, 3}, DType::Float32), Tensor(), spec),
               TypeError);
  Tensor idx = Tensor::empty({1}, DType::Int64);
  idx.data<int64_t>()[0] = 2;
  EXPECT_THROW(data::transform_batch(Tensor::empty({2, 3, 3}, DType::UInt8), idx, spec),
               IndexError);
  spec.crop_h = spec.crop_w = 4;
  EXPECT_THROW(data::transform_batch(Tensor::empty({2, 3, 3}, DType::UInt8), Tensor(), spec),
               ValueError);
  spec = {};
  spec.mean = {0.1, 0.2};
  spec.std = {1, 1};
  EXPECT_THROW(data::transform_batch(Tensor::empty({2, 3, 3, 3}, DType::UInt8), Tensor(), spec),
               ValueError);
}
