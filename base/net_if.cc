#include "base/net_if.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/check.h"
#include "base/le.h"
#include "base/log.h"

namespace gccl {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

bool startsWith(const std::string& s, const char* prefix) {
  return s.compare(0, strlen(prefix), prefix) == 0;
}

bool isIpv6LinkLocal(const sockaddr* sa) {
  if (sa->sa_family != AF_INET6) return false;
  const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
  return a.s6_addr[0] == 0xfe && (a.s6_addr[1] & 0xc0) == 0x80;
}

bool copySockaddr(const sockaddr* sa, SockAddr* out) {
  socklen_t len;
  if (sa->sa_family == AF_INET) {
    len = sizeof(sockaddr_in);
  } else if (sa->sa_family == AF_INET6) {
    len = sizeof(sockaddr_in6);
  } else {
    return false;
  }
  *out = SockAddr{};
  memcpy(&out->storage, sa, len);
  out->len = len;
  return true;
}

// Everything that is up, for error messages that tell the user what they could have chosen.
std::string listUpInterfaces(const ifaddrs* list) {
  std::vector<std::string> names;
  for (const ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || !(ifa->ifa_flags & IFF_UP)) continue;
    int fam = ifa->ifa_addr->sa_family;
    if (fam != AF_INET && fam != AF_INET6) continue;
    bool seen = false;
    for (const auto& n : names)
      seen = seen || n == ifa->ifa_name;
    if (!seen) names.push_back(ifa->ifa_name);
  }
  std::string s;
  for (const auto& n : names)
    s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "none" : s;
}

// Host names as RFC 1123 allows them (plus '_', which some internal DNS zones
// use). Checking first gives a precise error and keeps garbage away from the resolver.
bool isPlausibleHostName(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool isDigitsAndDots(const std::string& s) {
  return s.find_first_not_of("0123456789.") == std::string::npos;
}

}  // namespace

int SockAddr::port() const {
  if (family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return -1;
}

void SockAddr::setPort(int port) {
  uint16_t p = htons(static_cast<uint16_t>(port));
  if (family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&storage)->sin_port = p;
  } else if (family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = p;
  }
}

std::string SockAddr::hostString() const {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
  if (family() == AF_INET) {
    const sockaddr_in* in = reinterpret_cast<const sockaddr_in*>(&storage);
    if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)) == nullptr) return "<bad AF_INET>";
    return buf;
  }
  if (family() == AF_INET6) {
    const sockaddr_in6* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf)) == nullptr) return "<bad AF_INET6>";
    std::string s = buf;
    // A link-local address means nothing without its interface.
    if (in6->sin6_scope_id != 0) {
      char ifname[IF_NAMESIZE] = {};
      if (if_indextoname(in6->sin6_scope_id, ifname) != nullptr) {
        s += std::string("%") + ifname;
      } else {
        s += "%" + std::to_string(in6->sin6_scope_id);
      }
    }
    return s;
  }
  if (family() == AF_UNSPEC) return "<unspec>";
  return "<family " + std::to_string(family()) + ">";
}

std::string SockAddr::toString() const {
  if (family() == AF_INET) return hostString() + ":" + std::to_string(port());
  if (family() == AF_INET6) return "[" + hostString() + "]:" + std::to_string(port());
  return hostString();
}

bool matchInterfaceSpec(const std::string& spec, const std::string& ifname) {
  std::string s = trim(spec);
  bool exclude = false, exact = false;
  size_t pos = 0;
  if (pos < s.size() && s[pos] == '^') {
    exclude = true;
    ++pos;
  }
  if (pos < s.size() && s[pos] == '=') {
    exact = true;
    ++pos;
  }
  bool anyItem = false, matched = false;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    std::string item = trim(s.substr(pos, comma - pos));
    pos = comma + 1;
    if (item.empty()) continue;
    anyItem = true;
    bool hit = exact ? ifname == item : startsWith(ifname, item.c_str());
    matched = matched || hit;
  }
  // A list with no names restricts nothing, whatever its prefix characters.
  if (!anyItem) return true;
  return exclude ? !matched : matched;
}

