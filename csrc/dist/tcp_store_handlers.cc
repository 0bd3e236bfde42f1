// The store server's operations: one handler each (as Gloo's rendezvous/store.h has one
// method per operation), found through one table by opcode. A handler reads its fields from
// the request, answers in `out`, and returns false to drop a client that sent a malformed
// request.
#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "dist/tcp_store_connection.h"
#include "dist/tcp_store_server.h"
#include "dist/tcp_store_wire.h"

namespace phalanx::dist {

using namespace wire;

struct TCPStoreServer::Request {
  Connection& c;
  Reader& in;
  Writer& out;
  bool pending = false;  // a get or wait left a waiter: no reply now
};

const TCPStoreServer::Operation* TCPStoreServer::find_operation(uint8_t op) {
  static const Operation kOperations[] = {
      {kHello, kMaxSmallFrame, &TCPStoreServer::on_hello},
      {kSet, kMaxSetFrame, &TCPStoreServer::on_set},
      {kGet, kMaxSmallFrame, &TCPStoreServer::on_get},
      {kWait, kMaxKeysFrame, &TCPStoreServer::on_wait},
      {kAdd, kMaxSmallFrame, &TCPStoreServer::on_add},
      {kCheck, kMaxKeysFrame, &TCPStoreServer::on_check},
      {kHeartbeat, kMaxSmallFrame, &TCPStoreServer::on_heartbeat},
      {kGoodbye, kMaxSmallFrame, &TCPStoreServer::on_goodbye},
  };
  for (const Operation& o : kOperations)
    if (o.op == op) return &o;
  return nullptr;
}

bool TCPStoreServer::handle(Connection& c, const std::vector<char>& body) {
  // next_read checked the magic, the opcode, the job id and the token already.
  Reader in{body};
  in.u32();
  const Operation* operation = find_operation(in.u8());
  in.str();
  in.str();
  Writer out;
  Request request{c, in, out};
  bool ok = false;
  try {
    ok = (this->*operation->handle)(request);
  } catch (const ParseError&) {
    return false;
  }
  if (ok && !request.pending) queue_reply(c, out);
  return ok;
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
  data_[key] = std::move(value);
  keys_changed_ = true;
  r.out.u8(kOk);
  return true;
}

bool TCPStoreServer::on_get(Request& r) {
  return wait_for_keys(r, /*get=*/true);
}

bool TCPStoreServer::on_wait(Request& r) {
  return wait_for_keys(r, /*get=*/false);
}

// get: one key, answered with its value; wait: several keys, answered with OK. Both answer
// when the keys exist or their timeout passes (then kTimedOut naming the missing keys); until
// then the connection holds a waiter, and no thread blocks.
bool TCPStoreServer::wait_for_keys(Request& r, bool get) {
  uint32_t n = get ? 1 : r.in.u32();
  if (n == 0 || n > r.in.buf.size()) return false;  // each key takes at least 4 bytes
  auto waiter = std::make_unique<Connection::Waiter>();
  waiter->get = get;
  for (uint32_t i = 0; i < n; ++i) waiter->keys.push_back(r.in.str());
  int64_t ms = static_cast<int64_t>(std::min<uint64_t>(r.in.u64(), kMaxWaitMs));
  if (!r.in.done()) return false;
  waiter->deadline = Clock::now() + Millis(ms);
  r.c.waiter = std::move(waiter);
  r.pending = true;
  keys_changed_ = true;  // answered at once if the keys are there
  return true;
}

void TCPStoreServer::answer_waiters(Clock::time_point now) {
  bool changed = keys_changed_;
  keys_changed_ = false;
  for (auto& [fd, c] : connections_) {
    Connection::Waiter* w = c->waiter.get();
    if (!w || (!changed && now < w->deadline)) continue;
    std::vector<std::string> missing;
    for (auto& k : w->keys)
      if (!data_.count(k)) missing.push_back(k);
    if (!missing.empty() && now < w->deadline) continue;
    Writer out;
    if (!missing.empty()) {
      out.u8(kTimedOut);
      out.str(join_keys(missing));
    } else {
      out.u8(kOk);
      if (w->get) {
        auto& v = data_[w->keys[0]];
        out.bytes(v.data(), v.size());
      }
    }
    c->waiter.reset();
    queue_reply(*c, out);  // sent when poll says the socket is writable
  }
}

bool TCPStoreServer::on_add(Request& r) {
  std::string key = r.in.str();
  int64_t delta = static_cast<int64_t>(r.in.u64());
  if (!r.in.done()) return false;
  int64_t value = 0;
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
  keys_changed_ = true;
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
  for (auto& k : keys) all = all && data_.count(k);
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
  Liveness& g = liveness_[group];
  g.timeout = Millis(std::max<int64_t>(ms, 1));
  Member& m = g.members[rank];
  m.host = host;
  m.last_seen = now;
  m.departed = false;
  m.closed = false;
  heartbeat_fds_[r.c.fd] = {group, rank};
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
  auto g = liveness_.find(group);
  if (g != liveness_.end()) {
    auto m = g->second.members.find(rank);
    if (m != g->second.members.end()) m->second.departed = true;
  }
  r.out.u8(kOk);
  return true;
}

}  // namespace phalanx::dist
