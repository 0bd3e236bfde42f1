// The store server's operations: one handler each (as Gloo's rendezvous/store.h has one
// method per operation), found through one table by opcode. A handler reads its fields from
// the request, answers in `out`, and returns false to drop a client that sent a malformed
// request.
#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "dist/tcp_store.h"
#include "dist/tcp_store_wire.h"

namespace phalanx::dist {

using namespace wire;

struct TCPStoreServer::Request {
  int fd;
  Reader& in;
  Writer& out;
};

bool TCPStoreServer::handle(int fd, const std::vector<char>& body) {
  struct Operation {
    Op op;
    bool (TCPStoreServer::*handle)(Request&);
  };
  static const Operation kOperations[] = {
      {kHello, &TCPStoreServer::on_hello},
      {kSet, &TCPStoreServer::on_set},
      {kGet, &TCPStoreServer::on_get},
      {kWait, &TCPStoreServer::on_wait},
      {kAdd, &TCPStoreServer::on_add},
      {kCheck, &TCPStoreServer::on_check},
      {kHeartbeat, &TCPStoreServer::on_heartbeat},
      {kGoodbye, &TCPStoreServer::on_goodbye},
  };
  Reader in{body};
  if (in.u32() != kMagic) return false;
  uint8_t op = in.u8();
  const Operation* operation = nullptr;
  for (const Operation& o : kOperations)
    if (o.op == op) operation = &o;
  if (!operation) return false;
  std::string job = in.str(), token = in.str();
  Writer out;
  if (job != job_id_ || token != token_) {
    out.u8(kRejected);
    out.str(job != job_id_ ? detail::cat("job id '", job, "' does not match the store's job id '",
                                         job_id_, "' (set PHALANX_JOB_ID to the same value)")
                           : std::string("the shared token does not match the store's token "
                                         "(set PHALANX_TOKEN to the same value on every rank)"));
    send_frame(fd, out.buf);
    return false;
  }
  Request request{fd, in, out};
  if (!(this->*operation->handle)(request)) return false;
  return send_frame(fd, out.buf);
}

bool TCPStoreServer::on_hello(Request& r) {
  if (!r.in.done()) return false;
  r.out.u8(kOk);
  return true;
}

bool TCPStoreServer::on_set(Request& r) {
  std::string key = r.in.str();
  std::vector<char> value = r.in.bytes();
  if (!r.in.done()) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    data_[key] = std::move(value);
  }
  changed_.notify_all();
  r.out.u8(kOk);
  return true;
}

bool TCPStoreServer::on_get(Request& r) {
  return wait_for_keys(r, /*get=*/true);
}

bool TCPStoreServer::on_wait(Request& r) {
  return wait_for_keys(r, /*get=*/false);
}

// get: one key, answered with its value; wait: several keys, answered with OK. Both block
// until the keys exist or their timeout passes (then kTimedOut naming the missing keys).
bool TCPStoreServer::wait_for_keys(Request& r, bool get) {
  uint32_t n = get ? 1 : r.in.u32();
  if (n == 0 || n > r.in.buf.size()) return false;  // each key takes at least 4 bytes
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < n; ++i) keys.push_back(r.in.str());
  int64_t ms = static_cast<int64_t>(std::min<uint64_t>(r.in.u64(), kMaxWaitMs));
  if (!r.in.done()) return false;
  std::unique_lock<std::mutex> lock(mu_);
  auto all_there = [&] {
    for (auto& k : keys)
      if (!data_.count(k)) return false;
    return true;
  };
  changed_.wait_for(lock, Millis(ms), [&] { return stopping_ || all_there(); });
  if (stopping_) return false;
  if (!all_there()) {
    std::vector<std::string> missing;
    for (auto& k : keys)
      if (!data_.count(k)) missing.push_back(k);
    r.out.u8(kTimedOut);
    r.out.str(join_keys(missing));
  } else {
    r.out.u8(kOk);
    if (get) {
      auto& v = data_[keys[0]];
      r.out.bytes(v.data(), v.size());
    }
  }
  return true;
}

bool TCPStoreServer::on_add(Request& r) {
  std::string key = r.in.str();
  int64_t delta = static_cast<int64_t>(r.in.u64());
  if (!r.in.done()) return false;
  int64_t value = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = data_.find(key);
    if (it != data_.end()) {
      std::string s(it->second.begin(), it->second.end());
      char* end = nullptr;
      value = std::strtoll(s.c_str(), &end, 10);
      if (s.empty() || *end != '\0') {
        r.out.u8(kBadRequest);
        r.out.str(detail::cat("add: key '", key, "' does not hold an integer"));
        return true;
      }
    }
    value += delta;
    std::string s = std::to_string(value);
    data_[key] = std::vector<char>(s.begin(), s.end());
  }
  changed_.notify_all();
  r.out.u8(kOk);
  r.out.u64(static_cast<uint64_t>(value));
  return true;
}

bool TCPStoreServer::on_check(Request& r) {
  uint32_t n = r.in.u32();
  if (n > r.in.buf.size()) return false;
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < n; ++i) keys.push_back(r.in.str());
  if (!r.in.done()) return false;
  bool all = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& k : keys) all = all && data_.count(k);
  }
  r.out.u8(kOk);
  r.out.u8(all ? 1 : 0);
  return true;
}

bool TCPStoreServer::on_heartbeat(Request& r) {
  std::string group = r.in.str();
  uint32_t rank = r.in.u32();
  std::string host = r.in.str();
  int64_t ms = static_cast<int64_t>(std::min<uint64_t>(r.in.u64(), kMaxWaitMs));
  if (!r.in.done() || rank >= kMaxRank || host.size() > kMaxHostLength) return false;
  auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  Liveness& g = liveness_[group];
  g.timeout = Millis(std::max<int64_t>(ms, 1));
  Member& m = g.members[rank];
  m.host = host;
  m.last_seen = now;
  m.departed = false;
  m.closed = false;
  heartbeat_fds_[r.fd] = {group, rank};
  scan(g, now);
  r.out.u8(kOk);
  r.out.u8(g.lost ? 1 : 0);
  if (g.lost) {
    r.out.u32(g.lost_rank);
    r.out.str(g.lost_host);
    r.out.str(g.lost_reason);
  }
  return true;
}

bool TCPStoreServer::on_goodbye(Request& r) {
  std::string group = r.in.str();
  uint32_t rank = r.in.u32();
  if (!r.in.done() || rank >= kMaxRank) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto g = liveness_.find(group);
  if (g != liveness_.end()) {
    auto m = g->second.members.find(rank);
    if (m != g->second.members.end()) m->second.departed = true;
  }
  r.out.u8(kOk);
  return true;
}

}  // namespace phalanx::dist
