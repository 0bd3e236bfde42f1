#include "io/checkpoint_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace phalanx::io {

namespace {

std::string directory_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Without this a power cut after rename() can lose the new directory entry. Best effort: some
// filesystems (Android's FUSE storage among them) refuse fsync on a directory.
void fsync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

CheckpointWriter::CheckpointWriter(std::string path, uint64_t chunk_bytes)
    : path_(std::move(path)), chunk_bytes_(chunk_bytes) {
  PHX_CHECK(chunk_bytes_ >= 1 && chunk_bytes_ <= kMaxChunkBytes, ValueError,
            "checkpoint chunk size must be in [1, ", kMaxChunkBytes, "] bytes, got ", chunk_bytes_);
  temp_path_ = path_ + ".tmp." + std::to_string(::getpid());
  file_ = std::fopen(temp_path_.c_str(), "wb");
  if (!file_) fail_io("can't create");

  try {  // a throwing constructor runs no destructor: clean up here
    unsigned char preamble[kPreambleBytes];
    std::memcpy(preamble, kCheckpointMagic, sizeof kCheckpointMagic);
    put_le(preamble + sizeof kCheckpointMagic, kCheckpointVersion, 4);
    write_bytes(preamble, sizeof preamble);

    proto::Record record;
    record.mutable_header()->set_producer("phalanx");
    record.mutable_header()->set_chunk_bytes(chunk_bytes_);
    write_record(record);
  } catch (...) {
    std::fclose(file_);
    std::remove(temp_path_.c_str());
    throw;
  }
}

CheckpointWriter::~CheckpointWriter() {
  if (file_) std::fclose(file_);
  if (!committed_) std::remove(temp_path_.c_str());
}

uint64_t CheckpointWriter::add_tensor(const std::string& name, const Tensor& t) {
  PHX_CHECK(t.defined(), ValueError, "checkpoint '", path_, "': tensor '", name, "' is undefined");
  auto found = ids_.find(t.impl());
  if (found != ids_.end()) return found->second;

  const uint64_t id = tensors_.size();
  const Tensor plain = t.contiguous();  // blocked layouts turn plain here, strided ones copy
  const uint64_t nbytes = static_cast<uint64_t>(plain.numel()) * itemsize(plain.dtype());

  proto::Record record;
  proto::TensorHeader* header = record.mutable_tensor();
  header->set_id(id);
  header->set_name(name);
  header->set_dtype(to_proto(plain.dtype()));
  for (int64_t s : plain.sizes()) header->add_shape(s);
  header->set_nbytes(nbytes);
  header->set_requires_grad(t.requires_grad());
  write_record(record);

  const auto* bytes = nbytes ? static_cast<const char*>(plain.raw_data()) : nullptr;
  for (uint64_t offset = 0; offset < nbytes; offset += chunk_bytes_) {
    proto::Record chunk_record;
    proto::TensorChunk* chunk = chunk_record.mutable_chunk();
    chunk->set_tensor_id(id);
    chunk->set_offset(offset);
    chunk->set_data(bytes + offset, std::min(chunk_bytes_, nbytes - offset));
    write_record(chunk_record);
  }
  tensors_.push_back(t);
  ids_.emplace(t.impl(), id);
  return id;
}

void CheckpointWriter::commit(const proto::Value& tree) {
  PHX_CHECK(file_ && !committed_, Error, "checkpoint '", path_, "': commit() called twice");
  proto::Record record;
  *record.mutable_tree() = tree;
  write_record(record);

  proto::Record footer_record;
  proto::CheckpointFooter* footer = footer_record.mutable_footer();
  footer->set_crc32(crc_);
  footer->set_record_count(records_);
  footer->set_tensor_count(tensors_.size());
  write_record(footer_record);

  if (std::fflush(file_) != 0) fail_io("can't write");
  if (::fsync(::fileno(file_)) != 0) fail_io("can't sync");
  std::FILE* f = file_;
  file_ = nullptr;
  if (std::fclose(f) != 0) fail_io("can't close");
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    throw IOError(err, "can't move checkpoint '" + temp_path_ + "' over '" + path_ +
                           "': " + std::strerror(err));
  }
  committed_ = true;
  fsync_directory(directory_of(path_));
}

void CheckpointWriter::write_record(const proto::Record& record) {
  const size_t size = record.ByteSizeLong();
  PHX_CHECK(size <= kMaxRecordBytes, ValueError, "checkpoint '", path_, "': a ",
            record.has_tree() ? "tree of non-tensor values" : "record", " of ", size,
            " bytes exceeds protobuf's 2 GiB message limit; store large arrays as tensors");
  buffer_.resize(kLengthBytes);
  put_le(reinterpret_cast<unsigned char*>(buffer_.data()), size, kLengthBytes);
  PHX_CHECK(record.AppendToString(&buffer_), Error, "checkpoint '", path_,
            "': protobuf could not serialize a record");
  write_bytes(buffer_.data(), buffer_.size());
  ++records_;
}

void CheckpointWriter::write_bytes(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, file_) != n) fail_io("can't write");
  crc_ = crc32_update(crc_, data, n);
}

void CheckpointWriter::fail_io(const char* what) const {
  int err = errno;
  throw IOError(err, std::string(what) + " checkpoint '" + temp_path_ + "': " + std::strerror(err));
}

}  // namespace phalanx::io
