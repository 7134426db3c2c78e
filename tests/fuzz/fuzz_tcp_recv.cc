// The TCP receive path (transports/tcp/tcp_connection.h) fed by a hostile
// peer. A real TcpConnection owns one end of a local socket pair per channel;
// the harness plays the peer on the other ends (well-formed frames, broken
// ones, raw bytes, EOF, hang-ups) and the local rank (receives posted and
// cancelled, sends, pings, goodbye), and delivers what a real epoll reports
// to onEvents() the way the engine's loop does. See formats.h for the input.
//
// Errors are expected; what must hold whatever the peer sends:
// - no memory error: each receive buffer is a heap block of exactly its
//   capacity, freed the moment its request completes, fails or is cancelled,
//   so a write past it or after it is caught by AddressSanitizer;
// - a completed receive is no larger than its buffer; an error says why;
// - epoll never keeps reporting an event the connection does not consume
//   (that would spin the progress thread);
// - the work per input is bounded: no sleeps, no deadlines, capped sizes.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "base/check.h"
#include "fuzz/formats.h"
#include "fuzz/fuzz_input.h"
#include "transports/tcp/frame.h"
#include "transports/tcp/tcp_connection.h"

namespace gccl::fuzz {
namespace {

using transport::MessageMeta;
using transport::Request;

// Large enough for payloads read straight into the buffer and for messages
// that take several rounds through a socket's buffer; small enough to keep
// each input quick.
constexpr size_t kMaxCapacity = 256 << 10;   // largest receive buffer posted
constexpr size_t kMaxSend = 64 << 10;        // largest message sent
constexpr size_t kMaxPeerBytes = 512 << 10;  // all the peer writes in one input
constexpr int kMaxRounds = 2048;             // epoll rounds per input, all drives together
constexpr int kMaxStaleRounds = 64;          // rounds with events but no effect

[[noreturn]] void fail(const char* what) {
  fprintf(stderr, "fuzz_tcp_recv: %s\n", what);
  abort();
}

// The engine's side of transport::Poller: a real epoll set, level-triggered.
class EpollPoller final : public transport::Poller {
 public:
  EpollPoller() : fd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (fd_ < 0) fail("epoll_create1 failed");
  }
  ~EpollPoller() override { close(fd_); }
  EpollPoller(const EpollPoller&) = delete;
  EpollPoller& operator=(const EpollPoller&) = delete;

  gcclResult_t watch(int fd, uint32_t events, void* owner) override {
    (void)owner;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    bool known = watched_.count(fd) != 0;
    if (epoll_ctl(fd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
      return setError(gcclSystemError, "epoll_ctl(fd %d) failed", fd);
    watched_.insert(fd);
    ++changes_;
    return gcclSuccess;
  }
  void unwatch(int fd) override {
    if (watched_.erase(fd) == 0) return;
    epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr);
    ++changes_;
  }

  int ready(epoll_event* events, int max) { return epoll_wait(fd_, events, max, 0); }
  bool watching(int fd) const { return watched_.count(fd) != 0; }
  uint64_t changes() const { return changes_; }

 private:
  int fd_;
  std::set<int> watched_;
  uint64_t changes_ = 0;
};

// The remote end of one channel.
struct PeerEnd {
  enum class Then { kNothing, kShutdown, kClose };
  int fd = -1;
  std::vector<uint8_t> outbox;
  size_t sent = 0;
  Then then = Then::kNothing;
  bool shut = false;
  size_t perRound = 0;  // bytes written per pump; 0: as many as the socket takes
};

struct RecvSlot {
  Request req;
  std::unique_ptr<uint8_t[]> buf;
  size_t capacity = 0;
  uint64_t tag = 0;
  bool live = false;
};

struct SendSlot {
  Request req;
  std::unique_ptr<uint8_t[]> data;
  bool live = false;
};

class Run {
 public:
  explicit Run(FuzzInput in) : in_(in) {}

