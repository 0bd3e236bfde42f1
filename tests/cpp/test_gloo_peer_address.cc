// Mapping Gloo's error messages back to ranks needs each peer's listening address, decoded
// from the record Gloo publishes at rendezvous. Both record layouts are built here byte for
// byte (Debian bookworm's Gloo and the bundled 2023 one), whichever Gloo this build links.
#include <arpa/inet.h>
#include <gloo/transport/tcp/address.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

#include "dist/gloo_errors.h"
#include "dist/gloo_peer_address.h"

using gloo::transport::tcp::Address;
using phalanx::dist::gloo_listening_address;
using phalanx::dist::host_of;
using phalanx::dist::peer_in_message;

namespace {

sockaddr_storage ipv4(const char* ip, uint16_t port) {
  sockaddr_storage ss{};
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  inet_pton(AF_INET, ip, &in->sin_addr);
  return ss;
}

void append(std::vector<char>& out, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  out.insert(out.end(), c, c + n);
}

// Debian bookworm's Gloo (2022): one address per other rank, each with a pair's sequence number.
std::vector<char> record_2022(const sockaddr_storage& ss, int world) {
  std::vector<char> out;
  for (int seq = 0; seq < world - 1; ++seq) {
    std::vector<char> a = Address(ss, 7 + seq).bytes();
    append(out, a.data(), a.size());
  }
  return out;
}

// Gloo 5354032 (2023), tcp::Rank::bytes(): hostname, address, one pair id per rank.
std::vector<char> record_2023(const std::string& host, const sockaddr_storage& ss, int world) {
  std::vector<char> out;
  size_t n = host.size();
  append(out, &n, sizeof n);
  append(out, host.data(), n);
  std::vector<char> a = Address(ss).bytes();
  n = a.size();
  append(out, &n, sizeof n);
  append(out, a.data(), a.size());
  for (ssize_t id = 0; id < world; ++id) append(out, &id, sizeof id);
  return out;
}

}  // namespace

TEST(GlooPeerAddress, DecodesBothRecordLayoutsAsGlooPrintsThem) {
  sockaddr_storage ss = ipv4("10.1.2.3", 40123);
  std::string expected = Address(ss).str();  // the form Gloo's error messages use
  ASSERT_EQ(expected.rfind("[10.1.2.3]:", 0), 0u) << expected;
  for (int world : {2, 3, 138}) {
    EXPECT_EQ(gloo_listening_address(record_2022(ss, world), world), expected) << world;
    EXPECT_EQ(gloo_listening_address(record_2023("phone-7", ss, world), world), expected) << world;
    EXPECT_EQ(gloo_listening_address(record_2023("", ss, world), world), expected) << world;
  }
}

TEST(GlooPeerAddress, ARecordOfNeitherLayoutGivesNothing) {
  sockaddr_storage ss = ipv4("127.0.0.1", 5000);
  std::vector<char> r = record_2023("host", ss, 3);
  EXPECT_EQ(gloo_listening_address(r, 4), "");  // pair ids for another world size
  r.pop_back();
  EXPECT_EQ(gloo_listening_address(r, 3), "");  // truncated
  EXPECT_EQ(gloo_listening_address(record_2022(ss, 3), 4), "");
  EXPECT_EQ(gloo_listening_address({}, 2), "");
  EXPECT_EQ(gloo_listening_address(std::vector<char>(5, '\xff'), 2), "");
  std::vector<char> huge_length(64, '\0');
  huge_length[7] = '\x7f';  // a hostname length far beyond the record
  EXPECT_EQ(gloo_listening_address(huge_length, 2), "");
  EXPECT_EQ(gloo_listening_address(record_2022(ss, 2), 1), "");  // no peers in a world of one
}

// The messages as both Gloos raise them: a source location, then the pair's peer address --
// the peer's listening address when this side connected, its ephemeral port when it did.
TEST(GlooPeerAddress, NamesTheRankBehindAGlooMessage) {
  std::vector<std::pair<std::string, int>> peers;
  for (int r : {1, 2, 3})
    peers.emplace_back(
        gloo_listening_address(
            record_2023("h", ipv4("127.0.0.1", static_cast<uint16_t>(40000 + r)), 4), 4),
        r);
  std::string listening2 = peers[1].first;
  EXPECT_EQ(peer_in_message(
                "[/work/.deps-cache/gloo-src-66d6fadb7b07cfcf/gloo/transport/tcp/pair.cc:534] "
                "Connection closed by peer " +
                    listening2,
                peers),
            2);
  EXPECT_EQ(peer_in_message("[gloo/transport/tcp/pair.cc:589] Read error " + listening2 +
                                ": Connection reset by peer",
                            peers),
            2);
  // Ranks on one host, reached through an ephemeral port: not enough to tell which.
  EXPECT_EQ(
      peer_in_message(
          "[gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:60056", peers),
      -1);
  // ...but with a single peer there is only one it can be.
  std::vector<std::pair<std::string, int>> one = {peers[0]};
  EXPECT_EQ(
      peer_in_message(
          "[gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:60056", one),
      1);
  EXPECT_EQ(host_of(peers[0].first), "127.0.0.1");
}