gcclResult_t findInterface(const std::string& spec, const std::string& family, std::string* ifname,
                           SockAddr* addr) {
  GCCL_REQUIRE(ifname != nullptr && addr != nullptr, gcclInvalidArgument,
               "findInterface: null output (ifname=%p, addr=%p)", static_cast<void*>(ifname),
               static_cast<void*>(addr));
  std::vector<int> families;
  if (family.empty()) {
    families = {AF_INET, AF_INET6};
  } else if (family == "AF_INET") {
    families = {AF_INET};
  } else if (family == "AF_INET6") {
    families = {AF_INET6};
  } else {
    return setError(gcclInvalidArgument,
                    "socket family \"%s\" (GCCL_SOCKET_FAMILY) is not AF_INET, AF_INET6 or empty",
                    family.c_str());
  }

  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    int err = errno;
    return setError(gcclSystemError,
                    "getifaddrs failed while looking for interface \"%s\": %s "
                    "(errno %d)",
                    spec.c_str(), strerror(err), err);
  }

  const bool useDefault = trim(spec).empty();
  // The default skips container and VM bridges, which rarely reach other hosts,
  // and falls back to loopback so that a single-host job still works.
  auto defaultPass = [](const ifaddrs* ifa, int pass) {
    bool loop = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
    if (pass == 1) return loop;
    std::string name = ifa->ifa_name;
    return !loop && !startsWith(name, "docker") && !startsWith(name, "virbr");
  };

  const ifaddrs* found = nullptr;
  const int passes = useDefault ? 2 : 1;
  for (int pass = 0; pass < passes && found == nullptr; ++pass) {
    for (int fam : families) {
      for (const ifaddrs* ifa = list; ifa != nullptr && found == nullptr; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == nullptr || ifa->ifa_addr->sa_family != fam) continue;
        if (!(ifa->ifa_flags & IFF_UP) || isIpv6LinkLocal(ifa->ifa_addr)) continue;
        bool selected =
            useDefault ? defaultPass(ifa, pass) : matchInterfaceSpec(spec, ifa->ifa_name);
        if (selected) found = ifa;
      }
      if (found != nullptr) break;
    }
  }

  if (found == nullptr) {
    std::string available = listUpInterfaces(list);
    freeifaddrs(list);
    if (useDefault) {
      return setError(gcclSystemError,
                      "no network interface is up with a %s address (interfaces up: %s)",
                      family.empty() ? "IPv4 or IPv6" : family.c_str(), available.c_str());
    }
    return setError(gcclInvalidArgument,
                    "no interface that is up with a %s address matches GCCL_SOCKET_IFNAME=\"%s\" "
                    "(interfaces up: %s)",
                    family.empty() ? "IPv4 or IPv6" : family.c_str(), spec.c_str(),
                    available.c_str());
  }

  SockAddr a;
  copySockaddr(found->ifa_addr, &a);
  a.setPort(0);
  std::string name = found->ifa_name;
  freeifaddrs(list);
  GCCL_INFO(kLogNet, "interface %s, address %s (GCCL_SOCKET_IFNAME=\"%s\", family %s)",
            name.c_str(), a.hostString().c_str(), spec.c_str(),
            family.empty() ? "any" : family.c_str());
  *ifname = name;
  *addr = a;
  return gcclSuccess;
}

