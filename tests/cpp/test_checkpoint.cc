// Checkpoint files: writer/reader round trip, chunking, atomic replacement, corruption detection.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/factory.h"
#include "io/checkpoint_reader.h"
#include "io/checkpoint_writer.h"

using namespace phalanx;
namespace fs = std::filesystem;

namespace {

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("phx_ckpt_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "model.phx").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string read_bytes() const {
    std::ifstream f(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  void write_bytes(const std::string& bytes) const {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
  }
  // A file with one float tensor (chunked in 3 pieces) and a tree {"w": tensor, "step": 7}.
  void write_sample(uint64_t chunk_bytes = 8) const {
    io::CheckpointWriter w(path_, chunk_bytes);
    proto::Value tree;
    auto* entry = tree.mutable_dict_value()->add_entries();
    entry->set_str_key("w");
    entry->mutable_value()->set_tensor_id(w.add_tensor("w", arange(0, 5, 1, DType::Float32)));
    entry = tree.mutable_dict_value()->add_entries();
    entry->set_str_key("step");
    entry->mutable_value()->set_int_value(7);
    w.commit(tree);
  }
  std::string load_error() const {
    try {
      io::read_checkpoint(path_);
    } catch (const ValueError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(CheckpointTest, RoundTripsEveryDtypeAndShape) {
  const DType dtypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Int64,
                          DType::Int32,   DType::UInt8,   DType::Bool};
  const Shape shapes[] = {{}, {0}, {3}, {2, 0, 4}, {2, 3, 5}};
  std::vector<Tensor> saved;
  {
    io::CheckpointWriter w(path_, 16);  // small chunks: most tensors span several records
    proto::Value tree;
    for (DType dt : dtypes) {
      for (const Shape& s : shapes) {
        Tensor t = Tensor::empty(s, dt);
        auto* bytes = static_cast<unsigned char*>(t.numel() ? t.raw_data() : nullptr);
        for (size_t i = 0; i < t.numel() * itemsize(dt); ++i)
          bytes[i] = dt == DType::Bool ? (i % 3 == 0) : static_cast<unsigned char>(i * 37 + 11);
        const uint64_t id = w.add_tensor(std::string(dtype_name(dt)) + shape_str(s), t);
        EXPECT_EQ(id, saved.size());
        saved.push_back(t);
        tree.mutable_list_value()->add_items()->set_tensor_id(id);
      }
    }
    w.commit(tree);
  }
  io::LoadedCheckpoint ckpt = io::read_checkpoint(path_);
  ASSERT_EQ(ckpt.tensors.size(), saved.size());
  ASSERT_EQ(ckpt.tree.list_value().items_size(), static_cast<int>(saved.size()));
  for (size_t i = 0; i < saved.size(); ++i) {
    const Tensor& a = saved[i];
    const Tensor& b = ckpt.tensors[i];
    EXPECT_EQ(a.dtype(), b.dtype()) << i;
    EXPECT_EQ(a.sizes(), b.sizes()) << i;
    const size_t n = a.numel() * itemsize(a.dtype());
    if (n) {
      EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), n), 0) << ckpt.names[i];
    }
  }
}

TEST_F(CheckpointTest, StridedTensorsAreStoredContiguousAndSameHandleOnce) {
  Tensor t = arange(0, 6, 1, DType::Float32).view({2, 3});
  Tensor tt = t.transpose(0, 1);
  {
    io::CheckpointWriter w(path_);
    EXPECT_EQ(w.add_tensor("tt", tt), 0u);
    EXPECT_EQ(w.add_tensor("again", tt), 0u);  // the same handle: stored once
    EXPECT_EQ(w.add_tensor("t", t), 1u);       // a view of other storage: its own copy
    proto::Value tree;
    tree.set_tensor_id(0);
    w.commit(tree);
  }
  io::LoadedCheckpoint ckpt = io::read_checkpoint(path_);
  ASSERT_EQ(ckpt.tensors.size(), 2u);
  EXPECT_EQ(ckpt.tensors[0].sizes(), (Shape{3, 2}));
  const float expect[] = {0, 3, 1, 4, 2, 5};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(ckpt.tensors[0].data<float>()[i], expect[i]);
}

TEST_F(CheckpointTest, ChecksumIsZlibCrc32) {
  EXPECT_EQ(io::crc32_update(0, "123456789", 9), 0xCBF43926u);  // the standard check value
  uint32_t split = io::crc32_update(io::crc32_update(0, "1234", 4), "56789", 5);
  EXPECT_EQ(split, 0xCBF43926u);
}

TEST_F(CheckpointTest, UncommittedWriterLeavesOldFileAndNoTemp) {
  for (auto mode : {io::AtomicFile::Temp::kAnonymous, io::AtomicFile::Temp::kNamed}) {
    write_sample();
    const std::string before = read_bytes();
    std::string temp;
    {
      io::CheckpointWriter w(path_, io::kDefaultChunkBytes, mode);
      temp = w.temp_path();
      w.add_tensor("big", Tensor::empty({1000}));
      // An unnamed temporary (O_TMPFILE) has no directory entry until commit().
      EXPECT_EQ(w.anonymous_temp(), temp.empty());
      EXPECT_EQ(w.anonymous_temp(), mode == io::AtomicFile::Temp::kAnonymous);
      if (!temp.empty()) {
        EXPECT_TRUE(fs::exists(temp));
      }
    }  // destroyed without commit(), as when an exception unwinds through a save
    if (!temp.empty()) {
      EXPECT_FALSE(fs::exists(temp));
    }
    EXPECT_EQ(read_bytes(), before);
    EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
  }
}

TEST_F(CheckpointTest, PathWithNulByteIsRefusedNotTruncated) {
  write_sample();
  try {
    io::read_checkpoint(path_ + std::string("\0other", 6));
    FAIL() << "loaded the file named by the path's prefix";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("embedded null byte"), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointTest, TruncationAtEveryOffsetIsDetected) {
  write_sample();
  const std::string full = read_bytes();
  for (size_t n = 0; n < full.size(); ++n) {
    write_bytes(full.substr(0, n));
    std::string err = load_error();
    EXPECT_NE(err.find(path_), std::string::npos) << "offset " << n << ": " << err;
    EXPECT_TRUE(err.find("truncated") != std::string::npos ||
                err.find("empty") != std::string::npos || err.find("corrupt") != std::string::npos)
        << "offset " << n << ": " << err;
  }
}

TEST_F(CheckpointTest, FlippedBitAnywhereIsDetected) {
  write_sample();
  const std::string full = read_bytes();
  for (size_t i = 0; i < full.size(); ++i) {
    std::string bad = full;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    write_bytes(bad);
    EXPECT_NE(load_error(), "") << "flipping byte " << i << " went unnoticed";
  }
}

TEST_F(CheckpointTest, ForeignFilesAreNamed) {
  write_bytes(std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
  EXPECT_NE(load_error().find("PNG"), std::string::npos);
  write_bytes(std::string("\x80\x04\x95\x10\0\0\0", 7));
  EXPECT_NE(load_error().find("pickle"), std::string::npos);
  write_bytes("PK\x03\x04 rest of a zip");
  EXPECT_NE(load_error().find("zip"), std::string::npos);
  write_bytes("");
  EXPECT_NE(load_error().find("empty"), std::string::npos);
}

TEST_F(CheckpointTest, NewerVersionIsRefused) {
  write_sample();
  std::string bytes = read_bytes();
  bytes[8] = 2;
  write_bytes(bytes);
  EXPECT_NE(load_error().find("version 2"), std::string::npos);
}

TEST_F(CheckpointTest, MissingFileIsAnIOErrorWithErrno) {
  try {
    io::read_checkpoint(path_ + ".nope");
    FAIL() << "no error";
  } catch (const IOError& e) {
    EXPECT_EQ(e.errno_value, ENOENT);
    EXPECT_NE(std::string(e.what()).find("model.phx.nope"), std::string::npos);
  }
}

}  // namespace
