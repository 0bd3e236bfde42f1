#include "io/dataset_readers.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "io/file_path.h"

namespace phalanx::io {

namespace {

uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string hex8(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string list_str(const Shape& s) {  // Python's list repr, as the Python reader printed it
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

constexpr uint8_t kIdxTypes[] = {0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E};
constexpr uint32_t kImagesMagic = 2051, kLabelsMagic = 2049;

}  // namespace

size_t idx_itemsize(uint8_t type_code) {
  switch (type_code) {
    case 0x08:
    case 0x09:
      return 1;
    case 0x0B:
      return 2;
    case 0x0C:
    case 0x0D:
      return 4;
    case 0x0E:
      return 8;
    default:
      return 0;
  }
}

const char* idx_type_name(uint8_t type_code) {
  switch (type_code) {
    case 0x08:
      return "uint8";
    case 0x09:
      return "int8";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown";
  }
}

IdxHeader parse_idx_header(const uint8_t* data, size_t size, const std::string& path,
                           int64_t expected_magic) {
  PHX_CHECK(size >= 4, ValueError, path, ": truncated IDX header: expected at least 4 bytes, got ",
            size);
  IdxHeader h;
  h.magic = load_be32(data);
  if (expected_magic >= 0 && h.magic != static_cast<uint64_t>(expected_magic)) {
    throw ValueError(detail::cat(path, ": bad IDX magic number: expected ", expected_magic, " (",
                                 hex8(static_cast<uint32_t>(expected_magic)), "), found ", h.magic,
                                 " (", hex8(h.magic), ")"));
  }
  h.type_code = data[2];
  h.itemsize = idx_itemsize(h.type_code);
  if (data[0] != 0 || data[1] != 0 || h.itemsize == 0) {
    std::string codes;
    for (uint8_t c : kIdxTypes) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", c);
      codes += (codes.empty() ? "" : ", ") + std::string(buf);
    }
    throw ValueError(detail::cat(path, ": not an IDX file: bad magic number ", h.magic, " (",
                                 hex8(h.magic), "); expected 0x0000TTNN with type TT one of ",
                                 codes, " (e.g. ", kImagesMagic, " for images, ", kLabelsMagic,
                                 " for labels)"));
  }
  const size_t ndim = data[3];
  h.data_offset = 4 + 4 * ndim;
  PHX_CHECK(size >= h.data_offset, ValueError, path, ": truncated IDX header: ", ndim,
            " dimensions need ", h.data_offset, " bytes, file has ", size);
  // The payload size, saturating: a damaged header can claim more than 2^64 bytes.
  uint64_t expected = h.itemsize;
  bool overflow = false;
  for (size_t i = 0; i < ndim; ++i) {
    const uint64_t d = load_be32(data + 4 + 4 * i);
    h.shape.push_back(static_cast<int64_t>(d));
    if (d != 0 && expected > std::numeric_limits<uint64_t>::max() / d) overflow = true;
    expected = overflow ? std::numeric_limits<uint64_t>::max() : expected * d;
  }
  const uint64_t actual = size - h.data_offset;
  if (overflow || actual != expected) {
    const char* what = actual < expected ? "truncated IDX data" : "trailing bytes after IDX data";
    throw ValueError(detail::cat(
        path, ": ", what, ": shape ", list_str(h.shape), " of ", idx_type_name(h.type_code),
        " needs ", overflow ? "more than " : "", expected, " data bytes, found ", actual));
  }
  h.data_bytes = static_cast<size_t>(expected);
  return h;
}

void decode_idx(const IdxHeader& header, const uint8_t* data, void* out) {
  const uint8_t* src = data + header.data_offset;
  auto* dst = static_cast<uint8_t*>(out);
  const size_t k = header.itemsize;
  if (k == 1) {
    std::memcpy(dst, src, header.data_bytes);
    return;
  }
  // IDX is big-endian; reverse each element's bytes on little-endian hosts.
  const uint16_t probe = 1;
  const bool little = *reinterpret_cast<const uint8_t*>(&probe) == 1;
  if (!little) {
    std::memcpy(dst, src, header.data_bytes);
    return;
  }
  for (size_t i = 0; i < header.data_bytes; i += k)
    for (size_t b = 0; b < k; ++b) dst[i + b] = src[i + k - 1 - b];
}

Tensor read_idx_uint8(const uint8_t* data, size_t size, const std::string& path,
                      int64_t expected_magic) {
  IdxHeader h = parse_idx_header(data, size, path, expected_magic);
  PHX_CHECK(h.type_code == 0x08, TypeError, path, ": expected IDX data of uint8, found ",
            idx_type_name(h.type_code));
  Tensor t = Tensor::empty(h.shape, DType::UInt8);
  decode_idx(h, data, t.raw_data());
  return t;
}

namespace {

void check_cifar_size(uint64_t size, const std::string& path) {
  // An empty batch file is a failed download or copy, not a dataset without images.
  PHX_CHECK(size > 0, ValueError, path, ": empty CIFAR-10 file (0 bytes): expected ",
            kCifarRecordBytes, "-byte records");
  PHX_CHECK(size % kCifarRecordBytes == 0, ValueError, path, ": truncated CIFAR-10 file: ", size,
            " bytes is not a whole number of ", kCifarRecordBytes, "-byte records (",
            size / kCifarRecordBytes, " records and ", size % kCifarRecordBytes,
            " bytes left over)");
}

// Splits `n` records at `src` into the output tensors starting at record `first`.
// `rec0` is the index of the first record within its file, for the error message.
void unpack_cifar(const uint8_t* src, int64_t n, int64_t first, CifarData& out,
                  const std::string& path, int64_t rec0) {
  constexpr int64_t pixels = kCifarRecordBytes - 1;
  uint8_t* images = out.images.data<uint8_t>() + first * pixels;
  int64_t* labels = out.labels.data<int64_t>() + first;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* rec = src + i * kCifarRecordBytes;
    PHX_CHECK(rec[0] < kCifarClasses, ValueError, path, ": not a CIFAR-10 file: record ", rec0 + i,
              " has label ", int{rec[0]}, ", expected 0-", kCifarClasses - 1);
    labels[i] = rec[0];
    std::memcpy(images + i * pixels, rec + 1, pixels);
  }
}

CifarData allocate_cifar(int64_t n) {
  return {Tensor::empty({n, kCifarChannels, kCifarSide, kCifarSide}, DType::UInt8),
          Tensor::empty({n}, DType::Int64)};
}

}  // namespace

CifarData parse_cifar10(const uint8_t* data, size_t size, const std::string& path) {
  check_cifar_size(size, path);
  const auto n = static_cast<int64_t>(size / kCifarRecordBytes);
  CifarData out = allocate_cifar(n);
  unpack_cifar(data, n, 0, out, path, 0);
  return out;
}

CifarData read_cifar10_files(const std::vector<std::string>& paths) {
  std::vector<int64_t> counts;
  int64_t total = 0;
  for (const auto& p : paths) {
    std::ifstream f(os_path(p, "CIFAR-10 file"), std::ios::binary | std::ios::ate);
    PHX_CHECK(f.good(), ValueError, p, ": cannot open CIFAR-10 file");
    const auto size = static_cast<uint64_t>(f.tellg());
    check_cifar_size(size, p);
    counts.push_back(static_cast<int64_t>(size / kCifarRecordBytes));
    total += counts.back();
  }
  CifarData out = allocate_cifar(total);
  // One file at a time through a bounded buffer: a phone has little memory to spare.
  constexpr int64_t kChunk = 1024;
  std::vector<uint8_t> buf(static_cast<size_t>(kChunk * kCifarRecordBytes));
  int64_t first = 0;
  for (size_t k = 0; k < paths.size(); ++k) {
    std::ifstream f(os_path(paths[k], "CIFAR-10 file"), std::ios::binary);
    for (int64_t done = 0; done < counts[k];) {
      const int64_t n = std::min(kChunk, counts[k] - done);
      f.read(reinterpret_cast<char*>(buf.data()),
             static_cast<std::streamsize>(n * kCifarRecordBytes));
      PHX_CHECK(f.gcount() == n * kCifarRecordBytes, ValueError, paths[k],
                ": read failed (the file changed while being read?)");
      unpack_cifar(buf.data(), n, first + done, out, paths[k], done);
      done += n;
    }
    first += counts[k];
  }
  return out;
}

}  // namespace phalanx::io
