#include "io/checkpoint_reader.h"

#include <google/protobuf/io/coded_stream.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "io/file_path.h"

namespace phalanx::io {

namespace {

// Names the format of a foreign file from its first bytes, so the error says what it is.
std::string describe_foreign(const unsigned char* p, size_t n) {
  auto starts = [&](const char* sig, size_t len) {
    return n >= len && std::memcmp(p, sig, len) == 0;
  };
  if (starts("PK\x03\x04", 4))
    return "a zip archive (torch.save writes these; phalanx can't read pickles)";
  if (n >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5)
    return "a Python pickle (phalanx never unpickles)";
  if (starts("\x89PNG", 4)) return "a PNG image";
  if (starts("\x93NUMPY", 6)) return "a numpy .npy file";
  std::string hex = "a file starting with bytes";
  for (size_t i = 0; i < n && i < 8; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, " %02x", p[i]);
    hex += b;
  }
  return hex;
}

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

using FilePtr = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

class Reader {
 public:
  explicit Reader(const std::string& path)
      : path_(path), file_(std::fopen(os_path(path, "checkpoint"), "rb"), &std::fclose) {
    if (!file_) throw_io("can't open");
    struct stat st;
    if (::fstat(::fileno(file_.get()), &st) != 0) throw_io("can't stat");
    if (S_ISDIR(st.st_mode)) throw IOError(EISDIR, "checkpoint '" + path_ + "' is a directory");
    size_ = static_cast<uint64_t>(st.st_size);
  }

  LoadedCheckpoint read() {
    read_preamble();
    bool has_tree = false;
    for (;;) {
      record_start_ = offset_;
      if (offset_ == size_)
        fail("is truncated: it ends after ", records_, " records (", size_,
             " bytes) without its footer");
      proto::Record r = next_record();
      switch (r.kind_case()) {
        case proto::Record::kHeader:
          if (records_ != 0) corrupt("a second header");
          out_.header = std::move(*r.mutable_header());
          break;
        case proto::Record::kTensor:
          expect(records_ > 0 && !has_tree, "a tensor header");
          finish_tensor();
          start_tensor(r.tensor());
          break;
        case proto::Record::kChunk:
          expect(records_ > 0 && !has_tree, "a tensor chunk");
          add_chunk(r.chunk());
          break;
        case proto::Record::kTree:
          expect(records_ > 0 && !has_tree, "the object tree");
          finish_tensor();
          out_.tree = std::move(*r.mutable_tree());
          check_value(out_.tree);
          has_tree = true;
          break;
        case proto::Record::kFooter:
          expect(has_tree, "the footer");
          check_footer(r.footer());
          return std::move(out_);
        default:
          corrupt("a record of unknown kind ", static_cast<int>(r.kind_case()));
      }
      ++records_;
    }
  }

 private:
  template <typename... Args>
  [[noreturn]] void fail(const Args&... parts) const {
    throw ValueError(detail::cat("checkpoint '", path_, "' ", parts...));
  }
  template <typename... Args>
  [[noreturn]] void corrupt(const Args&... parts) const {
    fail("is corrupt: record ", records_, " at byte ", record_start_, ": ", parts...);
  }
  void expect(bool ok, const char* what) const {
    if (!ok) corrupt(what, " out of order");
  }
  [[noreturn]] void throw_io(const char* what) const {
    int err = errno;
    throw IOError(err, std::string(what) + " checkpoint '" + path_ + "': " + std::strerror(err));
  }

  void read_exact(void* dst, uint64_t n) {
    if (n && std::fread(dst, 1, n, file_.get()) != n) {
      if (std::ferror(file_.get())) throw_io("can't read");
      fail("changed size while being read");
    }
    crc_ = crc32_update(crc_, dst, n);
    offset_ += n;
  }

  void read_preamble() {
    unsigned char pre[kPreambleBytes];
    const size_t got = static_cast<size_t>(std::min<uint64_t>(size_, kPreambleBytes));
    read_exact(pre, got);
    const size_t magic_got = std::min(got, sizeof kCheckpointMagic);
    if (std::memcmp(pre, kCheckpointMagic, magic_got) != 0)
      fail("is not a phalanx checkpoint: it is ", describe_foreign(pre, got));
    if (got < kPreambleBytes)
      fail(got == 0 ? "is empty" : "is truncated", " (", size_, " bytes; a checkpoint starts with ",
           kPreambleBytes, " bytes of magic and version)");
    const uint64_t version = get_le(pre + sizeof kCheckpointMagic, 4);
    if (version == 0 || version > kCheckpointVersion)
      fail("has format version ", version, "; this phalanx reads version ", kCheckpointVersion,
           version > kCheckpointVersion ? " (written by a newer phalanx?)" : "");
  }

  proto::Record next_record() {
    unsigned char len_bytes[kLengthBytes];
    if (size_ - offset_ < kLengthBytes)
      fail("is truncated: record ", records_, " at byte ", offset_, " has an incomplete length (",
           size_ - offset_, " of ", kLengthBytes, " bytes)");
    // The footer's checksum covers everything before its length, so keep the value from here.
    crc_before_ = crc_;
    read_exact(len_bytes, kLengthBytes);
    const uint64_t len = get_le(len_bytes, kLengthBytes);
    if (len > kMaxRecordBytes) corrupt("declares ", len, " bytes, over the 2 GiB record limit");
    if (len > size_ - offset_)
      fail("is truncated or corrupt: record ", records_, " at byte ", record_start_, " declares ",
           len, " bytes but only ", size_ - offset_, " remain");
    buffer_.resize(len);
    read_exact(buffer_.data(), len);

    proto::Record r;
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(buffer_.data()),
                                              static_cast<int>(len));
    in.SetRecursionLimit(kTreeRecursionLimit);
    if (!r.MergeFromCodedStream(&in) || !in.ConsumedEntireMessage()) corrupt("does not parse");
    return r;
  }

