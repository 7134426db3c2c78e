#include "core/op.h"

#include <cinttypes>
#include <cstdio>

#include "base/check.h"
#include "core/engine.h"

namespace gccl {

namespace {
const char* typeName(unsigned t) {
  static const char* kNames[] = {"int8",   "uint8",   "int32",   "uint32",  "int64",
                                 "uint64", "float16", "float32", "float64", "bfloat16"};
  return t < 10 ? kNames[t] : "?";
}
const char* redName(unsigned op) {
  static const char* kNames[] = {"sum", "prod", "max", "min", "avg"};
  return op < 5 ? kNames[op] : "?";
}
}  // namespace

const char* dataTypeName(gcclDataType_t type) {
  return typeName(static_cast<unsigned>(type));
}

transport::MessageMeta makeMeta(OpKind kind, gcclDataType_t type, gcclRedOp_t op, int root,
                                uint64_t count) {
  transport::MessageMeta m;
  m.info = static_cast<uint64_t>(kind) | static_cast<uint64_t>(type & 0xff) << 8 |
           static_cast<uint64_t>(op & 0xff) << 16 |
           static_cast<uint64_t>(static_cast<uint32_t>(root)) << 32;
  m.count = count;
  return m;
}

transport::MessageMeta makeGossipMeta(OpKind kind, gcclDataType_t type, uint64_t step,
                                      uint32_t graphFingerprint, uint64_t count,
                                      uint16_t codecSignature) {
  transport::MessageMeta m;
  m.info = static_cast<uint64_t>(kind) | static_cast<uint64_t>(type & 0xff) << 8 |
           (step & 0xffff) << 16 | static_cast<uint64_t>(graphFingerprint) << 32;
  m.count = withCodecSignature(count, codecSignature);
  return m;
}

uint64_t withCodecSignature(uint64_t count, uint16_t codecSignature) {
  return count | static_cast<uint64_t>(codecSignature) << kCodecSignatureShift;
}

namespace {
bool isGossipKind(OpKind kind) {
  return kind == OpKind::kPushSum || kind == OpKind::kNeighborAverage;
}
constexpr uint64_t kCountMask = (uint64_t{1} << kCodecSignatureShift) - 1;
}  // namespace

std::string mismatchHint(const transport::MessageMeta& theirs, const transport::MessageMeta& mine) {
  auto kind = static_cast<OpKind>(theirs.info & 0xff);
  if (kind != static_cast<OpKind>(mine.info & 0xff)) return "";
  if ((isGossipKind(kind) || kind == OpKind::kPairwise) &&
      (theirs.count & kCountMask) == (mine.count & kCountMask) &&
      (theirs.count >> kCodecSignatureShift) != (mine.count >> kCodecSignatureShift))
    return " (the ranks use different codecs or codec settings)";
  if (theirs.count != mine.count) return "";
  if (isGossipKind(kind) && (theirs.info >> 32) != (mine.info >> 32))
    return " (the ranks use different topologies for this step: their graphs differ)";
  if ((kind == OpKind::kBroadcast || kind == OpKind::kReduce) &&
      (theirs.info >> 32) != (mine.info >> 32))
    return " (the ranks name different roots)";
  return "";
}

const char* opKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kAllReduce:
      return "AllReduce";
    case OpKind::kBroadcast:
      return "Broadcast";
    case OpKind::kReduce:
      return "Reduce";
    case OpKind::kAllGather:
      return "AllGather";
    case OpKind::kReduceScatter:
      return "ReduceScatter";
    case OpKind::kBarrier:
      return "Barrier";
    case OpKind::kSendRecv:
      return "Send/Recv";
    case OpKind::kPushSum:
      return "PushSum";
    case OpKind::kNeighborAverage:
      return "NeighborAverage";
    case OpKind::kPairwise:
      return "PairwiseGossip";
    case OpKind::kShrink:
      return "CommShrink";
    case OpKind::kJoin:
      return "GossipJoin";
  }
  return "unknown operation";
}

std::string describeMeta(const transport::MessageMeta& m) {
  auto kind = static_cast<OpKind>(m.info & 0xff);
  unsigned type = (m.info >> 8) & 0xff, op = (m.info >> 16) & 0xff;
  int root = static_cast<int>(static_cast<uint32_t>(m.info >> 32));
  char buf[160];
  switch (kind) {
    case OpKind::kAllReduce:
    case OpKind::kReduceScatter:
      snprintf(buf, sizeof(buf), "%s(count=%" PRIu64 ", %s, %s)", opKindName(kind), m.count,
               typeName(type), redName(op));
      break;
    case OpKind::kReduce:
      snprintf(buf, sizeof(buf), "%s(count=%" PRIu64 ", %s, %s, root=%d)", opKindName(kind),
               m.count, typeName(type), redName(op), root);
      break;
    case OpKind::kBroadcast:
      snprintf(buf, sizeof(buf), "%s(count=%" PRIu64 ", %s, root=%d)", opKindName(kind), m.count,
               typeName(type), root);
      break;
    case OpKind::kAllGather:
    case OpKind::kJoin:
      snprintf(buf, sizeof(buf), "%s(count=%" PRIu64 ", %s)", opKindName(kind), m.count,
               typeName(type));
      break;
    case OpKind::kPushSum:
    case OpKind::kNeighborAverage:
      snprintf(buf, sizeof(buf),
               "%s(count=%" PRIu64 ", %s, step=%u mod 65536, graph %08x, codec %04x)",
               opKindName(kind), m.count & kCountMask, typeName(type),
               static_cast<unsigned>((m.info >> 16) & 0xffff), static_cast<unsigned>(m.info >> 32),
               static_cast<unsigned>(m.count >> kCodecSignatureShift));
      break;
    default:
      snprintf(buf, sizeof(buf), "%s", opKindName(kind));
  }
  return buf;
}

