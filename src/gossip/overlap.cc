// Overlap SGP: PushSum whose messages may be folded in up to `staleness`
// steps after they were sent, so computation overlaps communication.
//
// Start(k) keeps this rank's own share at once (x <- a_ii x, w <- a_ii w),
// sends the snapshot of x and w to the out-peers, and posts the receives of
// step k into buffers of its own; it returns without waiting. Finish(k) folds
// in every message that has arrived (x += a_ij y_j, w += a_ij w_j, each with
// the weight of the step it was sent at) and blocks only until every message
// of the steps up to k - staleness is in. Nothing is dropped: mass in flight
// is counted once, on arrival, so the sums of x and of w over ranks are
// conserved whenever nothing is in flight (and always, counting what is).
//
// With a codec, Start sends encode(x) and keeps x - (sum_k a_ki) q, where q
// is its own decoding of what it sent; Finish folds in a_ij times the
// decoding of each message (lattice: against x as it is then), so the sums
// stay conserved as above.
//
// Fault-tolerant mode: PostOp takes the step's graph from the survivors'
// agreement (bindView), so Start keeps its own share only after the op has
// started; WaitOp settles transfers with failed peers instead of failing, and
// the next Finish adds back the share an out-peer that failed did not take
// and folds nothing of a failed in-peer's incomplete message. At the step
// where a restarted rank joins, its donor counts it as one more out-peer
// (gossip/join.h): it takes a part of the donor's own share, and what it did
// not take comes back like any out-peer's.
//
// Threads: x and w are touched only by the caller, inside these calls. The
// progress thread posts the transfers (PostOp) and, on Finish, records which
// messages arrived (WaitOp); the caller reads those records after the op
// completes, so every hand-over goes through a request's completion.
#include <algorithm>
#include <list>
#include <mutex>
#include <set>
#include <string>
#include <memory>
#include <vector>

#include "core/api_call.h"
#include "core/executor.h"
#include "core/request.h"
#include "core/wire_codec.h"
#include "core/handle_registry.h"
#include "gossip/gossip_checks.h"
#include "gossip/join.h"
#include "gossip/topology.h"

struct gcclGossip;

