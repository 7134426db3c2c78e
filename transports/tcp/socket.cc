#include "transports/tcp/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "base/check.h"

namespace gccl::tcp {

gcclResult_t setNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return setError(gcclSystemError, "fcntl(O_NONBLOCK) failed: %s", strerror(errno));
  return gcclSuccess;
}

void tuneDataSocket(int fd, int64_t bufBytes) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  if (bufBytes > 0) {
    int b = static_cast<int>(bufBytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &b, sizeof(b));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof(b));
  }
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