  void start_tensor(const proto::TensorHeader& h) {
    if (h.id() != out_.tensors.size())
      corrupt("tensor id ", h.id(), ", expected ", out_.tensors.size());
    DType dtype;
    if (!from_proto(h.dtype(), &dtype))
      corrupt("tensor '", h.name(), "' has unknown dtype ", h.dtype());
    Shape shape(h.shape().begin(), h.shape().end());
    uint64_t numel = 1;
    for (int64_t s : shape) {
      if (s < 0) corrupt("tensor '", h.name(), "' has negative size in shape ", shape_str(shape));
      if (s != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / static_cast<uint64_t>(s))
        corrupt("tensor '", h.name(), "' has an impossible shape ", shape_str(shape));
      numel *= static_cast<uint64_t>(s);
    }
    if (h.nbytes() != numel * itemsize(dtype))
      corrupt("tensor '", h.name(), "' of shape ", shape_str(shape), " declares ", h.nbytes(),
              " bytes");
    // Bounds the allocation by the file's size before any checksum can vouch for the header.
    if (h.nbytes() > size_ - offset_)
      fail("is truncated: tensor '", h.name(), "' needs ", h.nbytes(), " bytes but only ",
           size_ - offset_, " remain");
    Tensor t = Tensor::empty(shape, dtype);
    if (h.requires_grad()) {
      if (!is_floating(dtype)) corrupt("integer tensor '", h.name(), "' marked requires_grad");
      t.autograd_meta().requires_grad = true;
    }
    out_.names.push_back(h.name());
    out_.tensors.push_back(t);
    filled_ = 0;
    open_ = true;
  }

  void add_chunk(const proto::TensorChunk& c) {
    if (!open_ || c.tensor_id() + 1 != out_.tensors.size())
      corrupt("chunk of tensor ", c.tensor_id(), " outside that tensor");
    const Tensor& t = out_.tensors.back();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * itemsize(t.dtype());
    if (c.offset() != filled_ || c.data().size() > nbytes - filled_ || c.data().empty())
      corrupt("chunk of tensor '", out_.names.back(), "' covers bytes [", c.offset(), ", ",
              c.offset() + c.data().size(), ") of ", nbytes, " after ", filled_, " were read");
    std::memcpy(static_cast<char*>(t.raw_data()) + filled_, c.data().data(), c.data().size());
    filled_ += c.data().size();
  }

  void finish_tensor() {
    if (!open_) return;
    const Tensor& t = out_.tensors.back();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * itemsize(t.dtype());
    if (filled_ != nbytes)
      corrupt("tensor '", out_.names.back(), "' has ", filled_, " of its ", nbytes, " bytes");
    if (t.dtype() == DType::Bool) {  // any other byte would be undefined behaviour as a C++ bool
      const auto* p = static_cast<const unsigned char*>(t.raw_data());
      for (uint64_t i = 0; i < nbytes; ++i)
        if (p[i] > 1) corrupt("bool tensor '", out_.names.back(), "' holds byte ", int{p[i]});
    }
    open_ = false;
  }

  void check_value(const proto::Value& v) const {
    switch (v.kind_case()) {
      case proto::Value::kTensorId:
        if (v.tensor_id() >= out_.tensors.size())
          corrupt("the tree refers to tensor ", v.tensor_id(), " of ", out_.tensors.size());
        break;
      case proto::Value::kListValue:
        for (const auto& item : v.list_value().items()) check_value(item);
        break;
      case proto::Value::kTupleValue:
        for (const auto& item : v.tuple_value().items()) check_value(item);
        break;
      case proto::Value::kDictValue:
        for (const auto& e : v.dict_value().entries()) {
          if (e.key_case() == proto::DictEntry::KEY_NOT_SET) corrupt("a dict entry without a key");
          check_value(e.value());
        }
        break;
      case proto::Value::kBigInt: {
        const std::string& s = v.big_int();
        const size_t digits = !s.empty() && s[0] == '-' ? 1 : 0;
        if (s.size() <= digits || s.find_first_not_of("0123456789", digits) != std::string::npos)
          corrupt("a big integer that isn't decimal digits");
        break;
      }
      case proto::Value::KIND_NOT_SET:
        corrupt("a value of no kind in the tree");
      default:
        break;
    }
  }

  void check_footer(const proto::CheckpointFooter& f) {
    if (f.record_count() != records_ || f.tensor_count() != out_.tensors.size())
      corrupt("the footer counts ", f.record_count(), " records and ", f.tensor_count(),
              " tensors, the file has ", records_, " and ", out_.tensors.size());
    if (f.crc32() != crc_before_)
      fail("is corrupt: checksum mismatch (footer says ", hex32(f.crc32()), ", the contents give ",
           hex32(crc_before_), ")");
    if (offset_ != size_)
      fail("is corrupt: ", size_ - offset_, " unexpected bytes after the footer");
  }

  std::string path_;
  FilePtr file_;
  uint64_t size_ = 0, offset_ = 0, record_start_ = 0, records_ = 0, filled_ = 0;
  uint32_t crc_ = 0, crc_before_ = 0;
  bool open_ = false;  // a tensor is waiting for chunks
  std::string buffer_;
  LoadedCheckpoint out_;
};

}  // namespace

LoadedCheckpoint read_checkpoint(const std::string& path) {
  return Reader(path).read();
}

}  // namespace phalanx::io
