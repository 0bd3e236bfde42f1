#include "dist/gloo_errors.h"

namespace phalanx::dist {

bool mentions_timeout(const std::string& s) {
  // Text, not a type: Gloo throws the same IoException for a timeout and a broken pair.
  return s.find("imed out") != std::string::npos || s.find("imeout") != std::string::npos;
}

// The rank behind an address in a Gloo error message, or -1. Gloo names a pair by the peer's
// listening address when this side connected, by the peer's ephemeral port when the peer did:
// an exact "[ip]:port" match, else an IP only one peer has (ranks on different hosts), else
// the only peer there is.
int peer_in_message(const std::string& msg, const std::vector<std::pair<std::string, int>>& peers) {
  // Text, not a field: Gloo's exceptions carry no peer rank, only a message naming the pair.
  for (auto& [addr, r] : peers)
    if (msg.find(addr) != std::string::npos) return r;
  int found = -1, hits = 0;
  for (auto& [addr, r] : peers) {
    std::string ip = addr.substr(0, addr.rfind(':'));  // "[ip]"
    if (msg.find(ip + ":") != std::string::npos) {
      found = r;
      ++hits;
    }
  }
  if (hits == 1) return found;
  if (peers.size() == 1 && msg.find('[') != std::string::npos) return peers[0].second;
  return -1;
}

// "[ip]:port" (Gloo's form) or "host:port" -> the host part.
std::string host_of(const std::string& addr) {
  size_t close = addr.rfind(']');
  if (!addr.empty() && addr[0] == '[' && close != std::string::npos)
    return addr.substr(1, close - 1);
  return addr.substr(0, addr.rfind(':'));
}

}  // namespace phalanx::dist
