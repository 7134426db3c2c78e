#include "transports/tcp/tcp_connection.h"

#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <utility>

#include "base/check.h"
#include "base/log.h"
#include "transports/tcp/socket.h"

namespace gccl::tcp {

namespace {
constexpr size_t kStageBytes = 64 << 10;
// Payloads at least this large are read straight into the user's buffer.
constexpr size_t kDirectReadBytes = 4096;
constexpr int kMaxIov = 64;
}  // namespace

using transport::MessageMeta;
using transport::Request;
using transport::RequestState;

// A send's Request::priv: how many of its frames are not written yet.
constexpr size_t kPendingParts = 0;

TcpConnection::TcpConnection(int peer, uint64_t commHash, std::vector<int> fds,
                             const TcpTuning& tuning, transport::Poller* poller)
    : peer_(peer), commHash_(commHash), tuning_(tuning), poller_(poller) {
  channels_.resize(fds.size());
  for (size_t i = 0; i < fds.size(); ++i) {
    channels_[i].fd = fds[i];
    channels_[i].stage.reset(new uint8_t[kStageBytes]);
  }
}

TcpConnection::~TcpConnection() {
  if (timerFd_ >= 0) {
    poller_->unwatch(timerFd_);
    close(timerFd_);
  }
  for (Channel& ch : channels_) {
    if (ch.fd < 0) continue;
    poller_->unwatch(ch.fd);
    close(ch.fd);
  }
}

gcclResult_t TcpConnection::start() {
  for (Channel& ch : channels_)
    GCCL_CHECK(poller_->watch(ch.fd, EPOLLIN, this));
  if (tuning_.delayUs > 0) {
    timerFd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timerFd_ < 0) return setError(gcclSystemError, "timerfd_create: %s", strerror(errno));
    GCCL_CHECK(poller_->watch(timerFd_, EPOLLIN, this));
  }
  return gcclSuccess;
}

bool TcpConnection::hasQueuedSends() const {
  for (size_t i = 1; i < channels_.size(); ++i)
    if (!channels_[i].sendq.empty() && !channels_[i].eof) return true;
  return false;
}

void TcpConnection::abandon() {
  broken_ = true;  // nothing more is written or waited for
  for (RecvEntry* e : posted_)
    if (e->req != nullptr && e->req->pending()) e->req->state = RequestState::kFailed;
  for (Channel& ch : channels_)
    for (size_t i = 0; i < ch.sendq.size(); ++i) {
      transport::Request* r = ch.sendq.at(i).req;
      if (r != nullptr && r->pending()) r->state = RequestState::kFailed;
    }
}

bool TcpConnection::settleBeforeClose() {
  if (broken_ || !abortReason_.empty()) return true;
  bool settled = true;
  for (Channel& ch : channels_) {
    if (ch.fd < 0 || ch.inputDone) continue;
    if (!ch.outputShut) {
      // What this side accepted (the goodbye above all) is written first.
      if (!ch.sendq.empty() && flush(ch) != gcclSuccess) return true;
      if (!ch.sendq.empty()) {
        settled = false;
        continue;
      }
      shutdown(ch.fd, SHUT_WR);
      ch.outputShut = true;
    }
    // What the peer still sends is read and dropped, so that the close finds
    // no unread bytes (which would reset the connection).
    char sink[4096];
    for (;;) {
      ssize_t n = recv(ch.fd, sink, sizeof(sink), MSG_DONTWAIT);
      if (n > 0 || (n < 0 && errno == EINTR)) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) ch.inputDone = true;
      break;
    }
    // Settled once the peer acknowledged every byte and the FIN; after its
    // own end of stream (or a reset) there is nothing left to wait for.
    int unacked = 0;
    if (!ch.inputDone && ioctl(ch.fd, SIOCOUTQ, &unacked) == 0 && unacked > 0) settled = false;
  }
  return settled;
}

bool TcpConnection::sendReady(const Channel& ch, int64_t now) const {
  if (ch.sendq.empty()) return false;
  const SendItem& it = ch.sendq.front();
  return it.sent > 0 || it.releaseUs <= now;
}

