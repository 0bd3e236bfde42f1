#include "io/checkpoint_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace phalanx::io {

namespace {

uint64_t checked_chunk_bytes(uint64_t chunk_bytes) {
  PHX_CHECK(chunk_bytes >= 1 && chunk_bytes <= kMaxChunkBytes, ValueError,
            "checkpoint chunk size must be in [1, ", kMaxChunkBytes, "] bytes, got ", chunk_bytes);
  return chunk_bytes;
}

}  // namespace

CheckpointWriter::CheckpointWriter(std::string path, uint64_t chunk_bytes, AtomicFile::Temp temp)
    : chunk_bytes_(checked_chunk_bytes(chunk_bytes)), file_(std::move(path), "checkpoint", temp) {
  // A throwing constructor runs no destructor, but file_ is a member: it discards itself.
  unsigned char preamble[kPreambleBytes];
  std::memcpy(preamble, kCheckpointMagic, sizeof kCheckpointMagic);
  put_le(preamble + sizeof kCheckpointMagic, kCheckpointVersion, 4);
  write_bytes(preamble, sizeof preamble);

  proto::Record record;
  record.mutable_header()->set_producer("phalanx");
  record.mutable_header()->set_chunk_bytes(chunk_bytes_);
  write_record(record);
}

uint64_t CheckpointWriter::add_tensor(const std::string& name, const Tensor& t) {
  PHX_CHECK(t.defined(), ValueError, "checkpoint '", path(), "': tensor '", name, "' is undefined");
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
  PHX_CHECK(file_.stream(), Error, "checkpoint '", path(), "': commit() called twice");
  proto::Record record;
  *record.mutable_tree() = tree;
  write_record(record);

  proto::Record footer_record;
  proto::CheckpointFooter* footer = footer_record.mutable_footer();
  footer->set_crc32(crc_);
  footer->set_record_count(records_);
  footer->set_tensor_count(tensors_.size());
  write_record(footer_record);
  file_.commit();
}

void CheckpointWriter::write_record(const proto::Record& record) {
  const size_t size = record.ByteSizeLong();
  PHX_CHECK(size <= kMaxRecordBytes, ValueError, "checkpoint '", path(), "': a ",
            record.has_tree() ? "tree of non-tensor values" : "record", " of ", size,
            " bytes exceeds protobuf's 2 GiB message limit; store large arrays as tensors");
  buffer_.resize(kLengthBytes);
  put_le(reinterpret_cast<unsigned char*>(buffer_.data()), size, kLengthBytes);
  PHX_CHECK(record.AppendToString(&buffer_), Error, "checkpoint '", path(),
            "': protobuf could not serialize a record");
  write_bytes(buffer_.data(), buffer_.size());
  ++records_;
}

void CheckpointWriter::write_bytes(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, file_.stream()) != n) file_.fail_io("can't write");
  crc_ = crc32_update(crc_, data, n);
}

}  // namespace phalanx::io
