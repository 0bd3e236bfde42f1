#include "io/checkpoint_format.h"

#include <array>

namespace phalanx::io {

namespace {

// Slicing-by-8 tables: eight bytes per step keeps the checksum cheap next to disk IO on phones.
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

CrcTables make_crc_tables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i)
    for (size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  return t;
}

}  // namespace

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
  static const CrcTables t = make_crc_tables();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo =
        c ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  for (; n > 0; --n, ++p) c = t[0][(c ^ *p) & 0xff] ^ (c >> 8);
  return ~c;
}

void put_le(unsigned char* out, uint64_t value, size_t nbytes) {
  for (size_t i = 0; i < nbytes; ++i) out[i] = static_cast<unsigned char>(value >> (8 * i));
}

uint64_t get_le(const unsigned char* in, size_t nbytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < nbytes; ++i) v |= uint64_t{in[i]} << (8 * i);
  return v;
}

proto::DType to_proto(DType t) {
  switch (t) {
    case DType::Float32:
      return proto::FLOAT32;
    case DType::Float16:
      return proto::FLOAT16;
    case DType::BFloat16:
      return proto::BFLOAT16;
    case DType::Int64:
      return proto::INT64;
    case DType::Int32:
      return proto::INT32;
    case DType::UInt8:
      return proto::UINT8;
    case DType::Bool:
      return proto::BOOL;
    case DType::Float64:
      return proto::FLOAT64;
  }
  return proto::DTYPE_UNSPECIFIED;
}

bool from_proto(proto::DType t, DType* out) {
  switch (t) {
    case proto::FLOAT32:
      *out = DType::Float32;
      return true;
    case proto::FLOAT16:
      *out = DType::Float16;
      return true;
    case proto::BFLOAT16:
      *out = DType::BFloat16;
      return true;
    case proto::INT64:
      *out = DType::Int64;
      return true;
    case proto::INT32:
      *out = DType::Int32;
      return true;
    case proto::UINT8:
      *out = DType::UInt8;
      return true;
    case proto::BOOL:
      *out = DType::Bool;
      return true;
    case proto::FLOAT64:
      *out = DType::Float64;
      return true;
    default:
      return false;
  }
}

}  // namespace phalanx::io
