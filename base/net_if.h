// Network interface selection (GCCL_SOCKET_IFNAME / GCCL_SOCKET_FAMILY, in
// NCCL's syntax) and socket address parsing and printing.
#pragma once

#include <sys/socket.h>

#include <string>

#include "gccl/gccl.h"

namespace gccl {

// An IPv4 or IPv6 socket address of either family in one value type.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  int family() const { return storage.ss_family; }
  // -1 when the address is neither AF_INET nor AF_INET6.
  int port() const;
  // Ignored unless the family is AF_INET or AF_INET6.
  void setPort(int port);
  // "1.2.3.4:5", "[::1]:5" (with "%ifname" after a link-local IPv6 address
  // that has a scope), or "<unspec>" / "<family N>".
  std::string toString() const;
  // The address alone, without the port or brackets.
  std::string hostString() const;
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&storage); }
};

// A socket address as 24 little-endian bytes (family u16, port u16, address
// 16 bytes, IPv6 scope u32), as the unique id and address blobs carry it.
inline constexpr size_t kSockAddrBytes = 24;
void encodeSockAddr(const SockAddr& a, uint8_t* p);
gcclResult_t decodeSockAddr(const uint8_t* p, SockAddr* a);

// NCCL's GCCL_SOCKET_IFNAME syntax: "" selects everything (findInterface then
// applies its default preference); "eth,ib" prefix list; "^docker,lo" excludes
// prefixes; "=eth0,eth1" exact names; "^=eth0" excludes exact names. Empty
// list items and spaces around items are ignored. Returns whether `ifname` is
// selected.
bool matchInterfaceSpec(const std::string& spec, const std::string& ifname);

// Picks the first interface that is up, has an address of an allowed family
// and matches `spec`. family: "" (both, IPv4 addresses first), "AF_INET" or
// "AF_INET6"; IPv6 link-local addresses (fe80::/10) are never picked because
// they are not routable without a scope. With an empty spec: the first
// interface that is not loopback and not docker*/virbr*; if none, loopback.
// The port of *addr is 0. Outputs are written only on success.
gcclResult_t findInterface(const std::string& spec, const std::string& family, std::string* ifname,
                           SockAddr* addr);

// "host:port", "1.2.3.4:5", "[::1]:5", "[fe80::1%eth0]:5" or "name:port";
// names are resolved with getaddrinfo, preferring an IPv4 address.
gcclResult_t parseHostPort(const std::string& text, SockAddr* out);

}  // namespace gccl
