// The store's wire format, shared by its server and its client (see dist/tcp_store.h for the
// protocol). Internal to csrc/dist.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace phalanx::dist::wire {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kMagic = 0x31584850;            // "PHX1"
constexpr uint32_t kMaxFrame = 64u * 1024 * 1024;  // a reply, as the client reads it
// What the server reads of a request (see TCPStoreServer): the header's strings, then per
// operation the whole body. A set carries one value of up to kMaxStoreValueBytes.
constexpr uint32_t kMaxIdLength = 1024;           // a job id or token
constexpr uint32_t kMaxSmallFrame = 64u * 1024;   // hello, get, add, heartbeat, goodbye
constexpr uint32_t kMaxKeysFrame = 1024u * 1024;  // wait and check, which list keys
constexpr uint32_t kMaxValueBytes = 16u << 20;    // TCPStore::kMaxValueBytes
constexpr uint32_t kMaxSetFrame = kMaxSmallFrame + kMaxValueBytes;
constexpr uint32_t kHeaderFixed = 4 + 1 + 4 + 4;  // magic, opcode, the two string lengths
constexpr int64_t kMaxWaitMs = 24LL * 3600 * 1000;
constexpr uint32_t kMaxRank = 1u << 20;  // far beyond any rack
constexpr size_t kMaxHostLength = 1024;  // a host description, not a payload

enum Op : uint8_t {
  kHello = 1,
  kSet = 2,
  kGet = 3,
  kWait = 4,
  kAdd = 5,
  kCheck = 6,
  kHeartbeat = 7,
  kGoodbye = 8,
};
enum Status : uint8_t { kOk = 0, kTimedOut = 1, kRejected = 2, kBadRequest = 3 };

struct ParseError {};

struct Writer {
  std::vector<char> buf;
  void raw(const void* p, size_t n) {
    if (n == 0) return;
    size_t at = buf.size();
    buf.resize(at + n);
    std::memcpy(buf.data() + at, p, n);
  }
  void u8(uint8_t v) { raw(&v, 1); }
  void u32(uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<unsigned char>((v >> (8 * i)) & 0xff);
    raw(b, 4);
  }
  void u64(uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>((v >> (8 * i)) & 0xff);
    raw(b, 8);
  }
  void bytes(const char* p, size_t n) {
    u32(static_cast<uint32_t>(n));
    raw(p, n);
  }
  void str(const std::string& s) { bytes(s.data(), s.size()); }
};

// Reads fields from a received body; any read past the end throws ParseError.
struct Reader {
  const std::vector<char>& buf;
  size_t pos = 0;
  void need(size_t n) const {
    if (n > buf.size() - pos) throw ParseError{};
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(buf[pos++]);
  }
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<uint8_t>(buf[pos++])) << (8 * i);
    return v;
  }
  uint64_t u64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(static_cast<uint8_t>(buf[pos++])) << (8 * i);
    return v;
  }
  std::vector<char> bytes() {
    uint32_t n = u32();
    need(n);
    std::vector<char> v(buf.begin() + pos, buf.begin() + pos + n);
    pos += n;
    return v;
  }
  std::string str() {
    auto v = bytes();
    return std::string(v.begin(), v.end());
  }
  bool done() const { return pos == buf.size(); }
};

// Writes all n bytes; false if the peer is gone.
bool write_all(int fd, const char* p, size_t n);

enum class ReadResult { kOk, kClosed, kTimedOut, kOversized };

// Reads exactly n bytes; a deadline of time_point::max() waits forever.
ReadResult read_all(int fd, char* p, size_t n, Clock::time_point deadline);
bool send_frame(int fd, const std::vector<char>& body);
// Reads one frame of at most kMaxFrame bytes (kOversized, reading nothing more, beyond that).
ReadResult read_frame(int fd, std::vector<char>& body, Clock::time_point deadline);

std::string join_keys(const std::vector<std::string>& keys);  // "'a', 'b'"
std::string ms_str(Millis t);                                 // "1.5 s"
std::string seconds_str(Clock::duration d);                   // "10.1 s": one decimal

}  // namespace phalanx::dist::wire
