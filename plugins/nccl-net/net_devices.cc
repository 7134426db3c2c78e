#include "plugins/nccl-net/net_devices.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "base/log.h"
#include "base/param.h"

namespace gccl::nccl_net {

namespace {

// What NCCL's own socket transport assumes when the kernel does not say
// (loopback, virtual and some cloud interfaces report no speed).
constexpr int kUnknownSpeedMbps = 10000;
// Latency of a small message through this plugin, two processes of one
// host: the median iteration of nccl_net_perf's sendrecv pattern at 8 bytes
// (perf/RESULTS.md, "NCCL net plugin"). What NCCL's tuner adds per network
// hop; the wire's own latency comes on top between hosts.
constexpr float kLatencyUs = 10.0f;

bool startsWith(const std::string& s, const char* prefix) {
  return s.compare(0, strlen(prefix), prefix) == 0;
}

int readSpeedMbps(const std::string& ifname) {
  std::string path = "/sys/class/net/" + ifname + "/speed";
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return kUnknownSpeedMbps;
  long speed = -1;
  if (fscanf(f, "%ld", &speed) != 1) speed = -1;
  fclose(f);
  return speed > 0 && speed < INT_MAX ? static_cast<int>(speed) : kUnknownSpeedMbps;
}

std::string pciPathOf(const std::string& ifname) {
  std::string link = "/sys/class/net/" + ifname + "/device";
  char* real = realpath(link.c_str(), nullptr);
  if (real == nullptr) return "";
  std::string out = real;
  free(real);
  return out;
}

bool isIpv6LinkLocal(const sockaddr* sa) {
  if (sa->sa_family != AF_INET6) return false;
  const auto* a6 = reinterpret_cast<const sockaddr_in6*>(sa);
  return a6->sin6_addr.s6_addr[0] == 0xfe && (a6->sin6_addr.s6_addr[1] & 0xc0) == 0x80;
}

std::vector<Device> findDevices() {
  const char* from = nullptr;
  std::string spec = deviceSpec(&from);
  std::string family = param::SocketFamily();
  std::vector<int> families;
  if (family != "AF_INET6") families.push_back(AF_INET);
  if (family != "AF_INET") families.push_back(AF_INET6);
  std::vector<Device> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    GCCL_WARN(kLogNet, "NET/gccl: getifaddrs failed: %s", strerror(errno));
    return out;
  }
  bool useDefault = spec.find_first_not_of(" \t") == std::string::npos;
  // The default skips container and VM bridges and keeps loopback for a
  // machine that has nothing else, as findInterface does.
  for (int pass = 0; pass < (useDefault ? 2 : 1) && out.empty(); ++pass) {
    for (int fam : families) {
      for (const ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == nullptr || ifa->ifa_addr->sa_family != fam) continue;
        if (!(ifa->ifa_flags & IFF_UP) || isIpv6LinkLocal(ifa->ifa_addr)) continue;
        std::string name = ifa->ifa_name;
        bool loop = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
        bool selected = useDefault ? (pass == 1 ? loop
                                                : !loop && !startsWith(name, "docker") &&
                                                      !startsWith(name, "virbr"))
                                   : matchInterfaceSpec(spec, name);
        if (!selected) continue;
        bool seen = false;
        for (const Device& d : out)
          seen = seen || d.ifname == name;
        if (seen) continue;  // one device per interface, its first address
        Device d;
        d.ifname = name;
        size_t len = fam == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
        memcpy(&d.addr.storage, ifa->ifa_addr, len);
        d.addr.len = static_cast<socklen_t>(len);
        d.addr.setPort(0);
        d.speedMbps = readSpeedMbps(name);
        d.latencyUs = kLatencyUs;
        d.pciPath = pciPathOf(name);
        out.push_back(d);
      }
    }
  }
  freeifaddrs(list);
  std::string names;
  for (const Device& d : out)
    names += (names.empty() ? "" : ", ") + d.ifname + " " + d.addr.hostString() + " " +
             std::to_string(d.speedMbps) + " Mbps";
  if (out.empty())
    GCCL_WARN(kLogNet, "NET/gccl: no interface that is up matches %s=\"%s\"", from, spec.c_str());
  else
    GCCL_INFO(kLogNet | kLogInit, "NET/gccl: %zu device(s) (%s=\"%s\"): %s", out.size(), from,
              spec.c_str(), names.c_str());
  return out;
}

}  // namespace

std::string deviceSpec(const char** from) {
  const char* nccl = getenv("NCCL_SOCKET_IFNAME");
  if (nccl != nullptr && nccl[0] != '\0') {
    *from = "NCCL_SOCKET_IFNAME";
    return nccl;
  }
  *from = "GCCL_SOCKET_IFNAME";
  return param::SocketIfname();
}

const std::vector<Device>& devices() {
  static std::once_flag once;
  static std::vector<Device>* list = nullptr;  // never freed: used until the library unloads
  std::call_once(once, [] { list = new std::vector<Device>(findDevices()); });
  return *list;
}

}  // namespace gccl::nccl_net
