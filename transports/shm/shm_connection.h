// One peer on the same host over shared memory (set up by shm_setup.h).
//
// Data. In each direction two single-producer / single-consumer rings
// (shm_ring.h) in the shared region: one for ordinary messages and one for
// asynchronous traffic (transport::isAsyncTag), so that a service's request
// never waits behind a collective's message that the peer has not posted a
// receive for yet. A ring carries 64-byte-aligned records: a 64-byte header
// (kind, tag, meta, the message's total size, this piece's offset and
// length, a sender address) and, for a piece, its payload. A message is
// written as one or more consecutive pieces of one ring; nothing else is
// interleaved with them.
//
// Large messages (at least ShmTuning::cmaMinBytes, when the handshake proved
// that the peer can read this process's memory) are single-copy: the sender
// writes a descriptor record (tag, meta, size, its buffer's address); once
// the matching receive is posted, the receiver copies straight from the
// sender's memory into its buffer with process_vm_readv, consumes the record
// and counts it in the ring's acks counter. Descriptors of a ring are
// consumed in order, so the sender completes its waiting descriptors in
// order as acks grows. Everything else is copied into the ring and out of it.
//
// Matching is TCP's: by tag, in posting order per tag; a receive may be
// posted before or after the message arrives. The record at a ring's head
// whose receive is not posted pauses that ring only (memory stays bounded by
// the ring; pausedFrames() reports it); irecv resumes it.
//
// Sends complete when their last byte is in the ring (or when a descriptor's
// ack arrives); a full ring leaves them queued (hasQueuedSends()).
//
// Publication. A record is visible to the receiver by its first word, the
// stamp: (the index of its 64-byte line in the ring's stream of bytes + 1)
// << 8 | its kind, stored with release after the record's other words and
// its payload. The receiver polls the stamp of the line at its tail (one
// cache line, which also holds a message of up to 16 bytes inline) rather
// than the ring's head counter, so a small message costs one cache miss
// instead of two. A stale line cannot pass for a record: the record that
// last used it carries the stamp of an earlier lap, and a payload line whose
// first word happens to equal the next lap's stamp is cleared by the
// receiver before it releases the line (scrubPayload). The head counter is
// still published (the producer's bookkeeping, and tests of the ring).
//
// Sleep and wake-up (a Dekker-style handshake, both sides fence):
//   sleeper:  sleeping[me] = 1;  seq_cst fence;  look at the rings again;
//             sleep only when they show nothing to do (armForSleep()).
//   peer:     publish (ring head, tail or acks);  seq_cst fence;  if
//             sleeping[other] is set, clear it and write the other's
//             doorbell eventfd (which its engine watches).
// With both fences, at least one side sees the other's store: either the
// sleeper sees the new state and stays awake, or the peer sees the flag and
// rings. Clearing with an exchange rings each sleep at most once.
// isend does not fence: the fence would wait for its stores to reach the
// peer, on the sender's critical path. It notes the debt (notify_), and the
// fence and the look at the flag follow at the end of the next poll(), in
// armForSleep() before this side sleeps, or in settle() when the engine's
// driver leaves the loop: always before this side stops looking at the
// connection.
//
// Control channel: the unix socket of the handshake (SOCK_SEQPACKET, one
// frame per message: type, length, payload): liveness pings and pongs (with
// the poller's liveness report), the abort notice with its reason and the
// goodbye. It is watched with EPOLLIN (and read from poll() once per tick of
// the coarse clock); end of file without a goodbye means the peer died.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "transports/shm/shm_setup.h"
#include "transports/entry_pool.h"
#include "transports/transport.h"

namespace gccl::shm {

struct ShmTuning {
  size_t ringBytes = 1 << 20;       // ordinary messages, per direction (a power of two)
  size_t asyncRingBytes = 1 << 18;  // asynchronous traffic, per direction
  size_t cmaMinBytes = 64 << 10;    // single-copy from this size on
  bool cma = true;                  // false: always copy through the rings
  // GCCL_SHM_RING_BYTES, GCCL_SHM_CMA_MIN_BYTES and GCCL_SHM_CMA.
  static ShmTuning fromParams();
};

class ShmConnection final : public transport::Connection {
 public:
  // Takes ownership of the endpoint (its socket, doorbells and mapping).
  ShmConnection(const Endpoint& ep, const ShmTuning& tuning, transport::Poller* poller);
  ~ShmConnection() override;
  ShmConnection(const ShmConnection&) = delete;
  ShmConnection& operator=(const ShmConnection&) = delete;

  gcclResult_t start() override;
  const char* transportName() const override { return "shm"; }
  bool needsPolling() const override { return true; }
  gcclResult_t poll(bool* moved) override;
  // One-shot: poll() and the doorbell's event disarm it, so it must be the
  // last call on this connection before the engine sleeps.
  bool armForSleep() override;
  void settle() override { wakePeer(); }

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
  bool hasQueuedSends() const override;
  void abandon() override;
  uint64_t bytesSent() const override { return bytesSent_; }
  uint64_t bytesReceived() const override { return bytesReceived_; }
  uint64_t messagesSent() const override { return messagesSent_; }
  uint64_t messagesReceived() const override { return messagesReceived_; }
  int peer() const override { return ep_.peer; }
  void pausedFrames(std::vector<std::pair<uint64_t, transport::MessageMeta>>* out) const override;

