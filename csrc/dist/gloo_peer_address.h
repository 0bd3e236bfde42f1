// A peer's listening address, read from the record Gloo's connectFullMesh publishes in the
// rendezvous store under the peer's rank. Why: Gloo's errors name a failed pair only by an
// address ("Connection closed by peer [127.0.0.1]:40123"), and phalanx maps that back to a rank.
//
// Gloo has no API to read the record, and its layout changed between the two Gloos phalanx
// builds with (the lengths are host-endian size_t, the sequence numbers ssize_t):
//  - Debian bookworm's libgloo (5b14351, 2022): world_size - 1 tcp::Address records
//    concatenated, each the peer's listening address with the sequence number of one pair.
//  - the bundled Gloo (5354032, 2023; PHALANX_DEPS=bundled): one tcp::Rank record -- hostname
//    length and text, address length and the listening address, then one pair sequence
//    number per rank.
#pragma once
#include <string>
#include <vector>

namespace phalanx::dist {

// "[ip]:port" exactly as Gloo's tcp::Address::str() prints it in its error messages (without
// the "$sequence" suffix), or "" when the record fits neither layout for this world size.
std::string gloo_listening_address(const std::vector<char>& record, int world_size);

}  // namespace phalanx::dist