gcclResult_t parseHostPort(const std::string& text, SockAddr* out) {
  GCCL_REQUIRE(out != nullptr, gcclInvalidArgument, "parseHostPort(\"%s\"): out is null",
               text.c_str());
  const char* t = text.c_str();
  GCCL_REQUIRE(!text.empty(), gcclInvalidArgument,
               "address is empty; expected host:port, a.b.c.d:port or [ipv6]:port");

  std::string host, portText;
  bool bracketed = text[0] == '[';
  if (bracketed) {
    size_t close = text.find(']');
    GCCL_REQUIRE(close != std::string::npos, gcclInvalidArgument,
                 "address \"%s\" opens '[' without a closing ']'", t);
    host = text.substr(1, close - 1);
    GCCL_REQUIRE(close + 1 < text.size() && text[close + 1] == ':', gcclInvalidArgument,
                 "address \"%s\" has no port; expected [ipv6]:port", t);
    portText = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    GCCL_REQUIRE(colon != std::string::npos, gcclInvalidArgument,
                 "address \"%s\" has no port; expected host:port", t);
    host = text.substr(0, colon);
    portText = text.substr(colon + 1);
    GCCL_REQUIRE(host.find(':') == std::string::npos, gcclInvalidArgument,
                 "address \"%s\": an IPv6 address needs brackets, as in [::1]:port", t);
  }
  GCCL_REQUIRE(!host.empty(), gcclInvalidArgument, "address \"%s\" has no host before the port", t);

  // Digits only: strtol would accept signs, spaces and hex-like prefixes.
  bool digits = !portText.empty() && portText.size() <= 5 &&
                portText.find_first_not_of("0123456789") == std::string::npos;
  long port = digits ? strtol(portText.c_str(), nullptr, 10) : -1;
  GCCL_REQUIRE(port >= 1 && port <= 65535, gcclInvalidArgument,
               "port \"%s\" in address \"%s\" is not a number in 1..65535", portText.c_str(), t);

  SockAddr result;
  if (bracketed) {
    // getaddrinfo rather than inet_pton: it also understands a "%eth0" scope.
    addrinfo hints{};
    hints.ai_family = AF_INET6;
    hints.ai_flags = AI_NUMERICHOST;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    bool ok = rc == 0 && res != nullptr && copySockaddr(res->ai_addr, &result);
    if (res != nullptr) freeaddrinfo(res);
    GCCL_REQUIRE(ok, gcclInvalidArgument, "\"%s\" in address \"%s\" is not an IPv6 address",
                 host.c_str(), t);
  } else {
    sockaddr_in in{};
    if (inet_pton(AF_INET, host.c_str(), &in.sin_addr) == 1) {
      in.sin_family = AF_INET;
      copySockaddr(reinterpret_cast<const sockaddr*>(&in), &result);
    } else {
      // No top-level domain is all digits, so this is a mistyped IPv4 address;
      // saying so beats a resolver's "unknown host".
      GCCL_REQUIRE(!isDigitsAndDots(host), gcclInvalidArgument,
                   "\"%s\" in address \"%s\" is not a valid IPv4 address", host.c_str(), t);
      GCCL_REQUIRE(isPlausibleHostName(host), gcclInvalidArgument,
                   "\"%s\" in address \"%s\" is not a valid host name", host.c_str(), t);
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* res = nullptr;
      int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
      if (rc != 0) {
        if (rc == EAI_SYSTEM) {
          int err = errno;
          return setError(gcclSystemError, "cannot resolve host \"%s\" in address \"%s\": %s",
                          host.c_str(), t, strerror(err));
        }
        // EAI_AGAIN is the resolver failing, not the name being wrong.
        return setError(rc == EAI_AGAIN ? gcclSystemError : gcclInvalidArgument,
                        "cannot resolve host \"%s\" in address \"%s\": %s", host.c_str(), t,
                        gai_strerror(rc));
      }
      const addrinfo* pick = nullptr;
      for (int fam : {AF_INET, AF_INET6}) {
        for (const addrinfo* ai = res; ai != nullptr && pick == nullptr; ai = ai->ai_next) {
          if (ai->ai_family == fam && ai->ai_addr != nullptr) pick = ai;
        }
        if (pick != nullptr) break;
      }
      bool ok = pick != nullptr && copySockaddr(pick->ai_addr, &result);
      freeaddrinfo(res);
      GCCL_REQUIRE(ok, gcclInvalidArgument,
                   "host \"%s\" in address \"%s\" has no IPv4 or IPv6 address", host.c_str(), t);
    }
  }
  result.setPort(static_cast<int>(port));
  *out = result;
  return gcclSuccess;
}

void encodeSockAddr(const SockAddr& a, uint8_t* p) {
  memset(p, 0, kSockAddrBytes);
  putLe16(p, static_cast<uint16_t>(a.family()));
  putLe16(p + 2, static_cast<uint16_t>(a.port() < 0 ? 0 : a.port()));
  if (a.family() == AF_INET) {
    memcpy(p + 4, &reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr, 4);
  } else if (a.family() == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    memcpy(p + 4, &s6->sin6_addr, 16);
    putLe32(p + 20, s6->sin6_scope_id);
  }
}

gcclResult_t decodeSockAddr(const uint8_t* p, SockAddr* a) {
  SockAddr out;
  int family = getLe16(p);
  if (family == AF_INET) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&out.storage);
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, p + 4, 4);
    out.len = sizeof(sockaddr_in);
  } else if (family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    s6->sin6_family = AF_INET6;
    memcpy(&s6->sin6_addr, p + 4, 16);
    s6->sin6_scope_id = getLe32(p + 20);
    out.len = sizeof(sockaddr_in6);
  } else {
    return setError(gcclInvalidArgument, "address family %d is neither IPv4 nor IPv6", family);
  }
  out.setPort(getLe16(p + 2));
  *a = out;
  return gcclSuccess;
}

}  // namespace gccl
