// Heartbeat bookkeeping of the store server: who was seen when, and the first rank found lost
// (see TCPStoreServer::Liveness and dist/watchdog.h).
#include "dist/tcp_store_server.h"
#include "dist/tcp_store_wire.h"

namespace phalanx::dist {

using namespace wire;

namespace {
constexpr auto kScanEvery = Millis(100);  // staleness is checked at most this often per group
}  // namespace

void TCPStoreServer::note_lost(Liveness& g, uint32_t rank, const std::string& reason) {
  if (g.lost) return;
  g.lost = true;
  g.lost_rank = rank;
  g.lost_host = g.members[rank].host;
  g.lost_reason = reason;
}

void TCPStoreServer::scan(Liveness& g, Clock::time_point now) {
  if (g.lost || now - g.last_scan < kScanEvery) return;
  g.last_scan = now;
  const std::pair<const uint32_t, Member>* stalest = nullptr;
  for (auto& entry : g.members) {
    const Member& m = entry.second;
    if (m.departed || m.closed) continue;
    if (!stalest || m.last_seen < stalest->second.last_seen) stalest = &entry;
  }
  if (stalest && now - stalest->second.last_seen > g.timeout)
    note_lost(g, stalest->first,
              "no heartbeat for " + seconds_str(now - stalest->second.last_seen));
}

void TCPStoreServer::heartbeat_connection_closed(int fd) {
  auto it = heartbeat_fds_.find(fd);
  if (it == heartbeat_fds_.end()) return;
  auto g = liveness_.find(it->second.first);
  if (g == liveness_.end()) return;
  Member& m = g->second.members[it->second.second];
  if (m.departed) return;
  m.closed = true;
  note_lost(g->second, it->second.second, "connection closed without goodbye");
}

}  // namespace phalanx::dist