gcclResult_t TcpConnection::armDelayTimer() {
  int64_t next = 0;
  for (const Channel& ch : channels_) {
    if (ch.sendq.empty() || ch.sendq.front().sent > 0) continue;
    int64_t r = ch.sendq.front().releaseUs;
    if (r != 0 && (next == 0 || r < next)) next = r;
  }
  itimerspec spec{};  // all zero: disarm
  if (next != 0) {
    spec.it_value.tv_sec = next / 1000000;
    spec.it_value.tv_nsec = (next % 1000000) * 1000;
  }
  if (timerfd_settime(timerFd_, TFD_TIMER_ABSTIME, &spec, nullptr) != 0)
    return setError(gcclSystemError, "timerfd_settime: %s", strerror(errno));
  return gcclSuccess;
}

gcclResult_t TcpConnection::updateInterest(Channel& ch) {
  if (ch.eof) return gcclSuccess;
  // A frame held back by emulated latency waits for the timer, not EPOLLOUT.
  bool wantOut = sendReady(ch, nowUs());
  bool wantIn = ch.rx != RxState::kPaused;
  // epoll reports a hang-up even with no events asked for: a paused channel
  // whose peer has gone is taken off the poller until a receive resumes it.
  bool registered = wantIn || wantOut || !ch.hangup;
  if (!registered) {
    if (ch.registered) poller_->unwatch(ch.fd);
    ch.registered = false;
    return gcclSuccess;
  }
  if (ch.registered && wantOut == ch.watchingOut && wantIn == ch.watchingIn) return gcclSuccess;
  ch.registered = true;
  ch.watchingOut = wantOut;
  ch.watchingIn = wantIn;
  return poller_->watch(ch.fd, (wantIn ? EPOLLIN : 0u) | (wantOut ? EPOLLOUT : 0u), this);
}

gcclResult_t TcpConnection::brokenChannel(const char* what, ssize_t n) {
  int savedErrno = errno;
  broken_ = true;
  // A peer that failed first says why on the control socket before closing:
  // prefer its reason to our own view of the broken socket.
  if (abortReason_.empty() && !drainingControl_ && !channels_[0].eof) {
    drainingControl_ = true;
    (void)receive(channels_[0]);
    drainingControl_ = false;
  }
  errno = savedErrno;
  if (!abortReason_.empty())
    return setError(gcclRemoteError, "rank %d aborted: %s", peer_, abortReason_.c_str());
  if (n == 0 && peerClosed_)
    return setError(
        gcclRemoteError,
        "rank %d destroyed its communicator while this rank still expected data from it", peer_);
  if (n == 0)
    return setError(gcclRemoteError, "rank %d closed the connection while %s (did it exit?)", peer_,
                    what);
  return setError(gcclRemoteError, "connection to rank %d failed while %s: %s", peer_, what,
                  strerror(errno));
}

gcclResult_t TcpConnection::onReceiveFailed(Channel& ch, ssize_t n) {
  if (n == 0) return onEof(ch);
  // A peer that said goodbye and closed a socket with bytes of ours still
  // unread (a ping, our own goodbye) resets it. What it sent before is still
  // read first, so after the goodbye a reset is an end of stream like any
  // other: onEof tells whether something this rank expected went missing.
  if (errno == ECONNRESET) {
    int savedErrno = errno;
    if (!peerClosed_ && !isControl(ch) && !channels_[0].eof) GCCL_CHECK(receive(channels_[0]));
    if (peerClosed_) return onEof(ch);
    errno = savedErrno;
  }
  return brokenChannel("receiving", n);
}

// End of stream. After the peer's goodbye (kClose) that is normal as long as
// nothing this rank posted still waits for bytes from it.
gcclResult_t TcpConnection::onEof(Channel& ch) {
  // The goodbye travels on the control socket and may not have been read yet.
  if (!peerClosed_ && !isControl(ch) && !channels_[0].eof) GCCL_CHECK(receive(channels_[0]));
  bool midFrame = ch.rx != RxState::kHeader || ch.stageEnd != ch.stageBegin;
  if (!peerClosed_ || (midFrame && !isControl(ch))) return brokenChannel("receiving", 0);
  ch.eof = true;
  if (ch.registered) poller_->unwatch(ch.fd);
  ch.registered = false;
  return checkDeparted();
}

gcclResult_t TcpConnection::checkDeparted() {
  bool expecting = false;
  for (const RecvEntry* e : posted_)
    expecting = expecting || !transport::isStandingTag(e->tag);
  if (!expecting) return gcclSuccess;
  for (size_t i = 1; i < channels_.size(); ++i)
    if (!channels_[i].eof) return gcclSuccess;
  return brokenChannel("receiving", 0);
}

