// The control channel of ShmConnection (shm_connection.h): events on its
// fds, and the frames on the unix socket (type u32, length u32, payload;
// one frame per SOCK_SEQPACKET message).
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "base/check.h"
#include "transports/shm/shm_connection.h"

namespace gccl::shm {

namespace {
enum : uint32_t { kPing = 1, kPong = 2, kAbort = 3, kClose = 4 };
constexpr size_t kControlHeader = 8;
constexpr size_t kMaxControlPayload = 1024;
}  // namespace

// ---- events and the control channel ---------------------------------------------------

gcclResult_t ShmConnection::onEvents(int fd, uint32_t events) {
  if (!broken_.empty()) return failed();
  bool moved = false;
  if (fd == ep_.myBell) {
    uint64_t count;
    ssize_t n = read(ep_.myBell, &count, sizeof(count));
    (void)n;  // EAGAIN: already read
    shared_->sleeping[ep_.side].value.store(0, std::memory_order_relaxed);
    return progress(SIZE_MAX, &moved);
  }
  if (fd != ep_.sock) return gcclSuccess;
  if (events & EPOLLOUT) GCCL_CHECK(flushControl());
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) GCCL_CHECK(readControl());
  return gcclSuccess;
}

gcclResult_t ShmConnection::readControl() {
  while (socketOpen_) {
    char buf[kControlHeader + kMaxControlPayload + 1];
    ssize_t n = recv(ep_.sock, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      // A reset is reported before the frames still queued (the kernel
      // clears it once read): read on, so that an abort notice and its
      // reason win over the bare reset.
      if (errno == ECONNRESET && !resetSeen_) {
        resetSeen_ = true;
        continue;
      }
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && !resetSeen_) return gcclSuccess;
      char why[200];
      snprintf(why, sizeof(why), "the shared-memory connection to rank %d failed: %s", ep_.peer,
               strerror(resetSeen_ ? ECONNRESET : errno));
      broken_ = why;
      return failed();
    }
    if (n == 0) return onControlEof();
    uint32_t type = 0, length = 0;
    if (n >= static_cast<ssize_t>(kControlHeader)) {
      memcpy(&type, buf, 4);
      memcpy(&length, buf + 4, 4);
    }
    if (n < static_cast<ssize_t>(kControlHeader) || length != n - kControlHeader ||
        length > kMaxControlPayload)
      return corrupt("an invalid control frame");
    const char* text = buf + kControlHeader;
    switch (type) {
      case kPing: {
        const std::string& report = poller_->livenessReport();
        GCCL_CHECK(sendControl(kPong, report.data(),
                               std::min(report.size(), transport::kMaxLivenessReportBytes)));
        break;
      }
      case kPong:
        peerReport_.assign(text, length);
        lastPongMs_ = monotonicMs();
        break;
      case kClose:
        peerClosed_ = true;
        break;
      case kAbort:
        abortReason_.assign(text, length);
        if (abortReason_.empty()) abortReason_ = "(no reason given)";
        broken_ = "rank " + std::to_string(ep_.peer) + " aborted: " + abortReason_;
        return failed();
      default:
        return corrupt("a control frame of unknown type");
    }
  }
  return gcclSuccess;
}

gcclResult_t ShmConnection::onControlEof() {
  socketOpen_ = false;
  // A socket at end of file stays readable: off the poller, or it would spin.
  if (started_) poller_->unwatch(ep_.sock);
  if (!peerClosed_) {
    broken_ = "rank " + std::to_string(ep_.peer) +
              " closed its shared-memory connection without a goodbye (did it exit or crash?)";
    return failed();
  }
  return checkDeparted();
}

gcclResult_t ShmConnection::sendControl(uint32_t type, const char* payload, size_t len) {
  if (!socketOpen_) return gcclSuccess;  // the peer said goodbye and left
  std::string frame(kControlHeader + len, '\0');
  uint32_t length = static_cast<uint32_t>(len);
  memcpy(&frame[0], &type, 4);
  memcpy(&frame[4], &length, 4);
  if (len > 0) memcpy(&frame[kControlHeader], payload, len);
  controlOut_.push_back(std::move(frame));
  return flushControl();
}

gcclResult_t ShmConnection::flushControl() {
  while (!controlOut_.empty()) {
    const std::string& f = controlOut_.front();
    // SOCK_SEQPACKET: a frame goes whole or not at all.
    ssize_t n = send(ep_.sock, f.data(), f.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) {
      if (peerClosed_) {  // it left after its goodbye: nothing more to tell it
        controlOut_.clear();
        break;
      }
      // It went away: what it said before it went (an abort notice and its
      // reason) is still on this side of the socket, and says more.
      int err = errno;
      if (readControl() != gcclSuccess && !abortReason_.empty()) return failed();
      if (peerClosed_) {  // its goodbye was waiting there: it left normally
        controlOut_.clear();
        break;
      }
      errno = err;
      return setError(gcclRemoteError,
                      "the shared-memory connection to rank %d failed while sending: %s (did it "
                      "exit?)",
                      ep_.peer, strerror(errno));
    }
    controlOut_.pop_front();
  }
  bool wantOut = !controlOut_.empty();
  if (wantOut == watchingOut_ || !started_ || !socketOpen_) return gcclSuccess;
  watchingOut_ = wantOut;
  return poller_->watch(ep_.sock, EPOLLIN | (wantOut ? EPOLLOUT : 0u), this);
}

gcclResult_t ShmConnection::sendPing() {
  if (!broken_.empty()) return failed();
  return sendControl(kPing, nullptr, 0);
}

void ShmConnection::sendCloseNotice() {
  (void)sendControl(kClose, nullptr, 0);
}

void ShmConnection::sendAbortNotice(const char* reason) {
  (void)sendControl(kAbort, reason, std::min(strlen(reason), kMaxControlPayload));
}

}  // namespace gccl::shm
