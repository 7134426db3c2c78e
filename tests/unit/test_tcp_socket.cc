// Socket helpers of the TCP transport (transports/tcp/socket.h): which
// addresses are this host's, and the congestion control a data socket gets
// (GCCL_TCP_CONGESTION).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "transports/tcp/socket.h"

namespace gccl::tcp {
namespace {

SockAddr ipv4(const char* text) {
  SockAddr a;
  auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
  in->sin_family = AF_INET;
  inet_pton(AF_INET, text, &in->sin_addr);
  a.len = sizeof(sockaddr_in);
  return a;
}

TEST(AddressIsLocal, LoopbackAndThisHostsInterfacesAreLocalOthersAreNot) {
  EXPECT_TRUE(addressIsLocal(ipv4("127.0.0.1")));
  EXPECT_TRUE(addressIsLocal(ipv4("127.4.5.6")));
  SockAddr six;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&six.storage);
  in6->sin6_family = AF_INET6;
  in6->sin6_addr = in6addr_loopback;
  six.len = sizeof(sockaddr_in6);
  EXPECT_TRUE(addressIsLocal(six));
  // Every IPv4 address of this host's interfaces is local.
  ifaddrs* list = nullptr;
  ASSERT_EQ(getifaddrs(&list), 0);
  int seen = 0;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    SockAddr a;
    memcpy(&a.storage, i->ifa_addr, sizeof(sockaddr_in));
    a.len = sizeof(sockaddr_in);
    EXPECT_TRUE(addressIsLocal(a)) << a.toString() << " on " << i->ifa_name;
    ++seen;
  }
  freeifaddrs(list);
  EXPECT_GT(seen, 0);
  // The benchmarking range (RFC 2544) is nobody's address here.
  EXPECT_FALSE(addressIsLocal(ipv4("198.19.254.253")));
  SockAddr none;
  EXPECT_FALSE(addressIsLocal(none));
}

// A connected pair of TCP sockets over loopback.
struct LoopbackPair {
  int listener = -1, client = -1, server = -1;
  LoopbackPair() {
    SockAddr bound;
    if (listenOn(ipv4("127.0.0.1"), &listener, &bound) != gcclSuccess) return;
    client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(client, bound.sa(), bound.len) != 0) return;
    for (int i = 0; i < 1000 && server < 0; ++i) {
      server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (server < 0) usleep(1000);
    }
  }
  ~LoopbackPair() {
    for (int fd : {listener, client, server})
      if (fd >= 0) close(fd);
  }
};

std::string congestionOf(int fd) {
  char name[32] = {};
  socklen_t len = sizeof(name) - 1;
  if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len) != 0) return "";
  return std::string(name, strnlen(name, len));
}

bool available(const std::string& algo) {
  std::ifstream f("/proc/sys/net/ipv4/tcp_available_congestion_control");
  std::string word;
  while (f >> word)
    if (word == algo) return true;
  return false;
}

TEST(TuneDataSocket, AutoReplacesPacingBbrByCubicBetweenTwoAddressesOfThisHost) {
  LoopbackPair p;
  ASSERT_GE(p.server, 0) << "no loopback connection";
  EXPECT_TRUE(peerIsLocal(p.client));
  EXPECT_TRUE(peerIsLocal(p.server));
  std::string system = congestionOf(p.client);
  tuneDataSocket(p.client, 0, "auto");
  if (system == "bbr")
    EXPECT_EQ(congestionOf(p.client), "cubic");
  else
    EXPECT_EQ(congestionOf(p.client), system) << "auto changed a congestion control that does "
                                                 "not pace";
  int nodelay = 0;
  socklen_t len = sizeof(nodelay);
  ASSERT_EQ(getsockopt(p.client, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  EXPECT_EQ(nodelay, 1);
}

TEST(TuneDataSocket, SystemKeepsTheSystemsChoiceAndANameIsApplied) {
  LoopbackPair p;
  ASSERT_GE(p.server, 0) << "no loopback connection";
  std::string system = congestionOf(p.server);
  tuneDataSocket(p.server, 0, "system");
  EXPECT_EQ(congestionOf(p.server), system);
  if (!available("reno")) GTEST_SKIP() << "this kernel offers no reno congestion control";
  tuneDataSocket(p.client, 0, "reno");
  EXPECT_EQ(congestionOf(p.client), "reno");
  // A name the kernel does not know is refused and the socket keeps its own.
  std::string before = congestionOf(p.server);
  tuneDataSocket(p.server, 0, "no-such-algorithm");
  EXPECT_EQ(congestionOf(p.server), before);
}

}  // namespace
}  // namespace gccl::tcp
