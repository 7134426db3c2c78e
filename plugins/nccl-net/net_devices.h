// The plugin's devices: one per usable network interface, chosen by
// NCCL_SOCKET_IFNAME (when set) or GCCL_SOCKET_IFNAME, in NCCL's syntax
// (base/net_if.h), with the interface's speed and this transport's latency.
#pragma once

#include <string>
#include <vector>

#include "base/net_if.h"

namespace gccl::nccl_net {

struct Device {
  std::string ifname;
  std::string pciPath;  // /sys/class/net/<if>/device resolved, "" for virtual interfaces
  SockAddr addr;        // port 0
  int speedMbps = 0;
  float latencyUs = 0;
};

// Found once, on first use; the same list for the life of the process.
const std::vector<Device>& devices();
// The interface spec in force and the variable it came from, for logs.
std::string deviceSpec(const char** from);

}  // namespace gccl::nccl_net
