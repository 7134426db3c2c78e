// The transport interface: moving tagged messages between two ranks.
//
// A Transport (one per kind per communicator: tcp, shm, ...) says whether it
// can run here, publishes an address blob that bootstrap hands to every
// rank, says from two blobs whether two ranks can use it between them, and
// connects to the peers the registry (registry.h) chose it for. Each peer
// gets one Connection, which carries both directions.
//
// A Connection is shaped like NCCL's network plugin (listen / connect /
// accept / regMr / isend / irecv / test / close), so that the NCCL net plugin
// is a thin adapter: memory registration gives a region that sends and
// receives take; completion is read from the Request (test); progress comes
// from fd readiness (onEvents, for transports that can sleep on an fd) or
// from poll() (for polled transports: shared memory rings, verbs CQs, a CUDA
// proxy), or both. Beside data, every connection has a control channel that
// never waits behind data: liveness probes and answers, an abort notice with
// its reason, and a goodbye. Transports know nothing of collectives; the
// engine above them (src/) drives them.
//
// Threading: every call on a Connection comes from the owning communicator's
// driver (its progress thread or a caller driving the loop). A Request
// belongs to its poster until it completes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <memory>

#include "base/net_if.h"
#include "gccl/gccl.h"
#include "transports/tags.h"

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

// Memory a buffer lives in.
enum class MemoryType : uint8_t { kHost = 0, kCuda = 1 };
const char* memoryTypeName(MemoryType type);

// A region registered with a connection (Connection::registerMemory): the
// transport may pin, map or describe it once, so that transfers inside it
// need no per-message set-up.
struct MemoryRegion {
  void* base = nullptr;
  size_t bytes = 0;
  MemoryType type = MemoryType::kHost;
  uint64_t transportData[2] = {0, 0};  // private to the transport that registered it
};

enum class RequestState : int { kIdle = 0, kPending, kDone, kFailed };

// One posted send or receive. Owned by the poster (no allocation per message);
// the transport fills in the outcome.
struct Request {
  RequestState state = RequestState::kIdle;
  size_t bytes = 0;      // receive: size of the message that arrived; send: bytes sent
  MessageMeta peerMeta;  // receive: the sender's meta (also set on a meta mismatch)
  bool metaMismatch = false;
  // Private to the transport that holds it while pending (counters, slots);
  // the engine never reads it.
  uint64_t priv[2] = {0, 0};

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
  // What this rank is doing, as opaque bytes the engine encodes: a
  // connection sends it with every liveness answer (at most
  // kMaxLivenessReportBytes), so that a peer waiting on this rank can tell
  // "alive but has not called the operation" from "alive and waiting".
  virtual const std::string& livenessReport() const {
    static const std::string kNone;
    return kNone;
  }
};
inline constexpr size_t kMaxLivenessReportBytes = 512;

struct Arrival;

// Where connection attempts arrive after a communicator is built. None is
// expected, except (fault-tolerant communicators) from a restarted rank
// rejoining (Transport::rejoin); the listener turns every other one away,
// keeping what strangers may cost bounded. The engine watches pollFd() for
// readability and calls poll() when it is readable and whenever
// nextDeadlineMs() (monotonic ms, see base/clock.h) has passed; both from the
// driver only.
class Listener {
 public:
  virtual ~Listener() = default;
  virtual int pollFd() const = 0;
  virtual void poll() = 0;
  // INT64_MAX when nothing is due.
  virtual int64_t nextDeadlineMs() const = 0;
  // After poll(): hands over one connection a restarted rank completed
  // (fault-tolerant communicators only), false when there is none.
  virtual bool takeArrival(Arrival* out) {
    (void)out;
    return false;
  }
};

// A bidirectional message channel to one peer.
class Connection {
 public:
  virtual ~Connection() = default;
  // Registers with the poller; called once before the progress thread runs.
  virtual gcclResult_t start() { return gcclSuccess; }
  // The transport's name ("tcp", "shm", "loopback"), for logs and errors.
  virtual const char* transportName() const = 0;

  // ---- memory ----
  // Describes [ptr, ptr + bytes) of `type` for transfers (*out is filled).
  // The default takes host memory as it is and refuses device memory.
  virtual gcclResult_t registerMemory(void* ptr, size_t bytes, MemoryType type, MemoryRegion* out);
  virtual void deregisterMemory(MemoryRegion* region) { *region = MemoryRegion(); }
  // Transfers of `len` bytes at `offset` inside a registered region.
  virtual gcclResult_t isendRegion(const MemoryRegion& region, size_t offset, size_t len,
                                   uint64_t tag, MessageMeta meta, Request* req);
  virtual gcclResult_t irecvRegion(const MemoryRegion& region, size_t offset, size_t capacity,
                                   uint64_t tag, MessageMeta expect, Request* req);

  // ---- progress ----
  // Polled transports return true: the engine then calls poll() on every
  // pass of its loop (and spins or sleeps by its adaptive policy).
  virtual bool needsPolling() const { return false; }
  // Moves what can move without waiting; *moved says whether anything did.
  // An error means the connection is broken (threadLastError() says why).
  virtual gcclResult_t poll(bool* moved) {
    *moved = false;
    return gcclSuccess;
  }
  // Before the engine sleeps: a polled transport that can be woken (an fd
  // its peer signals) arms it and returns true; false means it cannot sleep
  // now (work is pending) or has no way to be woken (keep polling).
  virtual bool armForSleep() { return !needsPolling(); }
  // When the engine's driver leaves the loop (its caller's request is done):
  // a polled transport that defers signalling its peer (a wake-up owed for
  // data it published) delivers it now, as nothing may poll it for a while.
  virtual void settle() {}