std::string Op::describe() const {
  if (!isCollective()) return opKindName(kind_);
  return describeMeta(meta_) + " #" + std::to_string(seq);
}

void Op::track(Transfer* t) {
  // Drop finished transfers now and then so long pipelines keep this small.
  if (live_.size() >= 64 && live_.size() >= 2 * liveAfterCompact_) {
    size_t keep = 0;
    for (Transfer* x : live_)
      if (x->pending()) live_[keep++] = x;
    live_.resize(keep);
    liveAfterCompact_ = keep;
  }
  live_.push_back(t);
}

gcclResult_t Op::postSend(OpContext& ctx, int peer, const void* data, size_t bytes, uint64_t tag,
                          Transfer* t) {
  t->peer = peer;
  t->isRecv = false;
  t->tag = tag;
  ctx_ = &ctx;
  transport::Connection* c = postable(ctx, peer, t);
  if (c == nullptr) {  // the peer failed (fault-tolerant mode): nothing to post
    t->req.state = transport::RequestState::kFailed;
    t->lost = true;
    return gcclSuccess;
  }
  track(t);
  return c->isend(data, bytes, tag, meta_, &t->req);
}

gcclResult_t Op::postRecv(OpContext& ctx, int peer, void* data, size_t bytes, uint64_t tag,
                          Transfer* t, bool checkMeta) {
  t->peer = peer;
  t->isRecv = true;
  t->tag = tag;
  ctx_ = &ctx;
  transport::Connection* c = postable(ctx, peer, t);
  if (c == nullptr) {
    t->req.state = transport::RequestState::kFailed;
    t->lost = true;
    return gcclSuccess;
  }
  track(t);
  transport::MessageMeta expect = meta_;
  if (!checkMeta) expect.info = transport::kMetaAny;
  return c->irecv(data, bytes, tag, expect, &t->req);
}

transport::Connection* Op::postable(OpContext& ctx, int peer, Transfer* t) {
  t->inc = ctx.faultTolerant ? ctx.engine->incarnationOf(peer) : 0;
  return hasSequence() ? ctx.connAt(peer, seq) : ctx.conn(peer);
}

void Op::peerFailed(OpContext& ctx, int peer) {
  transport::Connection* c = ctx.engine->connection(peer);
  for (Transfer* t : live_) {
    if (t->peer != peer) continue;
    if (t->req.failed()) t->lost = true;
    if (!t->pending()) continue;
    if (t->isRecv && c != nullptr) c->cancel(&t->req);
    t->req.state = transport::RequestState::kFailed;
    t->lost = true;
  }
}

gcclResult_t Op::checkTransfer(const Transfer& t) {
  if (!t.req.failed()) return gcclSuccess;
  if (ctx_ != nullptr && ctx_->lostToFailure(t)) {
    lostPeer_ = true;
    return setError(gcclRemoteError,
                    "%s: rank %d failed (%s); exact collectives need every rank: shrink the "
                    "communicator first",
                    describe().c_str(), t.peer, ctx_->failureReason(t.peer).c_str());
  }
  if (t.req.metaMismatch)
    return setError(gcclInvalidUsage,
                    "mismatched collective calls: rank %d called %s while this rank called %s%s",
                    t.peer, describeMeta(t.req.peerMeta).c_str(), describeMeta(meta_).c_str(),
                    mismatchHint(t.req.peerMeta, meta_).c_str());
  return setError(gcclRemoteError, "%s: transfer with rank %d failed", describe().c_str(), t.peer);
}

void Op::pendingTransfers(std::vector<const Transfer*>* out) {
  size_t keep = 0;
  for (Transfer* t : live_) {
    if (!t->pending()) continue;
    live_[keep++] = t;
    out->push_back(t);
  }
  live_.resize(keep);
}

void Op::cancelPending(OpContext& ctx) {
  for (Transfer* t : live_)
    if (t->pending() && t->isRecv && ctx.conn(t->peer) != nullptr)
      ctx.conn(t->peer)->cancel(&t->req);
  live_.clear();
}

}  // namespace gccl