// ---- send ------------------------------------------------------------------

gcclResult_t TcpConnection::isend(const void* data, size_t len, uint64_t tag, MessageMeta meta,
                                  Request* req) {
  // Asynchronous traffic has a lane of its own (channel 1), so it never waits
  // behind a collective's frame that the peer has not posted a receive for.
  bool async = (tag & transport::kAsyncTagBit) != 0;
  size_t nch = channels_.size() - 2;  // data channels are 2..n
  size_t parts = 1;
  if (!async && len >= tuning_.stripeMinBytes && nch > 1)
    parts = std::min(nch, (len + tuning_.stripeMinBytes - 1) / tuning_.stripeMinBytes);
  req->state = RequestState::kPending;
  req->bytes = len;
  req->priv[kPendingParts] = parts;
  FrameHeader h;
  h.type = FrameType::kData;
  h.commHash = commHash_;
  h.tag = tag;
  h.metaInfo = meta.info;
  h.metaCount = meta.count;
  h.totalBytes = len;
  const uint8_t* base = static_cast<const uint8_t*>(data);
  int64_t release = tuning_.delayUs > 0 ? nowUs() + tuning_.delayUs : 0;
  size_t first = nextChannel_;
  if (!async) nextChannel_ = (nextChannel_ + parts) % nch;
  for (size_t p = 0; p < parts; ++p) {
    size_t begin = len * p / parts, end = len * (p + 1) / parts;
    h.offset = begin;
    h.length = end - begin;
    SendItem item;
    item.req = req;
    encodeFrameHeader(h, item.header);
    item.data = base + begin;
    item.len = end - begin;
    item.releaseUs = release;
    if (release != 0) {
      item.owned.reset(new uint8_t[item.len > 0 ? item.len : 1]);
      if (item.len > 0) memcpy(item.owned.get(), item.data, item.len);
      item.data = item.owned.get();
      item.req = nullptr;
    }
    Channel& ch = async ? channels_[1] : channels_[2 + (first + p) % nch];
    bool wasEmpty = ch.sendq.empty();
    ch.sendq.push(std::move(item));
    // Write at once when the channel was idle: no epoll round trip for latency.
    if (wasEmpty) GCCL_CHECK(flush(ch));
  }
  if (release != 0) {
    req->priv[kPendingParts] = 0;
    req->state = RequestState::kDone;  // the copies are in flight
    ++messagesSent_;
    GCCL_CHECK(armDelayTimer());
  }
  return gcclSuccess;
}

