// Parsers for the raw dataset formats: IDX (MNIST, Fashion-MNIST) and the CIFAR-10 binary
// format. They work on bytes already in memory (decompression, if any, happens before) and
// validate everything a damaged file can get wrong; every error names the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace phalanx::io {

// IDX: a big-endian header (two zero bytes, a type code, the rank, one uint32 per dimension)
// followed by the row-major array in big-endian order.
struct IdxHeader {
  uint32_t magic = 0;  // the first four bytes as a big-endian uint32, e.g. 2051 for images
  uint8_t type_code = 0;
  Shape shape;
  size_t itemsize = 0;
  size_t data_offset = 0;  // bytes of header
  size_t data_bytes = 0;   // bytes of payload
};

// Element size of an IDX type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
// 0x0D float32, 0x0E float64); 0 for an unknown code.
size_t idx_itemsize(uint8_t type_code);
const char* idx_type_name(uint8_t type_code);

// Validates the header and the payload size of an IDX buffer. expected_magic < 0 accepts any
// valid type and rank. ValueError names `path` for: short header, wrong or invalid magic,
// truncated data, trailing bytes.
IdxHeader parse_idx_header(const uint8_t* data, size_t size, const std::string& path,
                           int64_t expected_magic = -1);

// Copies the payload of a validated buffer to `out` (header.data_bytes bytes) in native byte order.
void decode_idx(const IdxHeader& header, const uint8_t* data, void* out);

// The whole IDX buffer as a uint8 tensor of its shape; TypeError unless the type is uint8.
Tensor read_idx_uint8(const uint8_t* data, size_t size, const std::string& path,
                      int64_t expected_magic = -1);

// CIFAR-10 binary: records of 1 label byte and 3072 pixel bytes, the pixels as three 32x32
// planes (red, green, blue), rows top to bottom. Images stay in that planar order: [N, 3, 32, 32]
// is both the file's layout and the NCHW layout the network wants.
constexpr int64_t kCifarSide = 32;
constexpr int64_t kCifarChannels = 3;
constexpr int64_t kCifarRecordBytes = 1 + kCifarChannels * kCifarSide * kCifarSide;  // 3073
constexpr int64_t kCifarClasses = 10;

struct CifarData {
  Tensor images;  // uint8 [N, 3, 32, 32]
  Tensor labels;  // int64 [N]
};

// Parses records from memory. ValueError naming `path` if the size is not a whole number of
// records (truncated) or a label is not in 0-9 (not a CIFAR-10 file).
CifarData parse_cifar10(const uint8_t* data, size_t size, const std::string& path);
// Reads and concatenates the files in order, straight into the result (no intermediate copy).
// ValueError naming the file for a missing or unreadable file and everything parse_cifar10 checks.
CifarData read_cifar10_files(const std::vector<std::string>& paths);

}  // namespace phalanx::io