namespace gccl {

namespace {

// Everything of one started step.
struct StepRecord {
  uint64_t step = 0;
  uint64_t seq = 0;
  std::vector<PeerWeight> out, in;
  ExecBuffer snapshot;   // what was sent; lives until the sends complete
  size_t sentBytes = 0;  // of snapshot (an encoding may be shorter than the buffer)
  double weightSent = 0;
  std::vector<Transfer> sends;    // per out-peer: weight, data
  std::vector<Transfer> recvs;    // per in-peer: weight, data
  std::vector<double> weightsIn;  // per in-peer
  ExecBuffer received;            // in.size() x message capacity, in x's memory type
  // Written by WaitOp on the progress thread, read by the caller after it completes.
  std::vector<char> arrived;  // per in-peer: weight and data both in
  bool sendsDone = false;
  std::vector<char> folded;  // caller only
  // Fault-tolerant mode. The graph is chosen when PostOp starts (bindView),
  // so self and the peer lists are written there, before the caller reads
  // them. Written by WaitOp: an in-peer that failed before its message came
  // (nothing to fold), an out-peer that failed before it took its message
  // (part 0 the weight, 1 the data: that share stays here).
  double self = 1;
  std::vector<char> lost;         // per in-peer
  std::vector<char> undelivered;  // per out-peer and part, as sends
  std::vector<char> keptBack;     // caller only: undelivered shares already kept
  // Rejoin: a header to each joiner this rank donates to (its other
  // messages are an out-peer's); written by PostOp, checked by WaitOp.
  std::vector<int> joiners;
  std::vector<uint8_t> joinHeaders;
  std::vector<Transfer> joinSends;
};

// Sizes a record's per-peer vectors for its out- and in-peers.
void sizeRecord(StepRecord* r) {
  r->sends.assign(2 * r->out.size(), Transfer());
  r->recvs.assign(2 * r->in.size(), Transfer());
  r->weightsIn.assign(r->in.size(), 0);
  r->arrived.assign(r->in.size(), 0);
  r->folded.assign(r->in.size(), 0);
  r->lost.assign(r->in.size(), 0);
  r->undelivered.assign(2 * r->out.size(), 0);
  r->keptBack.assign(2 * r->out.size(), 0);
}

class PostOp final : public Op {
 public:
  // Messages of at most `capacity` bytes; this rank's has r->sentBytes.
  PostOp(StepRecord* r, transport::MessageMeta meta, size_t capacity,
         std::shared_ptr<Topology> topo, const std::shared_ptr<Executor>& exec, MemoryType mem,
         gcclRequest* req)
      : Op(OpKind::kPushSum, meta, req),
        r_(r),
        bytes_(capacity),
        topo_(std::move(topo)),
        exec_(exec),
        mem_(mem) {}
  bool tolerant() const override { return true; }
  // The graph of the ranks alive for this sequence number (fault-tolerant
  // mode): peers, self weight and signature follow it.
  void bindView(OpContext& ctx) override {
    const std::vector<uint8_t>* alive = ctx.aliveFor(seq);
    if (alive == nullptr) return;
    std::shared_ptr<Topology> restricted;
    if (topo_->restrictedTo(*alive, &restricted) != gcclSuccess) {
      bindError_ = threadLastError();
      return;
    }
    restricted->outPeers(r_->step, ctx.rank, &r_->out, &r_->self);
    restricted->inPeers(r_->step, ctx.rank, &r_->in);
    addJoiners(ctx);
    sizeRecord(r_);
    if (r_->received.size() < r_->in.size() * bytes_ &&
        r_->received.allocate(exec_, r_->in.size() * bytes_, mem_) != gcclSuccess)
      bindError_ = threadLastError();
    meta_.info = (meta_.info & 0xffffffffull) |
                 (static_cast<uint64_t>(restricted->fingerprint(r_->step)) << 32);
  }
  gcclResult_t start(OpContext& ctx) override {
    GCCL_REQUIRE(bindError_.empty(), gcclInternalError, "%s", bindError_.c_str());
    for (size_t i = 0; i < r_->joiners.size(); ++i)
      GCCL_CHECK(postSend(ctx, r_->joiners[i], r_->joinHeaders.data() + i * kJoinHeaderBytes,
                          kJoinHeaderBytes, collectiveTag(seq, kJoinHeaderStep),
                          &r_->joinSends[i]));
    for (size_t j = 0; j < r_->in.size(); ++j) {
      GCCL_CHECK(postRecv(ctx, r_->in[j].peer, &r_->weightsIn[j], sizeof(double),
                          collectiveTag(seq, 0), &r_->recvs[2 * j]));
      GCCL_CHECK(postRecv(ctx, r_->in[j].peer, r_->received.data() + j * bytes_, bytes_,
                          collectiveTag(seq, 1), &r_->recvs[2 * j + 1]));
    }
    for (size_t k = 0; k < r_->out.size(); ++k) {
      GCCL_CHECK(postSend(ctx, r_->out[k].peer, &r_->weightSent, sizeof(double),
                          collectiveTag(seq, 0), &r_->sends[2 * k]));
      GCCL_CHECK(postSend(ctx, r_->out[k].peer, r_->snapshot.data(), r_->sentBytes,
                          collectiveTag(seq, 1), &r_->sends[2 * k + 1]));
    }
    return gcclSuccess;
  }
  // The transfers outlive this op: they belong to the step record.
  gcclResult_t progress(OpContext&, bool* done) override {
    *done = true;
    return gcclSuccess;
  }