gcclResult_t TcpConnection::flush(Channel& ch) {
  int64_t now = tuning_.delayUs > 0 ? nowUs() : 0;
  while (sendReady(ch, now)) {
    iovec iov[kMaxIov];
    int n = 0;
    for (size_t i = 0; i < ch.sendq.size() && n + 2 <= kMaxIov; ++i) {
      SendItem& it = ch.sendq.at(i);
      if (it.sent == 0 && it.releaseUs > now) break;  // held back (emulated latency)
      size_t off = it.sent;
      if (off < kFrameHeaderBytes) {
        iov[n++] = {it.header + off, kFrameHeaderBytes - off};
        off = kFrameHeaderBytes;
      }
      size_t dataOff = off - kFrameHeaderBytes;
      if (dataOff < it.len) iov[n++] = {const_cast<uint8_t*>(it.data) + dataOff, it.len - dataOff};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    ssize_t w = sendmsg(ch.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      // A ping or answer to a peer that said goodbye and closed: nobody
      // needs it any more.
      if (peerClosed_ && isControl(ch) && (errno == EPIPE || errno == ECONNRESET)) {
        ch.sendq.clear();
        return gcclSuccess;
      }
      return brokenChannel("sending", w);
    }
    size_t left = static_cast<size_t>(w);
    while (left > 0 || (!ch.sendq.empty() &&
                        ch.sendq.front().sent == kFrameHeaderBytes + ch.sendq.front().len)) {
      SendItem& it = ch.sendq.front();
      size_t need = kFrameHeaderBytes + it.len - it.sent;
      size_t take = std::min(need, left);
      it.sent += take;
      left -= take;
      if (it.sent < kFrameHeaderBytes + it.len) break;
      // Liveness answers are not data: they must not look like progress.
      if (!isControl(ch)) bytesSent_ += it.len;
      Request* req = it.req;
      it.owned.reset();
      ch.sendq.pop();
      if (req != nullptr && --req->priv[kPendingParts] == 0) {
        req->state = RequestState::kDone;
        ++messagesSent_;
      }
    }
  }
  return updateInterest(ch);
}

// ---- receive ---------------------------------------------------------------

gcclResult_t TcpConnection::irecv(void* data, size_t capacity, uint64_t tag, MessageMeta expect,
                                  Request* req) {
  RecvEntry* e = entries_.take();
  e->tag = tag;
  e->buf = static_cast<uint8_t*>(data);
  e->capacity = capacity;
  e->expect = expect;
  e->req = req;
  req->state = RequestState::kPending;
  req->bytes = 0;
  req->metaMismatch = false;
  posted_.push_back(e);
  GCCL_CHECK(checkDeparted());
  // A channel may be paused on exactly this message, with its payload already staged.
  for (Channel& ch : channels_) {
    if (ch.rx != RxState::kPaused || ch.header.tag != tag) continue;
    bool paused = false;
    GCCL_CHECK(beginPayload(ch, &paused));
    if (!paused) {
      GCCL_CHECK(receive(ch));
      GCCL_CHECK(updateInterest(ch));
    }
  }
  return gcclSuccess;
}

void TcpConnection::cancel(Request* req) {
  for (size_t i = 0; i < posted_.size(); ++i) {
    RecvEntry* e = posted_[i];
    if (e->req != req) continue;
    for (Channel& ch : channels_)
      if (ch.target == e) {
        ch.target = nullptr;  // the rest of this payload is read and dropped
        ch.dst = nullptr;
      }
    posted_[i] = posted_.back();
    posted_.pop_back();
    entries_.give(e);
    req->state = RequestState::kFailed;
    return;
  }
  // A send cannot be withdrawn from a byte stream; it is dropped with the connection.
}

void TcpConnection::completeEntry(RecvEntry* e) {
  e->req->bytes = e->total;
  e->req->state = RequestState::kDone;
  ++messagesReceived_;
  auto it = std::find(posted_.begin(), posted_.end(), e);
  *it = posted_.back();
  posted_.pop_back();
  entries_.give(e);
}

void TcpConnection::failEntry(RecvEntry* e, bool metaMismatch) {
  e->req->metaMismatch = metaMismatch;
  e->req->state = RequestState::kFailed;
  for (Channel& ch : channels_)
    if (ch.target == e) {
      ch.target = nullptr;
      ch.dst = nullptr;
    }
  auto it = std::find(posted_.begin(), posted_.end(), e);
  *it = posted_.back();
  posted_.pop_back();
  entries_.give(e);
}

// Matches ch.header to a posted receive and sets up the payload phase.
gcclResult_t TcpConnection::beginPayload(Channel& ch, bool* paused) {
  const FrameHeader& h = ch.header;
  RecvEntry* e = nullptr;
  for (RecvEntry* cand : posted_)
    if (cand->tag == h.tag) {
      e = cand;
      break;
    }
  if (e == nullptr) {
    ch.rx = RxState::kPaused;
    *paused = true;
    return gcclSuccess;
  }
  *paused = false;
  ch.rx = RxState::kPayload;
  ch.remaining = h.length;
  ch.target = e;
  e->req->peerMeta = {h.metaInfo, h.metaCount};
  if (e->expect.info != transport::kMetaAny &&
      (e->expect.info != h.metaInfo || e->expect.count != h.metaCount)) {
    failEntry(e, /*metaMismatch=*/true);
    return gcclSuccess;
  }
  if (h.totalBytes > e->capacity) {
    e->req->bytes = h.totalBytes;
    failEntry(e, false);
    return setError(gcclInvalidUsage,
                    "rank %d sent a message of %" PRIu64 " bytes to a receive buffer of %zu bytes",
                    peer_, h.totalBytes, e->capacity);
  }
  if (!e->sizeKnown) {
    e->sizeKnown = true;
    e->total = h.totalBytes;
  } else if (e->total != h.totalBytes) {
    return setError(gcclInternalError, "rank %d: frames of one message disagree on its size",
                    peer_);
  }
  // Frames that add up to more than the message (overlapping or repeated)
  // are refused: otherwise the message could complete, and its buffer go back
  // to the caller, while another socket's frame still writes into it.
  if (h.length > e->total - e->claimed)
    return setError(gcclInternalError,
                    "rank %d: frames of one message carry more than its %" PRIu64 " bytes", peer_,
                    e->total);
  e->claimed += h.length;
  ch.dst = e->buf + h.offset;
  return gcclSuccess;
}

void TcpConnection::finishFrame(Channel& ch) {
  RecvEntry* e = ch.target;
  ch.target = nullptr;
  ch.dst = nullptr;
  ch.rx = RxState::kHeader;
  if (e == nullptr) return;
  e->got += ch.header.length;
  if (e->got == e->total) completeEntry(e);
}

gcclResult_t TcpConnection::fillStage(Channel& ch, bool* wouldBlock, size_t limit) {
  if (ch.stageBegin > 0) {
    size_t have = ch.stageEnd - ch.stageBegin;
    memmove(ch.stage.get(), ch.stage.get() + ch.stageBegin, have);
    ch.stageBegin = 0;
    ch.stageEnd = have;
  }
  size_t room = std::min(kStageBytes - ch.stageEnd, limit);
  ssize_t n = recv(ch.fd, ch.stage.get() + ch.stageEnd, room, MSG_DONTWAIT);
  if (n > 0) {
    ch.stageEnd += static_cast<size_t>(n);
    *wouldBlock = false;
    return gcclSuccess;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    *wouldBlock = true;
    return gcclSuccess;
  }
  *wouldBlock = true;
  return onReceiveFailed(ch, n);
}

gcclResult_t TcpConnection::receive(Channel& ch) {
  for (;;) {
    if (ch.eof) return gcclSuccess;
    size_t staged = ch.stageEnd - ch.stageBegin;
    switch (ch.rx) {
      case RxState::kPaused:
        return gcclSuccess;
      case RxState::kHeader: {
        if (staged < kFrameHeaderBytes) {
          // A header, and what follows it up to the size from which payloads
          // are read straight into their buffers: more would be copied twice.
          bool wouldBlock;
          GCCL_CHECK(fillStage(ch, &wouldBlock, kDirectReadBytes));
          if (wouldBlock) return gcclSuccess;
          continue;
        }
        FrameHeader h;
        gcclResult_t r = decodeFrameHeader(ch.stage.get() + ch.stageBegin, commHash_, &h);
        if (r != gcclSuccess)
          return setError(r, "rank %d sent an invalid frame: %s", peer_, threadLastError());
        ch.stageBegin += kFrameHeaderBytes;
        ch.header = h;
        if (isControl(ch) != (h.type != FrameType::kData))
          return setError(gcclInternalError, "rank %d sent a frame of type %u on a %s socket",
                          peer_, static_cast<unsigned>(h.type), isControl(ch) ? "control" : "data");
        if (isControl(ch)) {
          ch.rx = RxState::kControlText;
          continue;
        }
        bool paused;
        GCCL_CHECK(beginPayload(ch, &paused));
        if (paused) return gcclSuccess;
        continue;
      }
      case RxState::kControlText: {
        if (staged < ch.header.length) {
          bool wouldBlock;
          GCCL_CHECK(fillStage(ch, &wouldBlock));
          if (wouldBlock) return gcclSuccess;
          continue;
        }
        GCCL_CHECK(onControlFrame(ch));
        continue;
      }
      case RxState::kPayload: {
        if (ch.remaining == 0) {
          finishFrame(ch);
          continue;
        }
        if (staged > 0) {
          size_t take = std::min(staged, ch.remaining);
          if (ch.dst != nullptr) {
            memcpy(ch.dst, ch.stage.get() + ch.stageBegin, take);
            ch.dst += take;
          }
          ch.stageBegin += take;
          ch.remaining -= take;
          bytesReceived_ += take;
          continue;
        }
        if (ch.dst != nullptr && ch.remaining >= kDirectReadBytes) {
          ssize_t n = recv(ch.fd, ch.dst, ch.remaining, MSG_DONTWAIT);
          if (n > 0) {
            ch.dst += n;
            ch.remaining -= static_cast<size_t>(n);
            bytesReceived_ += static_cast<uint64_t>(n);
            continue;
          }
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return gcclSuccess;
          return onReceiveFailed(ch, n);
        }
        bool wouldBlock;
        GCCL_CHECK(fillStage(ch, &wouldBlock));
        if (wouldBlock) return gcclSuccess;
        continue;
      }
    }
  }
}

gcclResult_t TcpConnection::onEvents(int fd, uint32_t events) {
  if (fd == timerFd_) {
    uint64_t expirations;
    ssize_t n = read(timerFd_, &expirations, sizeof(expirations));
    (void)n;  // EAGAIN: already read
    for (Channel& ch : channels_)
      if (sendReady(ch, nowUs())) GCCL_CHECK(flush(ch));
    return armDelayTimer();
  }
  for (Channel& ch : channels_) {
    if (ch.fd != fd) continue;
    if (events & EPOLLOUT) GCCL_CHECK(flush(ch));
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      GCCL_CHECK(receive(ch));
      if (events & (EPOLLERR | EPOLLHUP)) ch.hangup = true;
    }
    return updateInterest(ch);
  }
  return gcclSuccess;
}