  void run() {
    uint8_t setup = in_.u8();
    size_t channels = 2 + 1 + setup % 3;
    tcp::TcpTuning tuning;
    tuning.stripeMinBytes = 4096;  // small enough that short sends are striped too
    tuning.delayUs = (setup & 4) != 0 ? 1 : 0;
    std::vector<int> fds;
    for (size_t i = 0; i < channels; ++i) {
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        fail("socketpair failed");
      fds.push_back(sv[0]);
      peers_.emplace_back();
      peers_.back().fd = sv[1];
    }
    conn_ = std::make_unique<tcp::TcpConnection>(1, kCommHash, fds, tuning, &poller_);
    if (conn_->start() != gcclSuccess) fail("start() failed on fresh sockets");

    while (alive_ && !in_.empty()) {
      step(static_cast<TcpOp>(in_.u8() % kOpCount));
      settle();
    }
    if (alive_) drive();
    teardown();
  }

 private:
  void step(TcpOp op) {
    switch (op) {
      case kOpRaw: {
        PeerEnd& p = peer();
        size_t got = 0;
        const uint8_t* b = in_.bytes(static_cast<size_t>(in_.u8()) + 1, &got);
        append(p, b, got);
        return;
      }
      case kOpFrame:
        frame();
        return;
      case kOpPost:
        post();
        return;
      case kOpCancel: {
        RecvSlot& s = recvs_[in_.u8() % kRecvSlots];
        if (!s.live || !s.req.pending()) return;  // as the engine: only what still waits
        conn_->cancel(&s.req);
        if (!s.req.failed()) fail("a cancelled receive is not marked failed");
        s.buf.reset();
        s.live = false;
        return;
      }
      case kOpDrive:
        drive();
        return;
      case kOpSend:
        send();
        return;
      case kOpPing:
        check(conn_->sendPing());
        return;
      case kOpGoodbye:
        conn_->sendCloseNotice();
        return;
      case kOpPeerShutdown:
        peer().then = PeerEnd::Then::kShutdown;
        return;
      case kOpPeerClose:
        peer().then = PeerEnd::Then::kClose;
        return;
      case kOpPeerReset: {
        PeerEnd& p = peer();
        if (p.fd >= 0) close(p.fd);
        p.fd = -1;
        return;
      }
      case kOpTrickle: {
        PeerEnd& p = peer();
        p.perRound = in_.u8();
        return;
      }
      case kOpCount:
        break;
    }
  }

  PeerEnd& peer() { return peers_[in_.u8() % peers_.size()]; }

  uint64_t tag() {
    uint8_t b = in_.u8();
    constexpr size_t n = sizeof(kFuzzTags) / sizeof(kFuzzTags[0]);
    return b < 0xf0 ? kFuzzTags[b % n] : in_.u64();
  }

  void append(PeerEnd& p, const uint8_t* b, size_t n) {
    n = std::min(n, kMaxPeerBytes - peerBytes_);
    p.outbox.insert(p.outbox.end(), b, b + n);
    peerBytes_ += n;
  }

  // A header as the peer would write it, correct unless the flags say
  // otherwise, then as much of the payload as the caps allow.
  void frame() {
    PeerEnd& p = peer();
    uint8_t t = in_.u8();
    uint16_t type = t < 0xf8 ? static_cast<uint16_t>(1 + t % 5) : static_cast<uint16_t>(t - 0xf8);
    uint8_t flags = in_.u8();
    uint64_t frameTag = tag();
    uint8_t m = in_.u8();
    uint64_t total = in_.size(), offset = in_.size(), length = in_.size();
    if ((flags & kFrameWholeMessage) != 0) {
      offset = 0;
      length = total;
    }
    uint8_t h[tcp::kFrameHeaderBytes];
    tcp::putLe32(h, tcp::kFrameMagic ^ ((flags & kFrameBadMagic) != 0 ? 1u : 0u));
    tcp::putLe16(h + 4,
                 static_cast<uint16_t>(tcp::kWireVersion + ((flags & kFrameBadVersion) != 0)));
    tcp::putLe16(h + 6, type);
    tcp::putLe64(h + 8, kCommHash ^ ((flags & kFrameBadHash) != 0 ? 1u : 0u));
    tcp::putLe64(h + 16, frameTag);
    tcp::putLe64(h + 24, m & 3u);
    tcp::putLe64(h + 32, (m >> 2) & 3u);
    tcp::putLe64(h + 40, total);
    tcp::putLe64(h + 48, offset);
    tcp::putLe64(h + 56, length);
    append(p, h, sizeof(h));
    size_t payload = static_cast<size_t>(std::min<uint64_t>(length, kMaxPeerBytes - peerBytes_));
    appendPattern(p, offset, payload);
    peerBytes_ += payload;
  }

