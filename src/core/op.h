// An operation run by the progress engine: a collective, or a point-to-point
// transfer. Ops are small state machines: start() posts the first transfers,
// progress() is called after every batch of events and posts what has become
// possible, until it reports done. They run on the progress thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/small_vector.h"
#include "core/request.h"
#include "gccl/gccl.h"
#include "transports/tags.h"
#include "transports/transport.h"

namespace gccl {

class Engine;
class Executor;

// Tunables an op reads, resolved once at communicator creation.
struct OpParams {
  size_t chunkBytes = 512 << 10;
  size_t ringThresholdBytes = 256 << 10;
  int allReduceAlgo = 0;  // 0 auto, 1 ring, 2 recursive doubling
};

// Fault-tolerant mode: a restarted rank that joins at a collective, and the
// rank that gives it its model there (membership.h).
struct RankJoin {
  int joiner = -1;
  int donor = -1;
};

struct OpContext {
  Engine* engine = nullptr;
  int rank = 0;
  int nranks = 1;
  const OpParams* params = nullptr;
  bool faultTolerant = false;  // GCCL_FAULT_TOLERANT: peers may fail (membership.h)
  int64_t timeoutMs = 0;       // the communicator's timeout
  // Where the op's arithmetic and copies go (executor.h), in the memory type
  // of its buffers: ops never call the kernels or memcpy themselves.
  Executor* exec = nullptr;
  // The connection to `peer` (a loopback one for this rank itself); null
  // once the peer failed in fault-tolerant mode.
  transport::Connection* conn(int peer) const;
  // For collective `seq` (fault-tolerant mode): null also when the
  // connection is to another incarnation of `peer` than the one the view of
  // `seq` holds (a restarted rank is not the process that step counted on).
  transport::Connection* connAt(int peer, uint64_t seq) const;
  // Whether a failed transfer was lost to a peer's failure (fault-tolerant
  // mode): the peer failed, or the process it was posted to has since been
  // replaced by a restarted one.
  bool lostToFailure(const struct Transfer& t) const;
  // Fault-tolerant mode: whether `peer` failed (as this rank knows it), and why.
  bool peerFailed(int peer) const;
  const std::string& failureReason(int peer) const;
  // The ranks alive for collective `seq` as the survivors agreed (one flag
  // per rank), or null while every rank is.
  const std::vector<uint8_t>* aliveFor(uint64_t seq) const;
  // The ranks that join at collective `seq` (their first step takes the
  // model from their donor instead of mixing), each with its donor.
  void joinsAt(uint64_t seq, std::vector<RankJoin>* out) const;
  // A buffer of at least `bytes` of `type` memory, 64-byte aligned, from the
  // engine's scratch pool and valid while this op runs (one collective runs
  // at a time). The first form says why it failed; the second returns null.
  gcclResult_t scratch(size_t bytes, transport::MemoryType type, void** out) const;
  void* scratch(size_t bytes, transport::MemoryType type = transport::MemoryType::kHost) const;
};

// One posted send or receive of an op.
struct Transfer {
  transport::Request req;
  int peer = -1;
  bool isRecv = false;
  uint64_t tag = 0;
  uint32_t inc = 0;   // fault-tolerant mode: the peer's incarnation when posted
  bool lost = false;  // failed because the peer did (Op::peerFailed, or no connection)
  bool pending() const { return req.pending(); }
  bool done() const { return req.done(); }
};

// The wire signature of a call: what kind, type, reduction, root (see
// transport::MessageMeta). Receivers compare it to their own.
enum class OpKind : uint8_t {
  kAllReduce = 1,
  kBroadcast,
  kReduce,
  kAllGather,
  kReduceScatter,
  kBarrier,
  kSendRecv,
  kPushSum,
  kNeighborAverage,
  kPairwise,
  kShrink,  // fault-tolerant mode's agreement on a shrink (membership.h): local, no sequence
  kJoin     // a rejoined rank's first step: takes its model from a donor's gossip step
};
// A joiner's step pairs with whatever gossip step its donor runs at that
// sequence number: its signature is never compared.
inline bool isJoinMeta(const transport::MessageMeta& meta) {
  return static_cast<OpKind>(meta.info & 0xff) == OpKind::kJoin;
}
transport::MessageMeta makeMeta(OpKind kind, gcclDataType_t type, gcclRedOp_t op, int root,
                                uint64_t count);
// Gossip steps carry, instead of a reduction and a root, the step's low 16
// bits and the fingerprint of the step's graph (Topology::fingerprint).
// A compressed step also carries its codec's signature (WireCodec) in the
// top 16 bits of the count (counts stay below 2^46, kMaxBufferBytes), so
// ranks whose codecs differ get an error; 0 for uncompressed messages.
transport::MessageMeta makeGossipMeta(OpKind kind, gcclDataType_t type, uint64_t step,
                                      uint32_t graphFingerprint, uint64_t count,
                                      uint16_t codecSignature = 0);
inline constexpr int kCodecSignatureShift = 48;
uint64_t withCodecSignature(uint64_t count, uint16_t codecSignature);
std::string describeMeta(const transport::MessageMeta& meta);
// What differs between two signatures of the same collective, as a hint for
// the error ("" when nothing specific can be said).
std::string mismatchHint(const transport::MessageMeta& theirs, const transport::MessageMeta& mine);
const char* opKindName(OpKind kind);
const char* dataTypeName(gcclDataType_t type);

// Matching tags (layout in transports/tags.h).
using transport::collectiveTag;
using transport::kTagStepBits;
using transport::p2pTag;

// Splits `total` items into `parts` nearly equal pieces; piece i starts here.
inline size_t splitPoint(size_t total, size_t parts, size_t i) {
  return static_cast<size_t>((static_cast<unsigned __int128>(total) * i) / parts);
}

// A long-lived handler the engine polls on every pass, beside the running
// batch: it answers requests other ranks send unprompted (pairwise gossip).
// Registered and removed through ops, so it runs on the progress thread only.
class Service {
 public:
  virtual ~Service() = default;
  virtual gcclResult_t poll(OpContext& ctx) = 0;
  // True while it has work it could not do yet (e.g. a lock was busy): the
  // engine then polls it again within a millisecond instead of sleeping.
  virtual bool wantsRetry() const { return false; }
  // Withdraws the receives it has posted (before removal, or when the
  // communicator breaks).
  virtual void cancel(OpContext& ctx) = 0;
};

class Op {
 public:
  Op(OpKind kind, transport::MessageMeta meta, gcclRequest* request)
      : kind_(kind), meta_(meta), request_(request) {}
  virtual ~Op() = default;
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  virtual gcclResult_t start(OpContext& ctx) = 0;
  virtual gcclResult_t progress(OpContext& ctx, bool* done) = 0;

