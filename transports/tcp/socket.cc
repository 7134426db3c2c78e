#include "transports/tcp/socket.h"

#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "base/check.h"
#include "base/log.h"

namespace gccl::tcp {

gcclResult_t setNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return setError(gcclSystemError, "fcntl(O_NONBLOCK) failed: %s", strerror(errno));
  return gcclSuccess;
}

bool addressIsLocal(const SockAddr& addr) {
  const sockaddr_storage& peer = addr.storage;
  if (peer.ss_family == AF_INET) {
    const auto* p = reinterpret_cast<const sockaddr_in*>(&peer);
    if ((ntohl(p->sin_addr.s_addr) >> 24) == 127) return true;
  } else if (peer.ss_family == AF_INET6) {
    const auto* p = reinterpret_cast<const sockaddr_in6*>(&peer);
    if (IN6_IS_ADDR_LOOPBACK(&p->sin6_addr)) return true;
  } else {
    return false;
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool local = false;
  for (ifaddrs* i = list; i != nullptr && !local; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != peer.ss_family) continue;
    if (peer.ss_family == AF_INET)
      local = reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr ==
              reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr.s_addr;
    else
      local =
          memcmp(&reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr,
                 &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, sizeof(in6_addr)) == 0;
  }
  freeifaddrs(list);
  return local;
}

bool peerIsLocal(int fd) {
  SockAddr peer;
  peer.len = sizeof(peer.storage);
  if (getpeername(fd, peer.sa(), &peer.len) != 0) return false;
  return addressIsLocal(peer);
}

namespace {

// The congestion control of `fd` ("" when it cannot be read).
std::string congestionOf(int fd) {
  char name[32] = {};
  socklen_t len = sizeof(name) - 1;
  if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len) != 0) return "";
  return std::string(name, strnlen(name, len));
}

void setCongestion(int fd, const std::string& want) {
  if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, want.data(),
                 static_cast<socklen_t>(want.size())) == 0)
    return;
  int err = errno;
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true))
    GCCL_WARN(kLogNet,
              "GCCL_TCP_CONGESTION: the kernel refused congestion control \"%s\" (%s); keeping "
              "\"%s\" (see net.ipv4.tcp_allowed_congestion_control)",
              want.c_str(), strerror(err), congestionOf(fd).c_str());
}

}  // namespace

void tuneDataSocket(int fd, int64_t bufBytes, const std::string& congestion) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  if (bufBytes > 0) {
    int b = static_cast<int>(bufBytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &b, sizeof(b));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof(b));
  }
  if (congestion.empty() || congestion == "system") return;
  if (congestion != "auto") {
    setCongestion(fd, congestion);
    return;
  }
  // BBR paces each burst out over its model of the path (by a timer when the
  // device has no fq qdisc, as loopback has not): between two processes of
  // one host that only delays every message after the first bulk transfer.
  if (congestionOf(fd) == "bbr" && peerIsLocal(fd)) setCongestion(fd, "cubic");
}

gcclResult_t listenOn(const SockAddr& addr, int* fd, SockAddr* bound) {
  int s = socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return setError(gcclSystemError, "socket() failed: %s", strerror(errno));
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(s, reinterpret_cast<const sockaddr*>(&addr.storage), addr.len) != 0) {
    int e = errno;
    close(s);
    return setError(gcclSystemError, "bind(%s) failed: %s", addr.toString().c_str(), strerror(e));
  }
  if (::listen(s, SOMAXCONN) != 0) {
    int e = errno;
    close(s);
    return setError(gcclSystemError, "listen(%s) failed: %s", addr.toString().c_str(), strerror(e));
  }
  SockAddr b;
  b.len = sizeof(b.storage);
  getsockname(s, reinterpret_cast<sockaddr*>(&b.storage), &b.len);
  *fd = s;
  *bound = b;
  return gcclSuccess;
}

gcclResult_t startConnect(const SockAddr& addr, int* fd) {
  int s = socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return setError(gcclSystemError, "socket() failed: %s", strerror(errno));
  if (connect(s, reinterpret_cast<const sockaddr*>(&addr.storage), addr.len) != 0 &&
      errno != EINPROGRESS) {
    int e = errno;
    close(s);
    return setError(e == ECONNREFUSED ? gcclRemoteError : gcclSystemError, "connect(%s) failed: %s",
                    addr.toString().c_str(), strerror(e));
  }
  *fd = s;
  return gcclSuccess;
}

gcclResult_t waitConnected(int fd, int64_t deadlineMs) {
  for (;;) {
    int64_t left = deadlineMs - nowMs();
    if (left <= 0) return setError(gcclTimeout, "timed out connecting");
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(left > 1000 ? 1000 : left));
    if (n < 0 && errno != EINTR) return setError(gcclSystemError, "poll: %s", strerror(errno));
    if (n <= 0) continue;
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return setError(gcclRemoteError, "connect failed: %s", strerror(err));
    return gcclSuccess;
  }
}

gcclResult_t acceptOne(int listenFd, int* fd, SockAddr* from) {
  SockAddr a;
  a.len = sizeof(a.storage);
  int s = accept4(listenFd, reinterpret_cast<sockaddr*>(&a.storage), &a.len,
                  SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (s < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
      *fd = -1;
      return gcclSuccess;
    }
    return setError(gcclSystemError, "accept() failed: %s", strerror(errno));
  }
  *fd = s;
  if (from != nullptr) *from = a;
  return gcclSuccess;
}

namespace {
// Waits until `fd` is ready for `events` or the deadline passes.
gcclResult_t waitFd(int fd, short events, int64_t deadlineMs, const char* what) {
  for (;;) {
    int64_t left = deadlineMs - nowMs();
    if (left <= 0) return setError(gcclTimeout, "timed out while %s", what);
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(left > 1000 ? 1000 : left));
    if (n < 0 && errno != EINTR)
      return setError(gcclSystemError, "poll() failed while %s: %s", what, strerror(errno));
    if (n > 0) return gcclSuccess;
  }
}
}  // namespace

gcclResult_t writeAllUntil(int fd, const void* data, size_t len, int64_t deadlineMs,
                           const char* what) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      GCCL_CHECK(waitFd(fd, POLLOUT, deadlineMs, what));
      continue;
    }
    return setError(gcclRemoteError, "connection lost while %s: %s", what,
                    n == 0 ? "closed" : strerror(errno));
  }
  return gcclSuccess;
}

gcclResult_t readAllUntil(int fd, void* data, size_t len, int64_t deadlineMs, const char* what) {
  char* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = recv(fd, p, len, 0);
    if (n > 0) {
      p += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      GCCL_CHECK(waitFd(fd, POLLIN, deadlineMs, what));
      continue;
    }
    return setError(gcclRemoteError, "connection lost while %s: %s", what,
                    n == 0 ? "closed by the peer" : strerror(errno));
  }
  return gcclSuccess;
}

void closeFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace gccl::tcp
