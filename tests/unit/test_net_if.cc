// Interface selection and address parsing. Only loopback is ever bound, and
// no name is resolved that is not in /etc/hosts, so the test sends nothing
// over the network.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "base/check.h"
#include "base/net_if.h"

namespace gccl {
namespace {

bool errorMentions(const std::string& needle) {
  return std::string(threadLastError()).find(needle) != std::string::npos;
}

TEST(MatchInterfaceSpec, EmptySelectsEverything) {
  EXPECT_TRUE(matchInterfaceSpec("", "eth0"));
  EXPECT_TRUE(matchInterfaceSpec("", "lo"));
  EXPECT_TRUE(matchInterfaceSpec("  ", "docker0"));
}

TEST(MatchInterfaceSpec, Prefix) {
  EXPECT_TRUE(matchInterfaceSpec("eth", "eth0"));
  EXPECT_TRUE(matchInterfaceSpec("eth", "eth"));
  EXPECT_TRUE(matchInterfaceSpec("eth0", "eth0"));
  EXPECT_TRUE(matchInterfaceSpec("eth0", "eth01"));  // prefixes, as in NCCL
  EXPECT_FALSE(matchInterfaceSpec("eth", "lo"));
  EXPECT_FALSE(matchInterfaceSpec("eth", "et"));
  EXPECT_FALSE(matchInterfaceSpec("eth0", "eth1"));
}

TEST(MatchInterfaceSpec, PrefixList) {
  EXPECT_TRUE(matchInterfaceSpec("eth,ib", "eth2"));
  EXPECT_TRUE(matchInterfaceSpec("eth,ib", "ib0"));
  EXPECT_FALSE(matchInterfaceSpec("eth,ib", "lo"));
  EXPECT_TRUE(matchInterfaceSpec(" eth , ib ", "ib0"));  // spaces around items
  EXPECT_TRUE(matchInterfaceSpec("eth,,ib,", "ib0"));    // empty items
}

TEST(MatchInterfaceSpec, ExcludePrefixes) {
  EXPECT_FALSE(matchInterfaceSpec("^docker,lo", "docker0"));
  EXPECT_FALSE(matchInterfaceSpec("^docker,lo", "lo"));
  EXPECT_TRUE(matchInterfaceSpec("^docker,lo", "eth0"));
  EXPECT_TRUE(matchInterfaceSpec("^docker", "lo"));
}

TEST(MatchInterfaceSpec, ExactNames) {
  EXPECT_TRUE(matchInterfaceSpec("=eth0", "eth0"));
  EXPECT_FALSE(matchInterfaceSpec("=eth0", "eth01"));
  EXPECT_FALSE(matchInterfaceSpec("=eth0", "eth"));
  EXPECT_TRUE(matchInterfaceSpec("=eth0,eth1", "eth1"));
  EXPECT_FALSE(matchInterfaceSpec("=eth0,eth1", "eth2"));
}

TEST(MatchInterfaceSpec, ExcludeExactNames) {
  EXPECT_FALSE(matchInterfaceSpec("^=eth0", "eth0"));
  EXPECT_TRUE(matchInterfaceSpec("^=eth0", "eth01"));
  EXPECT_TRUE(matchInterfaceSpec("^=eth0", "lo"));
  EXPECT_FALSE(matchInterfaceSpec("^=eth0,lo", "lo"));
  EXPECT_TRUE(matchInterfaceSpec("^=eth0,lo", "lo0"));
}

TEST(MatchInterfaceSpec, MarkersWithoutNamesRestrictNothing) {
  EXPECT_TRUE(matchInterfaceSpec("^", "eth0"));
  EXPECT_TRUE(matchInterfaceSpec("=", "eth0"));
  EXPECT_TRUE(matchInterfaceSpec("^=,", "eth0"));
}

TEST(FindInterface, LoopbackByPrefix) {
  std::string name;
  SockAddr addr;
  ASSERT_EQ(gcclSuccess, findInterface("lo", "", &name, &addr)) << threadLastError();
  EXPECT_EQ(name, "lo");
  EXPECT_EQ(addr.family(), AF_INET);  // IPv4 first when the family is open
  EXPECT_EQ(addr.port(), 0);
  EXPECT_EQ(addr.hostString(), "127.0.0.1");
  EXPECT_EQ(addr.toString(), "127.0.0.1:0");
  EXPECT_EQ(addr.len, sizeof(sockaddr_in));
}

TEST(FindInterface, LoopbackExactIpv4) {
  std::string name;
  SockAddr addr;
  ASSERT_EQ(gcclSuccess, findInterface("=lo", "AF_INET", &name, &addr)) << threadLastError();
  EXPECT_EQ(name, "lo");
  EXPECT_EQ(addr.toString(), "127.0.0.1:0");
}

TEST(FindInterface, LoopbackIpv6) {
  std::string name;
  SockAddr addr;
  if (findInterface("=lo", "AF_INET6", &name, &addr) != gcclSuccess) {
    GTEST_SKIP() << "no IPv6 on loopback: " << threadLastError();
  }
  EXPECT_EQ(name, "lo");
  EXPECT_EQ(addr.family(), AF_INET6);
  EXPECT_EQ(addr.toString(), "[::1]:0");
}

TEST(FindInterface, Ipv6NeverLinkLocal) {
  std::string name;
  SockAddr addr;
  if (findInterface("^lo", "AF_INET6", &name, &addr) != gcclSuccess) {
    GTEST_SKIP() << "no routable IPv6 address off loopback: " << threadLastError();
  }
  EXPECT_NE(name, "lo");
  EXPECT_EQ(addr.hostString().rfind("fe80", 0), std::string::npos) << addr.toString();
}

TEST(FindInterface, ExcludingLoopbackPicksSomethingElse) {
  std::string name;
  SockAddr addr;
  if (findInterface("^lo", "AF_INET", &name, &addr) != gcclSuccess) {
    GTEST_SKIP() << "only loopback here: " << threadLastError();
  }
  EXPECT_NE(name, "lo");
  EXPECT_NE(addr.hostString(), "127.0.0.1");
}

TEST(FindInterface, DefaultPrefersNonLoopback) {
  std::string name;
  SockAddr addr;
  ASSERT_EQ(gcclSuccess, findInterface("", "", &name, &addr)) << threadLastError();
  EXPECT_EQ(name.rfind("docker", 0), std::string::npos);
  EXPECT_EQ(name.rfind("virbr", 0), std::string::npos);
  EXPECT_EQ(addr.port(), 0);

  // Loopback is only acceptable when nothing else that qualifies is up.
  ifaddrs* list = nullptr;
  ASSERT_EQ(0, getifaddrs(&list));
  bool otherUp = false;
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || !(ifa->ifa_flags & IFF_UP)) continue;
    if (ifa->ifa_flags & IFF_LOOPBACK) continue;
    std::string n = ifa->ifa_name;
    if (n.rfind("docker", 0) == 0 || n.rfind("virbr", 0) == 0) continue;
    if (ifa->ifa_addr->sa_family == AF_INET) otherUp = true;
  }
  freeifaddrs(list);
  if (otherUp) {
    EXPECT_NE(name, "lo");
    EXPECT_EQ(addr.family(), AF_INET);
  }
}

