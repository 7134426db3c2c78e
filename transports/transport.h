// The transport interface: moving tagged messages between two ranks.
//
// Shaped like NCCL's network plugin (listen / connect / accept / register
// memory / isend / irecv / test / close) so that the NCCL net plugin is a thin
// adapter, but bidirectional: one Connection carries both directions to one
// peer. Transports know nothing of collectives; the engine above them (src/)
// drives them from its progress thread.
//
// Threading: every call on a Connection comes from the owning communicator's
// progress thread. A Request belongs to its poster until it completes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gccl/gccl.h"

namespace gccl::transport {

// Two words a sender attaches to a message and a receiver checks against
// what it expects: the engine puts the operation's signature (kind, data type,
// reduction, root) and element count there, so that ranks that called
// different collectives, or the same one with different counts, get an error
// instead of silently mixing data. kMetaAny on the receiving side skips the check.
struct MessageMeta {
  uint64_t info = 0;
  uint64_t count = 0;
};
inline constexpr uint64_t kMetaAny = ~0ull;

// Tags with this bit set are asynchronous traffic (answered by a peer's
// progress thread out of program order, e.g. pairwise gossip). Transports
// keep it apart from ordinary messages so that it never queues behind a
// message the peer is not yet ready to receive.
inline constexpr uint64_t kAsyncTagBit = 1ull << 62;

enum class RequestState : int { kIdle = 0, kPending, kDone, kFailed };

// One posted send or receive. Owned by the poster (no allocation per message);
// the transport fills in the outcome.
struct Request {
  RequestState state = RequestState::kIdle;
  size_t bytes = 0;      // receive: size of the message that arrived; send: bytes sent
  MessageMeta peerMeta;  // receive: the sender's meta (also set on a meta mismatch)
  bool metaMismatch = false;
  // Private to the transport while pending.
  size_t pendingParts = 0;
  size_t doneBytes = 0;

  bool done() const { return state == RequestState::kDone; }
  bool failed() const { return state == RequestState::kFailed; }
  bool pending() const { return state == RequestState::kPending; }
};

// Lets a connection ask the progress engine which events it wants on its
// file descriptors. Implemented by the engine.
class Poller {
 public:
  virtual ~Poller() = default;
  // Registers `fd` (or changes its interest) with EPOLLIN/EPOLLOUT bits.
  virtual gcclResult_t watch(int fd, uint32_t events, void* owner) = 0;
  virtual void unwatch(int fd) = 0;
};

// Where connection attempts arrive after a communicator is built: none is
// expected, so the listener turns every one away, keeping what strangers may
// cost bounded. The engine watches pollFd() for readability and calls poll()
// when it is readable and whenever nextDeadlineMs() (monotonic ms, see
// tcp::nowMs) has passed; both from the driver only.
class Listener {
 public:
  virtual ~Listener() = default;
  virtual int pollFd() const = 0;
  virtual void poll() = 0;
  // INT64_MAX when nothing is due.
  virtual int64_t nextDeadlineMs() const = 0;
};

// A bidirectional message channel to one peer.
class Connection {
 public:
  virtual ~Connection() = default;
  // Registers with the poller; called once before the progress thread runs.
  virtual gcclResult_t start() { return gcclSuccess; }
  // Queues `len` bytes at `data` for the peer under `tag`. `data` must stay
  // valid until `req` completes.
  virtual gcclResult_t isend(const void* data, size_t len, uint64_t tag, MessageMeta meta,
                             Request* req) = 0;
  // Posts a receive of at most `capacity` bytes for the message with `tag`.
  // Messages are matched by tag; a message larger than `capacity`, or whose
  // meta differs from `expect` (unless expect.info == kMetaAny), fails the request.
  virtual gcclResult_t irecv(void* data, size_t capacity, uint64_t tag, MessageMeta expect,
                             Request* req) = 0;
  // Withdraws a pending receive (used when an operation fails).
  virtual void cancel(Request* req) = 0;
  // Moves bytes after the poller reported `events` on `fd`. An error means the
  // connection is broken (the peer exited, or sent something invalid);
  // threadLastError() says which.
  virtual gcclResult_t onEvents(int fd, uint32_t events) = 0;
  // Best effort, never blocking: tells the peer this rank is aborting, and why.
  virtual void sendAbortNotice(const char* reason) = 0;
  // Best effort: tells the peer this rank destroyed its communicator normally.
  virtual void sendCloseNotice() = 0;
  // The peer's abort reason, once one arrived ("" otherwise).
  virtual const std::string& peerAbortReason() const = 0;
  // True once the peer said it closed normally (its later EOF is no error).
  virtual bool peerClosed() const = 0;
  // Liveness probe: the peer's progress thread answers; lastPongMs() moves
  // (monotonic ms) when the answer arrives. A stopped process never answers.
  virtual gcclResult_t sendPing() = 0;
  virtual int64_t lastPongMs() const = 0;
  // Frames accepted by isend (and completed) but not yet written: the
  // engine waits for them before it says goodbye (emulated latency holds them).
  virtual bool hasQueuedSends() const { return false; }
  // Bytes moved in each direction, for counters and progress tracking.
  virtual uint64_t bytesSent() const = 0;
  virtual uint64_t bytesReceived() const = 0;
  virtual int peer() const = 0;
  // Messages that arrived but wait for a receive to be posted (tag and meta):
  // lets the engine spot a peer that called a different operation.
  virtual void pausedFrames(std::vector<std::pair<uint64_t, MessageMeta>>* out) const { (void)out; }
};

}  // namespace gccl::transport
