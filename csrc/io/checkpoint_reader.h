// Reads and validates a checkpoint file written by CheckpointWriter.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint_format.h"

namespace phalanx::io {

struct LoadedCheckpoint {
  proto::CheckpointHeader header;
  std::vector<std::string> names;  // by tensor id
  std::vector<Tensor> tensors;     // by tensor id; requires_grad restored
  proto::Value tree;               // every tensor id in it is checked to be in range
};

// Checks the magic, the version, every record's length, order and contents, and the
// checksum. A foreign, truncated or corrupted file raises ValueError naming the path and what
// is wrong; a missing or unreadable one raises IOError (FileNotFoundError in Python).
LoadedCheckpoint read_checkpoint(const std::string& path);

}  // namespace phalanx::io