TEST(FindInterface, NoMatchNamesTheSpec) {
  std::string name = "untouched";
  SockAddr addr;
  clearThreadLastError();
  EXPECT_EQ(gcclInvalidArgument, findInterface("=nonexistent", "", &name, &addr));
  EXPECT_TRUE(errorMentions("=nonexistent")) << threadLastError();
  EXPECT_TRUE(errorMentions("lo")) << "should list what is up: " << threadLastError();
  EXPECT_EQ(name, "untouched");
  EXPECT_EQ(addr.family(), AF_UNSPEC);
}

TEST(FindInterface, BadFamilyIsNamed) {
  std::string name;
  SockAddr addr;
  EXPECT_EQ(gcclInvalidArgument, findInterface("lo", "AF_BOGUS", &name, &addr));
  EXPECT_TRUE(errorMentions("AF_BOGUS")) << threadLastError();
}

TEST(FindInterface, NullOutputs) {
  SockAddr addr;
  std::string name;
  EXPECT_EQ(gcclInvalidArgument, findInterface("lo", "", nullptr, &addr));
  EXPECT_EQ(gcclInvalidArgument, findInterface("lo", "", &name, nullptr));
}

TEST(FindInterface, AddressCanBeBound) {
  std::string name;
  SockAddr addr;
  ASSERT_EQ(gcclSuccess, findInterface("=lo", "AF_INET", &name, &addr)) << threadLastError();
  int fd = socket(addr.family(), SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, bind(fd, addr.sa(), addr.len)) << strerror(errno);
  SockAddr bound;
  bound.len = sizeof(bound.storage);
  ASSERT_EQ(0, getsockname(fd, bound.sa(), &bound.len));
  close(fd);
  EXPECT_GT(bound.port(), 0);
  EXPECT_EQ(bound.hostString(), "127.0.0.1");
}

TEST(SockAddr, DefaultAndSetPort) {
  SockAddr a;
  EXPECT_EQ(a.family(), AF_UNSPEC);
  EXPECT_EQ(a.port(), -1);
  EXPECT_EQ(a.toString(), "<unspec>");
  a.setPort(80);  // ignored without a family
  EXPECT_EQ(a.port(), -1);

  ASSERT_EQ(gcclSuccess, parseHostPort("10.0.0.1:1", &a)) << threadLastError();
  a.setPort(65535);
  EXPECT_EQ(a.toString(), "10.0.0.1:65535");
}