// ---- control socket ----------------------------------------------------------

void TcpConnection::pausedFrames(
    std::vector<std::pair<uint64_t, transport::MessageMeta>>* out) const {
  for (const Channel& ch : channels_)
    if (ch.rx == RxState::kPaused)
      out->push_back({ch.header.tag, {ch.header.metaInfo, ch.header.metaCount}});
}

gcclResult_t TcpConnection::onControlFrame(Channel& ch) {
  const FrameHeader& h = ch.header;
  const char* text = reinterpret_cast<const char*>(ch.stage.get() + ch.stageBegin);
  ch.stageBegin += h.length;
  ch.rx = RxState::kHeader;
  switch (h.type) {
    case FrameType::kPing:
      return queueControl(FrameType::kPong, poller_->livenessReport());
    case FrameType::kPong:
      peerReport_.assign(text, h.length);
      lastPongMs_ = nowMs();
      return gcclSuccess;
    case FrameType::kClose:
      peerClosed_ = true;
      return gcclSuccess;
    case FrameType::kAbort:
      abortReason_.assign(text, h.length);
      if (abortReason_.empty()) abortReason_ = "(no reason given)";
      return setError(gcclRemoteError, "rank %d aborted: %s", peer_, abortReason_.c_str());
    case FrameType::kData:
      break;
  }
  return setError(gcclInternalError, "rank %d: unexpected frame on the control socket", peer_);
}