  // Payload bytes: letters by position in the message, readable as an abort
  // reason. Copied from a table in large pieces, because a loop per byte
  // costs a coverage callback per byte.
  static void appendPattern(PeerEnd& p, uint64_t offset, size_t n) {
    static const std::vector<uint8_t> table = [] {
      std::vector<uint8_t> t(64 << 10);
      for (size_t i = 0; i < t.size(); ++i)
        t[i] = static_cast<uint8_t>('a' + i % 26);
      return t;
    }();
    size_t phase = static_cast<size_t>(offset % 26);
    size_t piece = (table.size() - 26) / 26 * 26;  // whole periods after any phase
    while (n > 0) {
      size_t k = std::min(n, piece);
      p.outbox.insert(p.outbox.end(), table.begin() + static_cast<long>(phase),
                      table.begin() + static_cast<long>(phase + k));
      n -= k;
    }
  }

  // An irecv as an op posts it: never on a pending request, never two
  // pending receives with one tag.
  void post() {
    RecvSlot& s = recvs_[in_.u8() % kRecvSlots];
    uint64_t t = tag();
    uint8_t m = in_.u8();
    size_t capacity = static_cast<size_t>(std::min<uint64_t>(in_.size(), kMaxCapacity));
    if (s.live) return;
    for (const RecvSlot& other : recvs_)
      if (other.live && other.tag == t) return;
    MessageMeta expect{m & 3u, (m >> 2) & 3u};
    if ((m & 0x80) != 0) expect = {transport::kMetaAny, 0};
    s.buf.reset(capacity > 0 ? new uint8_t[capacity] : nullptr);
    s.capacity = capacity;
    s.tag = t;
    s.live = true;
    check(conn_->irecv(s.buf.get(), capacity, t, expect, &s.req));
  }

  void send() {
    SendSlot& s = sends_[in_.u8() % kSendSlots];
    uint64_t t = tag();
    uint8_t m = in_.u8();
    size_t len = static_cast<size_t>(std::min<uint64_t>(in_.size(), kMaxSend));
    if (s.live) return;
    s.data.reset(len > 0 ? new uint8_t[len]() : nullptr);
    s.live = true;
    check(conn_->isend(s.data.get(), len, t, MessageMeta{m & 3u, (m >> 2) & 3u}, &s.req));
  }

  // A call that fails breaks the connection, as it breaks the communicator.
  void check(gcclResult_t r) {
    if (r == gcclSuccess) return;
    if (threadLastError()[0] == '\0') fail("an error without a reason");
    alive_ = false;
  }

  // Frees what completed. A failed receive fails its op, which breaks the
  // communicator: the run ends as the engine's fail() would end it.
  void settle() {
    for (RecvSlot& s : recvs_) {
      if (!s.live || s.req.pending()) continue;
      if (s.req.done() && s.req.bytes > s.capacity) fail("a receive completed past its buffer");
      if (s.req.failed()) alive_ = false;
      s.buf.reset();
      s.live = false;
    }
    for (SendSlot& s : sends_) {
      if (!s.live || s.req.pending()) continue;
      s.data.reset();
      s.live = false;
    }
  }