  // Whether messages to the peer may go single-copy (for tests and logs).
  bool singleCopyToPeer() const { return useCma_; }

 private:
  // A ring record's header; the payload of a piece follows it. The record is
  // published by its first word, the stamp, stored last (see the header).
  struct Record {
    uint64_t stamp;  // (its line's index in the ring's stream + 1) << 8 | kind
    uint64_t tag;
    uint64_t metaInfo;
    uint64_t metaCount;
    uint64_t total;   // the message's size
    uint64_t length;  // piece: payload bytes after this header; inline: bytes in the record
    uint64_t offset;  // piece: where its payload goes in the message
    uint64_t addr;    // descriptor: the sender's buffer
    // An inline message (at most 16 bytes) lies where offset and addr are.
  };
  static_assert(sizeof(Record) == 64, "a record header is one cache line");

  struct SendItem {
    transport::Request* req = nullptr;  // null once cancelled
    const uint8_t* data = nullptr;      // null once cancelled: the rest goes as zeros
    size_t len = 0;
    uint64_t tag = 0;
    transport::MessageMeta meta;
    size_t written = 0;
    bool started = false;
    bool single = false;  // goes as a descriptor (single copy)
  };
  struct Waiting {  // a descriptor in the ring, until its ack
    transport::Request* req;
    size_t len;
  };
  struct OutLane {
    RingProducer ring;
    std::deque<SendItem> queue;
    std::deque<Waiting> waiting;
    uint64_t acksSeen = 0;
  };
  struct RecvEntry {
    uint64_t tag = 0;
    uint8_t* buf = nullptr;
    size_t capacity = 0;
    transport::MessageMeta expect;
    transport::Request* req = nullptr;
  };
  enum class InState { kIdle, kPaused, kPieces, kSingleCopy };
  struct InLane {
    RingConsumer ring;
    InState state = InState::kIdle;
    Record rec{};       // the message at the head (paused, or being received)
    RecvEntry* target;  // null while a message is dropped
    uint64_t got = 0;   // bytes of that message received (or dropped)
  };

  gcclResult_t progress(size_t singleCopyBudget, bool* moved);
  gcclResult_t flush(int lane, bool* moved);
  gcclResult_t collectAcks(int lane, bool* moved);
  gcclResult_t drain(int lane, size_t* budget, bool* moved);
  gcclResult_t checkRecord(const InLane& in, const Record& rec) const;
  // Writes `rec` at the head of `o`'s ring, its stamp last (release).
  static void putRecord(OutLane& o, Record* rec, uint32_t kind);
  // The record at the tail of `in`'s ring, once its stamp says it is there.
  static bool peekRecord(const InLane& in, Record* rec);
  static bool recordVisible(const InLane& in);
  // Before `len` payload bytes after the record at the tail are consumed:
  // clears any of their lines that would pass for the stamp one lap ahead.
  static void scrubPayload(InLane& in, uint64_t len);
  gcclResult_t beginMessage(InLane& in, RecvEntry* e);
  gcclResult_t singleCopyStep(InLane& in, size_t* budget, bool* moved);
  void finishSingleCopy(InLane& in);
  RecvEntry* takePosted(uint64_t tag);
  void releaseEntry(RecvEntry* e);
  // Whether the rings show work this side can do now.
  bool workVisible();
  void wakePeer();
  gcclResult_t readControl();
  gcclResult_t onControlEof();
  gcclResult_t checkDeparted();
  gcclResult_t sendControl(uint32_t type, const char* payload, size_t len);
  gcclResult_t flushControl();
  gcclResult_t corrupt(const char* what) const;
  // The error that broke the connection for good (broken_), again.
  gcclResult_t failed() const;
  // Free ring bytes the front send needs before it writes anything.
  static size_t minWritable(const SendItem& it, size_t capacity);

  Endpoint ep_;
  ShmTuning tuning_;
  transport::Poller* poller_;
  SharedHeader* shared_;
  bool useCma_;
  OutLane out_[kLanes];
  InLane in_[kLanes];
  std::vector<RecvEntry*> posted_;
  transport::EntryPool<RecvEntry> entries_;
  bool started_ = false;  // registered with the poller
  bool notify_ = false;   // published something the sleeping peer must hear of
  std::string broken_;    // set once the peer died or aborted
  std::deque<std::string> controlOut_;
  bool watchingOut_ = false;
  bool resetSeen_ = false;  // the control socket reported ECONNRESET
  bool socketOpen_ = true;  // false after the peer's end of file
  int64_t lastControlCheckMs_ = 0;
  std::string abortReason_;
  bool peerClosed_ = false;
  int64_t lastPongMs_ = 0;
  std::string peerReport_;
  uint64_t bytesSent_ = 0;
  uint64_t bytesReceived_ = 0;
  uint64_t messagesSent_ = 0;
  uint64_t messagesReceived_ = 0;
};

}  // namespace gccl::shm
