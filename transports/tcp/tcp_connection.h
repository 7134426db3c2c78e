// One peer over TCP: several sockets ("channels"), large messages striped
// across them, small ones spread round-robin, all matched by tag.
//
// Receive path: a channel reads a frame header into its staging buffer, finds
// the posted receive with that tag and lets the payload land in the user's
// buffer (directly from the socket for large payloads, copied from staging
// for small ones). A frame whose receive is not posted yet pauses its channel
// (no EPOLLIN, the bytes wait in the kernel) until irecv posts it: memory stays
// bounded by what the user posted, and nothing is copied twice.
//
// Send path: frames queue per channel and leave with one sendmsg() per batch
// (up to 64 frames gathered); EPOLLOUT is watched only while a queue is stuck.
//
// Emulated latency (benchmarks only, TcpTuning::delayUs > 0): every frame of a
// data or asynchronous channel waits in its queue until delayUs after isend()
// before it is written, as if the wire took that long one way; a timerfd wakes
// the poller when the next frame is due. The payload is copied and the send
// completes at once, as it would into a socket buffer. Control frames (liveness, abort,
// goodbye) are not delayed. Bandwidth is shaped outside (tc on the link).
#pragma once

#include <sys/uio.h>

#include <memory>
#include <string>
#include <vector>

#include "transports/tcp/frame.h"
#include "transports/tcp/ring_queue.h"
#include "transports/entry_pool.h"
#include "transports/transport.h"

namespace gccl::tcp {

struct TcpTuning {
  size_t stripeMinBytes = 128 << 10;
  int64_t delayUs = 0;  // emulated one-way latency (GCCL_BENCH_DELAY_US)
};

class TcpConnection final : public transport::Connection {
 public:
  // Takes ownership of `fds` (connected, authenticated, non-blocking sockets,
  // ordered by channel index): fds[0] is the control socket, fds[1] the lane
  // for asynchronous traffic (tags with transport::kAsyncTagBit), then at
  // least one data socket.
  TcpConnection(int peer, uint64_t commHash, std::vector<int> fds, const TcpTuning& tuning,
                transport::Poller* poller);
  ~TcpConnection() override;
  gcclResult_t start() override;
  const char* transportName() const override { return "tcp"; }

  gcclResult_t isend(const void* data, size_t len, uint64_t tag, transport::MessageMeta meta,
                     transport::Request* req) override;
  gcclResult_t irecv(void* data, size_t capacity, uint64_t tag, transport::MessageMeta expect,
                     transport::Request* req) override;
  void cancel(transport::Request* req) override;
  gcclResult_t onEvents(int fd, uint32_t events) override;
  void sendAbortNotice(const char* reason) override;
  void sendCloseNotice() override;
  const std::string& peerAbortReason() const override { return abortReason_; }
  bool peerClosed() const override { return peerClosed_; }
  gcclResult_t sendPing() override;
  int64_t lastPongMs() const override { return lastPongMs_; }
  const std::string& peerLivenessReport() const override { return peerReport_; }
  uint64_t bytesSent() const override { return bytesSent_; }
  uint64_t bytesReceived() const override { return bytesReceived_; }
  uint64_t messagesSent() const override { return messagesSent_; }
  uint64_t messagesReceived() const override { return messagesReceived_; }
  int peer() const override { return peer_; }
  bool hasQueuedSends() const override;
  bool settleBeforeClose() override;
  void abandon() override;
  void pausedFrames(std::vector<std::pair<uint64_t, transport::MessageMeta>>* out) const override;

 private:
  struct SendItem {
    transport::Request* req = nullptr;
    uint8_t header[kFrameHeaderBytes];
    const uint8_t* data = nullptr;
    size_t len = 0;         // payload bytes
    size_t sent = 0;        // header + payload bytes already written
    int64_t releaseUs = 0;  // not written before this time (emulated latency)
    // Emulated latency: the payload is copied here and the send completes at
    // once, as a real socket's buffer would take it (the wire is what is slow).
    std::unique_ptr<uint8_t[]> owned;
  };
  struct RecvEntry {
    uint64_t tag = 0;
    uint8_t* buf = nullptr;
    size_t capacity = 0;
    transport::MessageMeta expect;
    transport::Request* req = nullptr;
    bool sizeKnown = false;
    uint64_t total = 0;
    uint64_t got = 0;      // payload bytes of finished frames
    uint64_t claimed = 0;  // payload bytes of the frames matched so far, finished or not
  };
  enum class RxState { kHeader, kPaused, kPayload, kControlText };
  struct Channel {
    int fd = -1;
    RingQueue<SendItem> sendq;
    bool watchingOut = false;
    bool watchingIn = true;
    bool registered = true;
    bool hangup = false;
    bool eof = false;         // the peer closed this socket after saying goodbye
    bool outputShut = false;  // settling before close: this side sent its FIN
    bool inputDone = false;   // settling before close: the peer's end of stream or a reset
    std::unique_ptr<uint8_t[]> stage;
    size_t stageBegin = 0, stageEnd = 0;
    RxState rx = RxState::kHeader;
    FrameHeader header;
    RecvEntry* target = nullptr;  // null while discarding a payload
    uint8_t* dst = nullptr;
    size_t remaining = 0;
  };

  gcclResult_t flush(Channel& ch);
  // The front frame may be written now (always, without emulated latency).
  bool sendReady(const Channel& ch, int64_t now) const;
  // Arms the timer for the earliest held frame (emulated latency only).
  gcclResult_t armDelayTimer();
  gcclResult_t receive(Channel& ch);
  // Reads what the socket has into the stage, at most `limit` bytes.
  gcclResult_t fillStage(Channel& ch, bool* wouldBlock, size_t limit = SIZE_MAX);
  gcclResult_t beginPayload(Channel& ch, bool* paused);
  void finishFrame(Channel& ch);
  void completeEntry(RecvEntry* e);
  void failEntry(RecvEntry* e, bool metaMismatch);
  gcclResult_t updateInterest(Channel& ch);
  gcclResult_t brokenChannel(const char* what, ssize_t n);
  gcclResult_t onEof(Channel& ch);
  // A failed recv (n < 0 with errno, or n == 0).
  gcclResult_t onReceiveFailed(Channel& ch, ssize_t n);
  gcclResult_t checkDeparted();
  gcclResult_t onControlFrame(Channel& ch);
  gcclResult_t queueControl(FrameType type, const std::string& payload = std::string());
  bool isControl(const Channel& ch) const { return &ch == &channels_[0]; }

  int peer_;
  uint64_t commHash_;
  TcpTuning tuning_;
  transport::Poller* poller_;
  std::vector<Channel> channels_;
  size_t nextChannel_ = 0;
  std::vector<RecvEntry*> posted_;
  transport::EntryPool<RecvEntry> entries_;
  std::string abortReason_;
  bool peerClosed_ = false;
  bool broken_ = false;  // a socket failed or the peer aborted
  bool drainingControl_ = false;
  int64_t lastPongMs_ = 0;
  std::string peerReport_;
  int timerFd_ = -1;  // emulated latency: fires when a held frame is due
  uint64_t bytesSent_ = 0;
  uint64_t bytesReceived_ = 0;
  uint64_t messagesSent_ = 0;
  uint64_t messagesReceived_ = 0;
};

}  // namespace gccl::tcp
