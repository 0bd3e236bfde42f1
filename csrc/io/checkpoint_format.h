// The on-disk framing shared by the checkpoint writer and reader; the schema of each record is
// checkpoint.proto, whose header comment draws the whole file.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "io/checkpoint.pb.h"

// Tensor bytes go to disk as they sit in memory; every phalanx target (x86-64, aarch64) is
// little-endian. A big-endian port would need a byte swap in the writer and reader.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "phalanx checkpoints store little-endian bytes; add a byte swap for this host"
#endif

namespace phalanx::io {

// PNG's trick: a high-bit byte, CR LF, ^Z and LF detect 7-bit and text-mode mangling.
inline constexpr unsigned char kCheckpointMagic[8] = {0x89, 'P', 'H', 'X', '\r', '\n', 0x1a, '\n'};
inline constexpr uint32_t kCheckpointVersion = 1;
inline constexpr size_t kPreambleBytes = 12;  // magic + little-endian uint32 version
inline constexpr size_t kLengthBytes = 8;     // each record's little-endian uint64 length
// Protobuf refuses messages of 2 GiB or more, so no record may reach it; tensors are chunked.
inline constexpr uint64_t kMaxRecordBytes = (uint64_t{1} << 31) - 1;
inline constexpr uint64_t kDefaultChunkBytes = uint64_t{32} << 20;
inline constexpr uint64_t kMaxChunkBytes = uint64_t{1} << 30;  // leaves room for the framing
// The deepest object tree phalanx.save accepts, and the parser's matching recursion limit
// (each level is up to three nested messages: Value, ValueDict, DictEntry).
inline constexpr int kMaxTreeDepth = 250;
inline constexpr int kTreeRecursionLimit = 3 * kMaxTreeDepth + 16;

// CRC-32 as zlib computes it (so `zlib.crc32` can check a file); start from 0.
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);

void put_le(unsigned char* out, uint64_t value, size_t nbytes);
uint64_t get_le(const unsigned char* in, size_t nbytes);

proto::DType to_proto(DType t);
bool from_proto(proto::DType t, DType* out);  // false for values this build doesn't know

}  // namespace phalanx::io