 private:
  // The joiners this rank donates to at this step: uncompressed, each is an
  // out-peer of weight c = self / (k + 1) and this rank keeps self - k c;
  // compressed, each only gets a header that says so (it cannot join here).
  void addJoiners(OpContext& ctx) {
    r_->joiners = joinersFrom(ctx, seq);
    if (r_->joiners.empty()) return;
    constexpr uint64_t kCountMask = (uint64_t{1} << kCodecSignatureShift) - 1;
    JoinHeader h;
    h.layout = JoinLayout::kOverlap;
    h.pushSum = true;
    h.coded = (meta_.count >> kCodecSignatureShift) != 0;
    h.type = static_cast<gcclDataType_t>((meta_.info >> 8) & 0xff);
    h.count = meta_.count & kCountMask;
    h.step = r_->step;
    double k = static_cast<double>(r_->joiners.size());
    h.coefficient = h.coded ? 0 : r_->self / (k + 1);
    h.weight = r_->weightSent;
    if (!h.coded) {
      for (int j : r_->joiners)
        r_->out.push_back({j, h.coefficient});
      r_->self -= k * h.coefficient;
    }
    r_->joinHeaders.assign(r_->joiners.size() * kJoinHeaderBytes, 0);
    for (size_t i = 0; i < r_->joiners.size(); ++i)
      encodeJoinHeader(h, r_->joinHeaders.data() + i * kJoinHeaderBytes);
    r_->joinSends.assign(r_->joiners.size(), Transfer());
  }

  StepRecord* r_;
  size_t bytes_;
  std::shared_ptr<Topology> topo_;
  std::shared_ptr<Executor> exec_;
  MemoryType mem_;
  std::string bindError_;
};

// Records what has arrived; done once every step <= `through` is complete.
class WaitOp final : public Op {
 public:
  // Requires every step <= through (when hasThrough), or everything (all).
  WaitOp(std::vector<StepRecord*> records, bool hasThrough, uint64_t through, bool all,
         gcclRequest* req)
      : Op(OpKind::kPushSum, transport::MessageMeta{}, req),
        records_(std::move(records)),
        hasThrough_(hasThrough),
        through_(through),
        all_(all) {}
  gcclResult_t start(OpContext&) override {
    for (StepRecord* r : records_) {
      for (auto& t : r->recvs)
        watch(&t);
      for (auto& t : r->sends)
        watch(&t);
      for (auto& t : r->joinSends)
        watch(&t);
    }
    return gcclSuccess;
  }
  bool tolerant() const override { return true; }
  gcclResult_t progress(OpContext& ctx, bool* done) override {
    bool complete = true;
    // Fault-tolerant mode: a transfer with a failed peer is settled, not an error.
    auto lostToFailure = [&ctx](const Transfer& t) {
      return ctx.faultTolerant && ctx.lostToFailure(t);
    };
    for (StepRecord* r : records_) {
      bool required = all_ || (hasThrough_ && r->step <= through_);
      for (size_t j = 0; j < r->in.size(); ++j) {
        const Transfer& w = r->recvs[2 * j];
        const Transfer& d = r->recvs[2 * j + 1];
        if (lostToFailure(w) || lostToFailure(d)) {
          // Only a whole message (weight and data) is folded.
          r->lost[j] = 1;
          continue;
        }
        GCCL_CHECK(checkTransfer(w));
        GCCL_CHECK(checkTransfer(d));
        r->arrived[j] = w.done() && d.done();
        if (required && !r->arrived[j]) complete = false;
      }
      bool sent = true;
      for (size_t k = 0; k < r->sends.size(); ++k) {
        const Transfer& t = r->sends[k];
        if (lostToFailure(t)) {
          r->undelivered[k] = 1;
          continue;
        }
        GCCL_CHECK(checkTransfer(t));
        sent = sent && t.done();
      }
      for (const Transfer& t : r->joinSends) {
        if (lostToFailure(t)) continue;  // its share comes back with its data message
        GCCL_CHECK(checkTransfer(t));
        sent = sent && t.done();
      }
      r->sendsDone = sent;
      if (all_ && !sent) complete = false;
    }
    *done = complete;
    return gcclSuccess;
  }

 private:
  std::vector<StepRecord*> records_;
  bool hasThrough_;
  uint64_t through_;
  bool all_;
};

}  // namespace

}  // namespace gccl