  OpKind kind() const { return kind_; }
  // Issued by every rank in the same order (matched by sequence number).
  bool isCollective() const {
    return kind_ != OpKind::kSendRecv && kind_ != OpKind::kPairwise && kind_ != OpKind::kShrink;
  }
  // A collective with a sequence number and a signature of its own (not a
  // local wait on transfers an earlier op posted).
  bool hasSequence() const { return isCollective() && meta_.info != 0; }
  gcclRequest* request() const { return request_; }
  const transport::MessageMeta& meta() const { return meta_; }
  // Point-to-point ops report the memory they read or write, so a group can
  // give a send its own copy when a receive of the same group overwrites it.
  virtual const void* sendRegion(size_t* bytes) const {
    *bytes = 0;
    return nullptr;
  }
  virtual const void* recvRegion(size_t* bytes) const {
    *bytes = 0;
    return nullptr;
  }
  // Sends a copy of the buffer taken now (through `exec`, in the buffer's
  // memory type); a failure to take it fails the op when it starts.
  virtual void detachSendBuffer(const std::shared_ptr<Executor>&) {}
  // Transfers of this op still pending (appended to *out).
  void pendingTransfers(std::vector<const Transfer*>* out);
  // Fault-tolerant mode: `peer` failed and its connection is about to close.
  // Pending transfers with it are withdrawn and marked failed; the op sees
  // them in its next progress(). An op that can go on without the peer (a
  // gossip step) overrides tolerant().
  void peerFailed(OpContext& ctx, int peer);
  // Whether this op completes without peers that failed (fault-tolerant
  // mode), rather than failing.
  virtual bool tolerant() const { return false; }
  // Called just before start(), with the engine's view of the job: an op
  // may choose its graph (and its signature) by the ranks alive for its
  // sequence number.
  virtual void bindView(OpContext& ctx) { (void)ctx; }
  // Set when the op failed because a peer failed (checkTransfer).
  bool lostPeer() const { return lostPeer_; }
  // Withdraws pending receives (the op failed or the communicator aborts).
  void cancelPending(OpContext& ctx);
  std::string describe() const;
  uint64_t seq = 0;  // collective sequence number

 protected:
  gcclResult_t postSend(OpContext& ctx, int peer, const void* data, size_t bytes, uint64_t tag,
                        Transfer* t);
  gcclResult_t postRecv(OpContext& ctx, int peer, void* data, size_t bytes, uint64_t tag,
                        Transfer* t, bool checkMeta = true);
  // The connection a transfer of this op goes on (connAt for a collective),
  // null when the peer failed; notes the peer's incarnation in *t.
  transport::Connection* postable(OpContext& ctx, int peer, Transfer* t);
  // Counts a transfer posted elsewhere (by an earlier op) as one this op waits
  // on, for liveness probes and timeout messages.
  void watch(Transfer* t) { track(t); }
  // Turns a failed transfer into a clear error; gcclSuccess if it is fine.
  gcclResult_t checkTransfer(const Transfer& t);

  OpKind kind_;
  transport::MessageMeta meta_;

 private:
  void track(Transfer* t);
  gcclRequest* request_;
  bool lostPeer_ = false;
  const OpContext* ctx_ = nullptr;  // set by the first post: failed peers' reasons
  SmallVector<Transfer*, 8> live_;
  size_t liveAfterCompact_ = 32;
};

}  // namespace gccl
