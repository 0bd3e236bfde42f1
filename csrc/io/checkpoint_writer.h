// Writes a checkpoint file atomically, streaming tensors so memory stays at one chunk.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "io/atomic_file.h"
#include "io/checkpoint_format.h"

namespace phalanx::io {

// Everything goes to a temporary file (see AtomicFile: unnamed where possible, else unique per
// writer); only commit() fsyncs it and renames it over `path`, then fsyncs the directory so the
// rename survives a power cut. A writer destroyed before commit() (an exception, a value that
// fails to convert) discards its temporary file, and one killed mid-write leaves none that
// outlives the next save of `path`: `path` is always either the previous checkpoint or one
// complete new one, also when threads or processes save it concurrently.
class CheckpointWriter {
 public:
  explicit CheckpointWriter(std::string path, uint64_t chunk_bytes = kDefaultChunkBytes,
                            AtomicFile::Temp temp = AtomicFile::Temp::kAnonymous);
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Appends a tensor (blocked or strided ones are made contiguous first) and returns the id
  // the tree refers to it by. The same tensor handle added twice is stored once; distinct
  // tensors sharing storage (views) are stored as separate copies.
  uint64_t add_tensor(const std::string& name, const Tensor& t);
  // Writes the tree and the footer, then makes the file durable and visible under `path`.
  void commit(const proto::Value& tree);

  const std::string& path() const { return file_.path(); }
  const std::string& temp_path() const { return file_.temp_path(); }  // empty if unnamed
  bool anonymous_temp() const { return file_.anonymous(); }

 private:
  void write_record(const proto::Record& record);
  void write_bytes(const void* data, size_t n);  // to the file and into the checksum

  uint64_t chunk_bytes_;  // before file_: checked before any file is created
  AtomicFile file_;
  uint32_t crc_ = 0;
  uint64_t records_ = 0;
  std::vector<Tensor> tensors_;  // keeps handles alive so the dedup keys stay unique
  std::unordered_map<const TensorImpl*, uint64_t> ids_;
  std::string buffer_;  // reused for every serialized record
};

}  // namespace phalanx::io