  // The peer's side of the wire: writes what it has, reads (and drops) what
  // the connection sent, and shuts or closes once its bytes are out.
  uint64_t pump() {
    uint64_t moved = 0;
    uint8_t sink[16 << 10];
    for (PeerEnd& p : peers_) {
      if (p.fd < 0) continue;
      size_t budget = p.perRound > 0 ? p.perRound : SIZE_MAX;
      while (!p.shut && p.sent < p.outbox.size() && budget > 0) {
        size_t want = std::min(p.outbox.size() - p.sent, budget);
        ssize_t n = ::send(p.fd, p.outbox.data() + p.sent, want, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;  // libFuzzer's timer signals
        if (n <= 0) break;
        p.sent += static_cast<size_t>(n);
        budget -= static_cast<size_t>(n);
        moved += static_cast<uint64_t>(n);
      }
      for (;;) {
        ssize_t n = recv(p.fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        moved += static_cast<uint64_t>(n);
      }
      if (p.sent < p.outbox.size() && !p.shut) continue;
      if (p.then == PeerEnd::Then::kShutdown && !p.shut) {
        shutdown(p.fd, SHUT_WR);
        p.shut = true;
        ++moved;
      } else if (p.then == PeerEnd::Then::kClose) {
        close(p.fd);
        p.fd = -1;
        ++moved;
      }
    }
    return moved;
  }

  uint64_t signature() const {
    uint64_t s = conn_->bytesSent() * 31 + conn_->bytesReceived() + poller_.changes() * 17;
    for (const RecvSlot& r : recvs_)
      s = s * 7 + static_cast<uint64_t>(r.req.state) + r.live;
    return s;
  }

  // The engine's loop, without its waits: whatever epoll reports goes to
  // onEvents() until nothing is ready and the peer has nothing left to move.
  void drive() {
    int stale = 0;
    std::vector<std::pair<uint64_t, MessageMeta>> paused;
    for (; alive_ && rounds_ < kMaxRounds; ++rounds_) {
      uint64_t moved = pump();
      epoll_event events[16];
      int n = poller_.ready(events, 16);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 && moved == 0) return;
      uint64_t before = signature();
      for (int i = 0; i < n && alive_; ++i) {
        // An fd unwatched earlier in this batch is skipped, as the engine does.
        if (!poller_.watching(events[i].data.fd)) continue;
        clearThreadLastError();
        check(conn_->onEvents(events[i].data.fd, events[i].events));
        settle();
      }
      if (!alive_) return;
      // What the engine asks between events: for mismatches, and before a goodbye.
      paused.clear();
      conn_->pausedFrames(&paused);
      (void)conn_->hasQueuedSends();
      if (n > 0 && moved == 0 && signature() == before) {
        if (++stale == kMaxStaleRounds)
          fail("epoll keeps reporting events that the connection does not consume");
      } else {
        stale = 0;
      }
    }
  }

  // As the engine breaks a communicator (or destroys one): abort notice when
  // broken, pending receives cancelled, the connection closed.
  void teardown() {
    if (!alive_) conn_->sendAbortNotice("fuzz: the connection broke");
    for (RecvSlot& s : recvs_) {
      if (!s.live) continue;
      if (s.req.pending()) conn_->cancel(&s.req);
      s.buf.reset();
      s.live = false;
    }
    conn_.reset();
    for (PeerEnd& p : peers_)
      if (p.fd >= 0) close(p.fd);
  }

  FuzzInput in_;
  EpollPoller poller_;
  std::vector<PeerEnd> peers_;
  size_t peerBytes_ = 0;
  int rounds_ = 0;
  RecvSlot recvs_[kRecvSlots];
  SendSlot sends_[kSendSlots];  // outlive the connection, which may still point at them
  std::unique_ptr<tcp::TcpConnection> conn_;
  bool alive_ = true;
};

}  // namespace
}  // namespace gccl::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gccl::fuzz::Run(gccl::fuzz::FuzzInput(data, size)).run();
  return 0;
}