TEST(ParseHostPort, Ipv4) {
  SockAddr a;
  ASSERT_EQ(gcclSuccess, parseHostPort("1.2.3.4:5", &a)) << threadLastError();
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.len, sizeof(sockaddr_in));
  EXPECT_EQ(a.port(), 5);
  EXPECT_EQ(a.toString(), "1.2.3.4:5");
  const sockaddr_in* in = reinterpret_cast<const sockaddr_in*>(&a.storage);
  EXPECT_EQ(ntohl(in->sin_addr.s_addr), 0x01020304u);
}

TEST(ParseHostPort, Ipv6) {
  SockAddr a;
  ASSERT_EQ(gcclSuccess, parseHostPort("[::1]:5", &a)) << threadLastError();
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(a.len, sizeof(sockaddr_in6));
  EXPECT_EQ(a.port(), 5);
  EXPECT_EQ(a.toString(), "[::1]:5");
  ASSERT_EQ(gcclSuccess, parseHostPort("[fd00::2]:65535", &a)) << threadLastError();
  EXPECT_EQ(a.toString(), "[fd00::2]:65535");
}

TEST(ParseHostPort, Ipv6WithScope) {
  SockAddr a;
  ASSERT_EQ(gcclSuccess, parseHostPort("[fe80::1%lo]:7", &a)) << threadLastError();
  const sockaddr_in6* in6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
  EXPECT_EQ(in6->sin6_scope_id, if_nametoindex("lo"));
  EXPECT_EQ(a.toString(), "[fe80::1%lo]:7");
}

TEST(ParseHostPort, HostNameFromHostsFile) {
  SockAddr a;
  ASSERT_EQ(gcclSuccess, parseHostPort("localhost:1234", &a)) << threadLastError();
  EXPECT_EQ(a.port(), 1234);
  // IPv4 is preferred when a name has both.
  if (a.family() == AF_INET) {
    EXPECT_EQ(a.toString(), "127.0.0.1:1234");
  } else {
    EXPECT_EQ(a.toString(), "[::1]:1234");
  }
}

TEST(ParseHostPort, RoundTrip) {
  for (const char* text : {"1.2.3.4:5", "255.255.255.255:65535", "0.0.0.0:1", "[::1]:5",
                           "[2001:db8::1]:29500", "[::ffff:1.2.3.4]:80"}) {
    SockAddr a, b;
    ASSERT_EQ(gcclSuccess, parseHostPort(text, &a)) << text << ": " << threadLastError();
    EXPECT_EQ(a.toString(), text);
    ASSERT_EQ(gcclSuccess, parseHostPort(a.toString(), &b)) << threadLastError();
    EXPECT_EQ(a.len, b.len);
    EXPECT_EQ(0, memcmp(&a.storage, &b.storage, a.len)) << text;
  }
}

TEST(ParseHostPort, MalformedIsRejectedWithTheText) {
  struct Case {
    const char* text;
    const char* mention;  // what the message must name
  };
  const Case cases[] = {
      {"1.2.3.4", "1.2.3.4"},        // no port
      {"1.2.3.4:", "1.2.3.4:"},      // empty port
      {"1.2.3.4:0", "\"0\""},        // port 0
      {"1.2.3.4:65536", "65536"},    // port too large
      {"1.2.3.4:123456", "123456"},  // far too large
      {"1.2.3.4:-1", "-1"},          // sign
      {"1.2.3.4:+5", "+5"},          // sign
      {"1.2.3.4:5x", "5x"},          // trailing junk
      {"1.2.3.4: 5", "1.2.3.4: 5"},  // space
      {":5", ":5"},                  // no host
      {"::1:5", "brackets"},         // IPv6 without brackets
      {"[::1]", "[::1]"},            // no port
      {"[::1]5", "[::1]5"},          // no colon
      {"[::1:5", "[::1:5"},          // unclosed bracket
      {"[]:5", "[]:5"},              // empty brackets
      {"[1.2.3.4]:5", "1.2.3.4"},    // brackets around IPv4
      {"[::g]:5", "::g"},            // not hex
      {"1.2.3.400:5", "1.2.3.400"},  // octet out of range
      {"1.2.3:5", "1.2.3"},          // too few octets, not a host name either
      {"bad host!:5", "bad host!"},  // characters no host name has
      {"", "empty"},
  };
  for (const Case& c : cases) {
    clearThreadLastError();
    SockAddr a;
    EXPECT_EQ(gcclInvalidArgument, parseHostPort(c.text, &a)) << "\"" << c.text << "\"";
    EXPECT_TRUE(errorMentions(c.mention)) << "\"" << c.text << "\" gave: " << threadLastError();
    EXPECT_EQ(a.family(), AF_UNSPEC) << "output written on failure for \"" << c.text << "\"";
  }
}

TEST(ParseHostPort, NullOutput) {
  EXPECT_EQ(gcclInvalidArgument, parseHostPort("1.2.3.4:5", nullptr));
}

}  // namespace
}  // namespace gccl