  // ---- data ----
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
  // ---- control channel (never waits behind data) ----
  // Best effort, never blocking: tells the peer this rank is aborting, and why.
  virtual void sendAbortNotice(const char* reason) = 0;
  // Best effort: tells the peer this rank destroyed its communicator normally.
  virtual void sendCloseNotice() = 0;
  // The peer's abort reason, once one arrived ("" otherwise).
  virtual const std::string& peerAbortReason() const = 0;
  // True once the peer said it closed normally (its later EOF is no error).
  virtual bool peerClosed() const = 0;
  // Called again and again after sendCloseNotice, before the connection is
  // destroyed, until it returns true or a deadline passes: the transport
  // finishes writing what it accepted, stops sending, discards what still
  // arrives and answers true once the peer has everything this side sent.
  // A socket closed with unread bytes resets the connection, and a reset
  // throws away what the peer had not read yet; this avoids that. A broken
  // connection answers true at once.
  virtual bool settleBeforeClose() { return true; }
  // The peer failed (fault-tolerant mode drops it) and the connection is
  // about to be destroyed: every request still pending on it fails now (the
  // operations that posted them may outlive the connection, as overlap SGP's
  // steps do), and the destructor must not wait for the peer.
  virtual void abandon() = 0;
  // Liveness probe: the peer's progress thread answers; lastPongMs() moves
  // (monotonic ms) when the answer arrives. A stopped process never answers.
  virtual gcclResult_t sendPing() = 0;
  virtual int64_t lastPongMs() const = 0;
  // The peer's Poller::livenessReport() carried by its latest answer ("" before any).
  virtual const std::string& peerLivenessReport() const {
    static const std::string kNone;
    return kNone;
  }
  // Frames accepted by isend (and completed) but not yet written: the
  // engine waits for them before it says goodbye (emulated latency holds them).
  virtual bool hasQueuedSends() const { return false; }
  // Payload bytes moved in each direction since the connection was created,
  // for counters and progress tracking (frame headers and control frames are
  // not counted).
  virtual uint64_t bytesSent() const = 0;
  virtual uint64_t bytesReceived() const = 0;
  // Messages since the connection was created: a send counts once its
  // request completed (isend), a receive once its request completed with the
  // message (irecv); failed and cancelled requests do not count. Written by
  // the driver alone, as plain counters: only the driver reads them (the
  // engine publishes them for other threads, see Engine::peerCounters).
  virtual uint64_t messagesSent() const = 0;
  virtual uint64_t messagesReceived() const = 0;
  virtual int peer() const = 0;
  // Messages that arrived but wait for a receive to be posted (tag and meta):
  // lets the engine spot a peer that called a different operation.
  virtual void pausedFrames(std::vector<std::pair<uint64_t, MessageMeta>>* out) const { (void)out; }
};

// A connection from a restarted rank that a listener accepted after set-up.
// Not started yet: the engine calls start() when it adopts it.
struct Arrival {
  int peer = -1;
  uint32_t incarnation = 0;
  std::unique_ptr<Connection> conn;
};

// What every transport of a communicator knows about it.
struct TransportContext {
  int rank = 0;
  int nranks = 1;
  uint64_t commHash = 0;     // names the communicator (from the unique id)
  uint8_t secret[32] = {};   // every connection proves it knows it
  Poller* poller = nullptr;  // the engine: fds to watch, the liveness report
};

// One kind of transport for one communicator.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual const char* name() const = 0;
  // Whether it can run on this machine at all; why not in *why.
  virtual bool viable(std::string* why) = 0;
  // Starts accepting peers and describes how to reach this rank (at most
  // kMaxAddressBlobBytes; bootstrap gives every rank everyone's).
  virtual gcclResult_t listen(std::string* blob) = 0;
  // Whether two ranks that published `mine` and `theirs` can use this
  // transport between them. Must be symmetric, so that both choose alike.
  virtual bool canReach(const std::string& mine, const std::string& theirs) const = 0;
  // Connects to each rank of `peers` (blobs[r] is rank r's blob; every such
  // peer chose this transport for this rank too). (*out)[r] is set for each.
  virtual gcclResult_t connect(const std::vector<int>& peers, const std::vector<std::string>& blobs,
                               int64_t deadlineMs,
                               std::vector<std::unique_ptr<Connection>>* out) = 0;
  // A restarted rank (incarnation >= 1): connects to each rank of `peers` of a
  // running communicator. (*out)[r] is set for each peer that took the
  // connection and left null for one that could not be reached (gone or not
  // answering: each peer's try is bounded, at most `perPeerMs`, overall by
  // deadlineMs); an error only for something else (bad blob).
  virtual gcclResult_t rejoin(const std::vector<int>& peers, const std::vector<std::string>& blobs,
                              uint32_t incarnation, int64_t perPeerMs, int64_t deadlineMs,
                              std::vector<std::unique_ptr<Connection>>* out);
  // After connect (or rejoin): what keeps watching for latecomers on this
  // transport's listening endpoint (the engine drives it), or null.
  virtual std::unique_ptr<Listener> takeListener() { return nullptr; }
  // Where this rank listens, for logs ("127.0.0.1:40123 on lo").
  virtual std::string describe() const { return name(); }
  // After listen: the socket address and interface peers reach this rank
  // at, for a transport that listens on one (false otherwise).
  virtual bool socketAddress(SockAddr* addr, std::string* ifname) const {
    (void)addr;
    (void)ifname;
    return false;
  }
};
inline constexpr size_t kMaxAddressBlobBytes = 1024;

// Calls settleBeforeClose on each connection (nulls skipped) until all are
// settled or `deadlineMs` (nowMs()) passes; sleeps a little between rounds.
void settleBeforeClose(Connection* const* conns, size_t n, int64_t deadlineMs);

}  // namespace gccl::transport