struct gcclGossip {
  gcclComm* comm = nullptr;
  void* x = nullptr;
  size_t count = 0;
  gcclDataType_t type = gcclFloat32;
  size_t bytes = 0;
  gccl::MemoryType mem = gccl::MemoryType::kHost;  // where x lives
  // Scales and folds x on the caller's thread; kept alive by the buffers of
  // the steps even past the communicator.
  std::shared_ptr<gccl::Executor> exec;
  double* psWeight = nullptr;
  std::shared_ptr<gccl::Topology> topo;
  int staleness = 0;
  std::list<std::unique_ptr<gccl::StepRecord>> steps;  // started, not yet retired
  // Compressed messages: the codec, the largest encoding, a decoded tensor.
  gccl::WireCodec codec;
  size_t capacity = 0;  // bytes of one message (bytes when uncompressed)
  gccl::ExecBuffer decoded;
  bool broken = false;
};

namespace gccl {

namespace {

HandleRegistry<gcclGossip>& gossips() {
  static auto* r = new HandleRegistry<gcclGossip>("gossip handle");
  return *r;
}

// Runs a WaitOp, then folds in everything that arrived and retires finished steps.
gcclResult_t waitAndFold(gcclGossip* g, bool hasThrough, uint64_t through, bool all) {
  std::vector<StepRecord*> records;
  for (auto& r : g->steps)
    records.push_back(r.get());
  if (records.empty()) return gcclSuccess;
  gcclRequest* req = newRequest(g->comm->timeoutMs);
  auto op = std::make_unique<WaitOp>(records, hasThrough, through, all, req);
  gcclResult_t r = launch(g->comm, std::move(op), req, nullptr);
  if (r != gcclSuccess) {
    g->broken = true;
    return r;
  }
  for (auto it = g->steps.begin(); it != g->steps.end();) {
    StepRecord& rec = **it;
    // Fault-tolerant mode: what a failed out-peer did not take stays here.
    for (size_t k = 0; k < rec.undelivered.size(); ++k) {
      if (!rec.undelivered[k] || rec.keptBack[k]) continue;
      rec.keptBack[k] = 1;
      double share = rec.out[k / 2].weight;
      if (k % 2 == 0) {
        *g->psWeight += share * rec.weightSent;
        continue;
      }
      if (g->count == 0) continue;
      const void* y = rec.snapshot.data();
      if (g->codec.active) {
        r = g->exec->decode(
            g->codec.forMessage(g->count,
                                mixBits(mixBits(rec.step) ^ static_cast<uint64_t>(g->comm->rank))),
            rec.snapshot.data(), rec.sentBytes, g->count, g->type, g->decoded.data(),
            g->codec.reference(g->x), g->mem);
        if (r != gcclSuccess) {
          g->broken = true;
          return r;
        }
        y = g->decoded.data();
      }
      r = g->exec->axpy(g->x, share, y, g->count, g->type, g->mem);
      if (r != gcclSuccess) {
        g->broken = true;
        return r;
      }
    }
    bool allFolded = true;
    for (size_t j = 0; j < rec.in.size(); ++j) {
      if (rec.folded[j]) continue;
      if (rec.lost[j]) {  // a failed in-peer's: nothing to fold
        rec.folded[j] = 1;
        continue;
      }
      if (!rec.arrived[j]) {
        allFolded = false;
        continue;
      }
      if (g->count > 0) {
        const uint8_t* y = rec.received.data() + j * g->capacity;
        if (g->codec.active) {
          r = g->exec->decode(g->codec.forMessage(g->count, 0), y, rec.recvs[2 * j + 1].req.bytes,
                              g->count, g->type, g->decoded.data(), g->codec.reference(g->x),
                              g->mem);
          if (r != gcclSuccess) {
            g->broken = true;
            return setError(r, "decoding the step %llu message from rank %d: %s",
                            static_cast<unsigned long long>(rec.step), rec.in[j].peer,
                            threadLastError());
          }
          y = g->decoded.data();
        }
        r = g->exec->axpy(g->x, rec.in[j].weight, y, g->count, g->type, g->mem);
        if (r != gcclSuccess) {
          g->broken = true;
          return r;
        }
      }
      *g->psWeight += rec.in[j].weight * rec.weightsIn[j];
      rec.folded[j] = 1;
    }
    if (allFolded && rec.sendsDone) {
      it = g->steps.erase(it);
    } else {
      ++it;
    }
  }
  return gcclSuccess;
}

// The compressed Start, in two parts: the step's encoding of x into the
// record (before the sends), then, once the step's graph is known,
// x <- x - sentShare * decode(encoding).
kernels::codec::Params stepParams(gcclGossip* g, uint64_t step) {
  return g->codec.forMessage(g->count,
                             mixBits(mixBits(step) ^ static_cast<uint64_t>(g->comm->rank)));
}
gcclResult_t encodeStep(gcclGossip* g, StepRecord* rec, uint64_t step) {
  return g->exec->encode(stepParams(g, step), g->x, g->count, g->type, rec->snapshot.data(),
                         g->capacity, &rec->sentBytes, nullptr, g->mem);
}
gcclResult_t keepUnsent(gcclGossip* g, StepRecord* rec, uint64_t step, double sentShare) {
  if (rec->out.empty()) return gcclSuccess;
  GCCL_CHECK(g->exec->decode(stepParams(g, step), rec->snapshot.data(), rec->sentBytes, g->count,
                             g->type, g->decoded.data(), g->codec.reference(g->x), g->mem));
  return g->exec->axpy(g->x, -sentShare, g->decoded.data(), g->count, g->type, g->mem);
}

}  // namespace

}  // namespace gccl

