#include "dist/gloo_peer_address.h"

#include <gloo/transport/tcp/address.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstring>

namespace phalanx::dist {

namespace {

using gloo::transport::tcp::Address;

// The size of one serialized tcp::Address (its sockaddr_storage and sequence number).
size_t address_bytes() {
  static const size_t n = Address(sockaddr_storage{}).bytes().size();
  return n;
}

// Gloo prints the sequence number of a pair's address as "$seq": not part of where it listens.
std::string listening(const char* begin) {
  std::string s = Address(std::vector<char>(begin, begin + address_bytes())).str();
  return s.substr(0, s.find('$'));
}

bool read_length(const std::vector<char>& record, size_t at, size_t* out) {
  if (record.size() < sizeof(size_t) || at > record.size() - sizeof(size_t)) return false;
  std::memcpy(out, record.data() + at, sizeof(size_t));
  return true;
}

// The 2023 tcp::Rank layout, accepted only when every length fits and they add up exactly
// (an older record starts with a sockaddr, which as a length is far beyond the record).
bool rank_record_address(const std::vector<char>& record, int world_size, size_t* at) {
  size_t host_len = 0, addr_len = 0;
  if (!read_length(record, 0, &host_len) || host_len > record.size()) return false;
  size_t pos = sizeof(size_t) + host_len;
  if (!read_length(record, pos, &addr_len) || addr_len != address_bytes()) return false;
  pos += sizeof(size_t);
  size_t ids = static_cast<size_t>(world_size) * sizeof(ssize_t);
  if (pos + addr_len + ids != record.size()) return false;
  *at = pos;
  return true;
}

}  // namespace

std::string gloo_listening_address(const std::vector<char>& record, int world_size) {
  if (world_size < 2) return "";
  size_t at = 0;
  if (rank_record_address(record, world_size, &at)) return listening(record.data() + at);
  // The 2022 layout: one address per other rank, all naming the same listening socket.
  if (record.size() == static_cast<size_t>(world_size - 1) * address_bytes())
    return listening(record.data());
  return "";
}

}  // namespace phalanx::dist
