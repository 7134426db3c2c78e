// Thin helpers over BSD sockets used by the TCP transport and the bootstrap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/clock.h"
#include "base/net_if.h"
#include "gccl/gccl.h"

namespace gccl::tcp {

// The clock of every deadline here (base/clock.h).
using gccl::nowMs;
using gccl::nowUs;

// Opens a non-blocking listening socket on `addr` (port 0: any); *bound gets the real address.
gcclResult_t listenOn(const SockAddr& addr, int* fd, SockAddr* bound);
// Starts a non-blocking connect; *fd is valid even while the connect is in progress.
gcclResult_t startConnect(const SockAddr& addr, int* fd);
// Waits until a connect started by startConnect has finished: gcclRemoteError
// when it failed (refused, unreachable), gcclTimeout past the deadline.
gcclResult_t waitConnected(int fd, int64_t deadlineMs);
// Accepts one pending connection; *fd = -1 when none is waiting.
gcclResult_t acceptOne(int listenFd, int* fd, SockAddr* from);
gcclResult_t setNonBlocking(int fd);
// TCP_NODELAY, keep-alive, (bytes > 0) fixed buffer sizes, and the
// congestion control `congestion` asks for (GCCL_TCP_CONGESTION) for a data
// socket: "system" keeps the system's; "auto" replaces a pacing one (bbr) by
// cubic on a connection between two addresses of this host, where pacing
// only delays bursts (see docs/PARAMETERS.md); any other value is the name
// of the algorithm to use. A refusal is logged, never fatal.
void tuneDataSocket(int fd, int64_t bufBytes, const std::string& congestion);
// Whether `addr` is an address of this host (in this network namespace): a
// loopback address or one of its interfaces'. Traffic to it never leaves the
// loopback path.
bool addressIsLocal(const SockAddr& addr);
// addressIsLocal for the peer of connected socket `fd`.
bool peerIsLocal(int fd);
// Blocking with a deadline (poll): exactly `len` bytes, or an error naming `what`.
gcclResult_t writeAllUntil(int fd, const void* data, size_t len, int64_t deadlineMs,
                           const char* what);
gcclResult_t readAllUntil(int fd, void* data, size_t len, int64_t deadlineMs, const char* what);
void closeFd(int* fd);

}  // namespace gccl::tcp