gcclResult_t TcpConnection::queueControl(FrameType type, const std::string& payload) {
  Channel& ch = channels_[0];
  SendItem item;
  FrameHeader h;
  h.type = type;
  h.commHash = commHash_;
  static_assert(transport::kMaxLivenessReportBytes <= kMaxPongPayloadBytes,
                "a liveness report must fit in a pong");
  size_t len = std::min(payload.size(), kMaxPongPayloadBytes);
  h.totalBytes = len;
  h.length = len;
  encodeFrameHeader(h, item.header);
  if (len > 0) {
    item.owned.reset(new uint8_t[len]);
    memcpy(item.owned.get(), payload.data(), len);
    item.data = item.owned.get();
    item.len = len;
  }
  bool wasEmpty = ch.sendq.empty();
  ch.sendq.push(std::move(item));
  return wasEmpty ? flush(ch) : gcclSuccess;
}

gcclResult_t TcpConnection::sendPing() {
  return queueControl(FrameType::kPing);
}

void TcpConnection::sendCloseNotice() {
  (void)queueControl(FrameType::kClose);
}

void TcpConnection::sendAbortNotice(const char* reason) {
  Channel& ch = channels_[0];
  // Only at a frame boundary, or the peer would read garbage; control frames
  // are tiny, so the queue is almost always empty.
  if (!ch.sendq.empty() && ch.sendq.front().sent > 0) return;
  size_t len = std::min(strlen(reason), kMaxAbortReasonBytes);
  FrameHeader h;
  h.type = FrameType::kAbort;
  h.commHash = commHash_;
  h.totalBytes = len;
  h.length = len;
  uint8_t hdr[kFrameHeaderBytes];
  encodeFrameHeader(h, hdr);
  iovec iov[2] = {{hdr, sizeof(hdr)}, {const_cast<char*>(reason), len}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  (void)sendmsg(ch.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace gccl::tcp
