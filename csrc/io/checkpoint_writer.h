// Writes a checkpoint file atomically, streaming tensors so memory stays at one chunk.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint_format.h"

namespace phalanx::io {

// Everything goes to `<path>.tmp.<pid>` in the target's directory; only commit() fsyncs it and
// renames it over `path`, then fsyncs the directory so the rename survives a power cut. A writer
// destroyed before commit() (an exception, a value that fails to convert) deletes its temporary
// file, and a process killed mid-write leaves at most that temporary file behind: `path` is
// always either the previous checkpoint or the complete new one.
class CheckpointWriter {
 public:
  explicit CheckpointWriter(std::string path, uint64_t chunk_bytes = kDefaultChunkBytes);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Appends a tensor (blocked or strided ones are made contiguous first) and returns the id
  // the tree refers to it by. The same tensor handle added twice is stored once; distinct
  // tensors sharing storage (views) are stored as separate copies.
  uint64_t add_tensor(const std::string& name, const Tensor& t);
  // Writes the tree and the footer, then makes the file durable and visible under `path`.
  void commit(const proto::Value& tree);

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void write_record(const proto::Record& record);
  void write_bytes(const void* data, size_t n);  // to the file and into the checksum
  [[noreturn]] void fail_io(const char* what) const;

  std::string path_, temp_path_;
  uint64_t chunk_bytes_;
  std::FILE* file_ = nullptr;
  uint32_t crc_ = 0;
  uint64_t records_ = 0;
  std::vector<Tensor> tensors_;  // keeps handles alive so the dedup keys stay unique
  std::unordered_map<const TensorImpl*, uint64_t> ids_;
  std::string buffer_;  // reused for every serialized record
  bool committed_ = false;
};

}  // namespace phalanx::io