using namespace gccl;

extern "C" {

gcclResult_t gcclGossipCreate(gcclGossip_t* gossip, void* x, size_t count, gcclDataType_t datatype,
                              double* psWeight, gcclTopology_t topo, int staleness,
                              gcclComm_t comm) {
  return gcclGossipCreateEx(gossip, x, count, datatype, psWeight, topo, staleness, nullptr, comm);
}

gcclResult_t gcclGossipCreateEx(gcclGossip_t* gossip, void* x, size_t count,
                                gcclDataType_t datatype, double* psWeight, gcclTopology_t topo,
                                int staleness, const gcclGossipOptions_t* options,
                                gcclComm_t comm) {
  const char* call = options == nullptr ? "gcclGossipCreate" : "gcclGossipCreateEx";
  return apiCall(comm, call, nullptr, [&]() -> gcclResult_t {
    GCCL_REQUIRE(gossip != nullptr, gcclInvalidArgument, "%s: gossip (the output) is NULL", call);
    size_t bytes;
    MemoryType mem;
    GCCL_CHECK(checkGossipModel(comm, x, count, datatype, call, &bytes, &mem));
    GCCL_REQUIRE(psWeight != nullptr && *psWeight > 0, gcclInvalidArgument,
                 "%s: psWeight must point to a positive weight", call);
    GCCL_REQUIRE(staleness >= 0 && staleness <= 1000, gcclInvalidArgument,
                 "%s: staleness %d is outside 0..1000", call, staleness);
    std::shared_ptr<Topology> t;
    GCCL_CHECK(checkTopologyFor(comm, topo, gcclMixColumnStochastic, call, &t));
    WireCodec codec;
    GCCL_CHECK(readGossipOptions(options, call, &codec));
    GCCL_CHECK(checkCodecType(codec, datatype, call));
    size_t capacity = bytes;
    if (codec.active) GCCL_CHECK(codec.maxBytes(count, datatype, &capacity));
    auto g = std::make_unique<gcclGossip>();
    if (codec.active) GCCL_CHECK(g->decoded.allocate(comm->engine->executor(), bytes, mem));
    g->codec = codec;
    g->capacity = capacity;
    g->comm = comm;
    g->x = x;
    g->count = count;
    g->type = datatype;
    g->bytes = bytes;
    g->mem = mem;
    g->exec = comm->engine->executor();
    g->psWeight = psWeight;
    g->topo = std::move(t);
    g->staleness = staleness;
    gossips().add(g.get());
    *gossip = g.release();
    return gcclSuccess;
  });
}

gcclResult_t gcclGossipStart(gcclGossip_t g, uint64_t step) {
  const char* call = "gcclGossipStart";
  clearThreadLastError();
  GCCL_CHECK(gossips().check(g, call));
  GCCL_REQUIRE(!g->broken, gcclInvalidUsage, "%s: an earlier call on this gossip failed", call);
  gcclComm* comm = g->comm;
  return apiCall(comm, call, nullptr, [&]() -> gcclResult_t {
    auto rec = std::make_unique<StepRecord>();
    rec->step = step;
    // The graph of the original topology; in fault-tolerant mode, after a
    // failure, PostOp replaces it with the survivors' (bindView).
    g->topo->outPeers(step, comm->rank, &rec->out, &rec->self);
    g->topo->inPeers(step, comm->rank, &rec->in);
    GCCL_CHECK(rec->snapshot.allocate(g->exec, g->capacity, g->mem));
    GCCL_CHECK(rec->received.allocate(g->exec, rec->in.size() * g->capacity, g->mem));
    if (!g->codec.active) {
      GCCL_CHECK(g->exec->copy(rec->snapshot.data(), g->mem, g->x, g->mem, g->bytes));
      rec->sentBytes = g->bytes;
    } else if (g->count > 0) {
      gcclResult_t r = encodeStep(g, rec.get(), step);
      if (r != gcclSuccess) {
        g->broken = true;
        return r;
      }
    }
    rec->weightSent = *g->psWeight;
    sizeRecord(rec.get());
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto op = std::make_unique<PostOp>(
        rec.get(),
        makeGossipMeta(OpKind::kPushSum, g->type, step, g->topo->fingerprint(step), g->count,
                       g->codec.signature),
        g->capacity, g->topo, g->exec, g->mem, req);
    StepRecord* posted = rec.get();
    g->steps.push_back(std::move(rec));
    gcclResult_t r = launch(comm, std::move(op), req, nullptr);
    if (r != gcclSuccess) {
      g->broken = true;
      return r;
    }
    // The sends went out from the snapshot; keep this rank's own share now
    // (the rest is counted where it lands), by the graph the step used.
    double sentShare = 0;
    for (const auto& o : posted->out)
      sentShare += o.weight;
    if (g->count > 0) {
      r = g->codec.active ? keepUnsent(g, posted, step, sentShare)
                          : g->exec->scale(g->x, posted->self, g->count, g->type, g->mem);
      if (r != gcclSuccess) {
        g->broken = true;
        return r;
      }
    }
    *g->psWeight *= posted->self;
    return gcclSuccess;
  });
}

gcclResult_t gcclGossipFinish(gcclGossip_t g, uint64_t step) {
  const char* call = "gcclGossipFinish";
  clearThreadLastError();
  GCCL_CHECK(gossips().check(g, call));
  GCCL_REQUIRE(!g->broken, gcclInvalidUsage, "%s: an earlier call on this gossip failed", call);
  // Messages of steps up to step - staleness must be in; before that step
  // exists, the wait only records what has arrived.
  bool hasThrough = step >= static_cast<uint64_t>(g->staleness);
  uint64_t through = hasThrough ? step - g->staleness : 0;
  return apiCall(g->comm, call, nullptr,
                 [&]() -> gcclResult_t { return waitAndFold(g, hasThrough, through, false); });
}

gcclResult_t gcclGossipDestroy(gcclGossip_t g) {
  const char* call = "gcclGossipDestroy";
  clearThreadLastError();
  GCCL_CHECK(gossips().check(g, call));
  gossips().remove(g);
  gcclResult_t r = gcclSuccess;
  if (!g->broken && !g->steps.empty()) {
    // Everything still in flight is folded in, so no mass is lost.
    r = apiCall(g->comm, call, nullptr, [&]() { return waitAndFold(g, false, 0, true); });
  }
  delete g;
  return r;
}

}  // extern "C"
