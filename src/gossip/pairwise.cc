// Pairwise gossip (SwarmSGD / AD-PSGD): a rank averages its model with one
// random neighbour while that neighbour keeps training; the neighbour's
// progress engine serves the exchange.
//
// Protocol, for initiator i and partner j (every side adds half the
// difference of the two snapshots, so mass is conserved whatever else runs
// concurrently):
//   i: s_i = x_i (under i's lock); send REQUEST(s_i) to j; wait for REPLY
//   j: (progress thread, under j's lock) s_j = x_j; x_j += (s_i - s_j) / 2;
//      send REPLY(s_j)
//   i: (under i's lock) x_i += (s_j - s_i) / 2
// When neither model changes during the exchange, both end with exactly
// (x_i + x_j) / 2. With a codec, REQUEST and REPLY carry encodings and each
// side adds (q_j - q_i) / 2, q being the decodings (its own from the bytes it
// sent; lattice against its own model), which conserves the sum as well. The lock is the
// consistency contract: a partner's model is read and updated between the trainer's locked
// sections, never inside one.
//
// Fault-tolerant mode: once ranks failed, a rank's neighbours are those of
// the graph re-formed over the ranks it does not consider failed (a ring
// stays a ring, so no survivor is left without partners); the service takes
// requests from the new neighbours too. A rank that failed stays out of this
// object's graph even if a restarted process takes its place (that process
// has no such object). An exchange whose partner fails before the reply
// changes nothing here (what the partner took dies with it), and the service
// stops serving a failed neighbour. Destroy meets the survivors in a barrier
// of the agreement instead of an exact one.
#include <algorithm>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "core/api_call.h"
#include "core/engine.h"
#include "core/executor.h"
#include "core/request.h"
#include "core/wire_codec.h"
#include "core/handle_registry.h"
#include "core/membership.h"
#include "gossip/gossip_checks.h"
#include "gossip/topology.h"

namespace gccl {

namespace {

// Requests and replies travel as asynchronous traffic, tagged with the
// exchange object's id (the same on every rank: creation is collective) and a
// sequence number per directed pair.
uint64_t requestTag(uint64_t id, uint64_t seq) {
  return transport::kAsyncTagBit | ((id & 0x3fff) << 48) | ((seq << 1) & ((1ull << 48) - 1));
}
uint64_t replyTag(uint64_t id, uint64_t seq) {
  return requestTag(id, seq) | 1;
}

struct Model {
  void* x = nullptr;
  size_t count = 0;
  gcclDataType_t type = gcclFloat32;
  size_t bytes = 0;
  MemoryType mem = MemoryType::kHost;  // where x lives; the exchange buffers too
  WireCodec codec;                     // active: messages travel encoded
  size_t capacity = 0;                 // bytes of a message (bytes when uncompressed)
  int rank = 0;
  std::mutex lock;
};

// Buffers for compressed exchanges on one thread: the two decodings.
struct CodecScratch {
  ExecBuffer mine, theirs;
  gcclResult_t allocate(const Model& m, const std::shared_ptr<Executor>& exec) {
    if (!m.codec.active) return gcclSuccess;
    GCCL_CHECK(mine.allocate(exec, m.bytes, m.mem));
    return theirs.allocate(exec, m.bytes, m.mem);
  }
};

// Under the model's lock: encodes x into out (*outBytes written) with the
// seed salt `salt`, and decodes it into c.mine.
gcclResult_t encodeModel(Executor& exec, Model& m, CodecScratch& c, uint64_t salt, uint8_t* out,
                         size_t* outBytes) {
  if (!m.codec.active) {
    *outBytes = m.bytes;
    return exec.copy(out, m.mem, m.x, m.mem, m.bytes);
  }
  kernels::codec::Params p = m.codec.forMessage(m.count, salt);
  GCCL_CHECK(exec.encode(p, m.x, m.count, m.type, out, m.capacity, outBytes, nullptr, m.mem));
  return exec.decode(p, out, *outBytes, m.count, m.type, c.mine.data(), m.codec.reference(m.x),
                     m.mem);
}

// Under the model's lock: x += (theirs - mine) / 2, where mine is what this
// side sent (`sent`, or c.mine when compressed) and theirs the peer's message.
gcclResult_t addHalfDifference(Executor& exec, Model& m, CodecScratch& c, const uint8_t* sent,
                               const uint8_t* received, size_t receivedBytes, int peer) {
  const void* ys[2] = {received, sent};
  if (m.codec.active) {
    gcclResult_t r = exec.decode(m.codec.forMessage(m.count, 0), received, receivedBytes, m.count,
                                 m.type, c.theirs.data(), m.codec.reference(m.x), m.mem);
    if (r != gcclSuccess)
      return setError(r, "decoding the pairwise message from rank %d: %s", peer, threadLastError());
    ys[0] = c.theirs.data();
    ys[1] = c.mine.data();
  }
  const double bs[2] = {0.5, -0.5};
  return exec.mix(m.x, 1.0, ys, bs, 2, m.count, m.type, m.mem);
}

// Every rank `rank` is linked with at any step of the period of `topo`, or
// of its graph re-formed over the ranks that `dead` does not flag.
std::vector<int> neighboursIn(const Topology& topo, int rank, const std::vector<uint8_t>& dead) {
  const Topology* t = &topo;
  std::shared_ptr<Topology> restricted;
  if (std::find(dead.begin(), dead.end(), 1) != dead.end()) {
    std::vector<uint8_t> alive(dead.size());
    for (size_t r = 0; r < dead.size(); ++r)
      alive[r] = dead[r] ? 0 : 1;
    if (topo.restrictedTo(alive, &restricted) == gcclSuccess) t = restricted.get();
  }
  std::set<int> peers;
  std::vector<PeerWeight> list;
  double self;
  for (int s = 0; s < t->period(); ++s) {
    t->outPeers(static_cast<uint64_t>(s), rank, &list, &self);
    for (const auto& pw : list)
      if (dead.empty() || !dead[static_cast<size_t>(pw.peer)]) peers.insert(pw.peer);
    t->inPeers(static_cast<uint64_t>(s), rank, &list);
    for (const auto& pw : list)
      if (dead.empty() || !dead[static_cast<size_t>(pw.peer)]) peers.insert(pw.peer);
  }
  return std::vector<int>(peers.begin(), peers.end());
}

class PairwiseService final : public Service {
 public:
  PairwiseService(std::shared_ptr<Model> model, transport::MessageMeta meta, uint64_t id)
      : model_(std::move(model)), meta_(meta), id_(id) {}

  // A request and a reply buffer per neighbour, in the model's memory type.
  gcclResult_t init(const std::vector<int>& peers, const std::shared_ptr<Executor>& exec,
                    std::shared_ptr<Topology> topo, int nranks) {
    exec_ = exec;
    topo_ = std::move(topo);
    dead_.assign(static_cast<size_t>(nranks), 0);
    for (int p : peers)
      GCCL_CHECK(addSlot(p));
    return scratch_.allocate(*model_, exec);
  }

  bool wantsRetry() const override { return retry_; }

  gcclResult_t poll(OpContext& ctx) override {
    retry_ = false;
    if (ctx.faultTolerant) GCCL_CHECK(followFailures(ctx));
    for (auto& sp : slots_) {
      Slot& s = *sp;
      if (ctx.faultTolerant && dead_[static_cast<size_t>(s.peer)])
        continue;  // serves nobody any more
      for (;;) {
        if (s.replying) {
          if (s.reply.pending()) break;
          GCCL_REQUIRE(!s.reply.req.failed(), gcclRemoteError, "reply to rank %d failed", s.peer);
          s.replying = false;
          s.posted = false;
          ++s.seq;
        }
        if (!s.posted) {
          GCCL_CHECK(ctx.conn(s.peer)->irecv(s.in.data(), model_->capacity, requestTag(id_, s.seq),
                                             meta_, &s.request.req));
          s.posted = true;
        }
        if (s.request.pending()) break;
        if (s.request.req.failed()) {
          if (s.request.req.metaMismatch)
            return setError(gcclInvalidUsage,
                            "rank %d asked for a pairwise exchange of another size or type (%s)",
                            s.peer, describeMeta(s.request.req.peerMeta).c_str());
          return setError(gcclRemoteError, "request from rank %d failed", s.peer);
        }
        bool served = false;
        GCCL_CHECK(serve(ctx, s, &served));
        if (!served) {
          // The trainer holds the model's lock: try again on a later pass
          // rather than block the loop (the caller may be the one driving it).
          retry_ = true;
          break;
        }
        GCCL_CHECK(ctx.conn(s.peer)->isend(s.out.data(), s.outBytes, replyTag(id_, s.seq), meta_,
                                           &s.reply.req));
        s.replying = true;
      }
    }
    return gcclSuccess;
  }

  void cancel(OpContext& ctx) override {
    for (auto& s : slots_) {
      transport::Connection* c = ctx.conn(s->peer);
      if (c != nullptr && s->posted && s->request.pending()) c->cancel(&s->request.req);
    }
  }

 private:
  gcclResult_t addSlot(int peer) {
    auto s = std::make_unique<Slot>();
    s->peer = peer;
    GCCL_CHECK(s->in.allocate(exec_, model_->capacity, model_->mem));
    GCCL_CHECK(s->out.allocate(exec_, model_->capacity, model_->mem));
    slots_.push_back(std::move(s));
    return gcclSuccess;
  }
  // Fault-tolerant mode: once more ranks failed, serve the neighbours of the
  // graph re-formed over the others as well (the failed stay out for good).
  gcclResult_t followFailures(OpContext& ctx) {
    bool changed = false;
    for (int r = 0; r < ctx.nranks; ++r)
      if (r != ctx.rank && !dead_[static_cast<size_t>(r)] && ctx.peerFailed(r)) {
        dead_[static_cast<size_t>(r)] = 1;
        changed = true;
      }
    if (!changed) return gcclSuccess;
    for (int p : neighboursIn(*topo_, ctx.rank, dead_)) {
      bool have = false;
      for (const auto& s : slots_)
        have = have || s->peer == p;
      if (!have) GCCL_CHECK(addSlot(p));
    }
    return gcclSuccess;
  }

  std::shared_ptr<Executor> exec_;
  std::shared_ptr<Topology> topo_;
  std::vector<uint8_t> dead_;  // ranks that failed since the object was made
  struct Slot {
    int peer = -1;
    uint64_t seq = 0;
    bool posted = false, replying = false;
    Transfer request, reply;
    ExecBuffer in, out;
    size_t outBytes = 0;  // of the reply in `out`
  };

  // s_j = x_j; x_j = x_j/2 + s_i/2 (= x_j + (s_i - s_j)/2 while locked).
  // *served is false when the trainer holds the lock.
  gcclResult_t serve(OpContext& ctx, Slot& s, bool* served) {
    std::unique_lock<std::mutex> guard(model_->lock, std::try_to_lock);
    *served = guard.owns_lock();
    if (!*served) return gcclSuccess;
    Model& m = *model_;
    uint64_t salt =
        mixBits(~static_cast<uint64_t>(m.rank)) ^ mixBits(s.seq) ^ static_cast<uint64_t>(s.peer);
    GCCL_CHECK(encodeModel(*ctx.exec, m, scratch_, salt, s.out.data(), &s.outBytes));
    return addHalfDifference(*ctx.exec, m, scratch_, s.out.data(), s.in.data(), s.request.req.bytes,
                             s.peer);
  }

  std::shared_ptr<Model> model_;
  transport::MessageMeta meta_;
  uint64_t id_;
  std::vector<std::unique_ptr<Slot>> slots_;
  CodecScratch scratch_;  // the driver's, for the exchanges it serves
  bool retry_ = false;
};

// Adds or removes the service on the progress thread.
class ServiceOp final : public Op {
 public:
  ServiceOp(std::shared_ptr<PairwiseService> service, bool add, gcclRequest* req)
      : Op(OpKind::kPairwise, transport::MessageMeta{}, req),
        service_(std::move(service)),
        add_(add) {}
  gcclResult_t start(OpContext& ctx) override {
    if (add_)
      ctx.engine->addService(service_);
    else
      ctx.engine->removeService(service_.get());
    return gcclSuccess;
  }
  gcclResult_t progress(OpContext&, bool* done) override {
    *done = true;
    return gcclSuccess;
  }

 private:
  std::shared_ptr<PairwiseService> service_;
  bool add_;
};

class ExchangeOp final : public Op {
 public:
  // *replyBytes gets the reply's length when the exchange completes (the op
  // itself is gone by the time the caller reads it).
  // *lost is set when the partner failed first (fault-tolerant mode).
  ExchangeOp(int peer, uint64_t id, uint64_t seq, const void* snapshot, size_t sendBytes,
             void* reply, size_t capacity, size_t* replyBytes, bool* lost,
             transport::MessageMeta meta, gcclRequest* req)
      : Op(OpKind::kPairwise, meta, req),
        lost_(lost),
        peer_(peer),
        id_(id),
        seq_(seq),
        snapshot_(snapshot),
        sendBytes_(sendBytes),
        reply_(reply),
        capacity_(capacity),
        replyBytes_(replyBytes) {}
  gcclResult_t start(OpContext& ctx) override {
    GCCL_CHECK(postRecv(ctx, peer_, reply_, capacity_, replyTag(id_, seq_), &recv_));
    return postSend(ctx, peer_, snapshot_, sendBytes_, requestTag(id_, seq_), &send_);
  }
  gcclResult_t progress(OpContext& ctx, bool* done) override {
    if (ctx.faultTolerant) probePartner(ctx);
    if (ctx.faultTolerant && (ctx.lostToFailure(send_) || ctx.lostToFailure(recv_))) {
      *lost_ = true;
      *done = true;
      return gcclSuccess;
    }
    GCCL_CHECK(checkTransfer(send_));
    GCCL_CHECK(checkTransfer(recv_));
    *done = send_.done() && recv_.done();
    if (*done) *replyBytes_ = recv_.req.bytes;
    return gcclSuccess;
  }

 private:
  // Fault-tolerant mode. The engine's stall probes do not fire while other
  // traffic moves (this rank's service answering others), so an exchange
  // whose partner has been silent for a quarter of the timeout probes it
  // itself; a partner that does not answer within half the timeout failed.
  void probePartner(OpContext& ctx) {
    int64_t now = nowMs();
    if (waitingSinceMs_ == 0) waitingSinceMs_ = now;
    if (!recv_.pending()) return;
    transport::Connection* c = ctx.conn(peer_);
    if (c == nullptr) return;
    int64_t quarter = std::max<int64_t>(ctx.timeoutMs / 4, 1);
    if (probeSentMs_ == 0) {
      if (now - waitingSinceMs_ < quarter) return;
      probeSentMs_ = now;
      if (c->sendPing() != gcclSuccess) probeSentMs_ = 0;
      return;
    }
    if (c->lastPongMs() >= probeSentMs_) {  // alive: it may be busy; wait on
      waitingSinceMs_ = now;
      probeSentMs_ = 0;
      return;
    }
    if (now - probeSentMs_ >= 2 * quarter)
      ctx.engine->peerFailed(peer_, "rank " + std::to_string(peer_) + " did not respond for " +
                                        std::to_string(now - probeSentMs_) +
                                        " ms (process stopped, hung or unreachable) during a "
                                        "pairwise exchange");
  }

  int64_t waitingSinceMs_ = 0;
  int64_t probeSentMs_ = 0;
  bool* lost_;
  int peer_;
  uint64_t id_;
  uint64_t seq_;
  const void* snapshot_;
  size_t sendBytes_;
  void* reply_;
  size_t capacity_;
  size_t* replyBytes_;
  Transfer send_, recv_;
};

}  // namespace

}  // namespace gccl

struct gcclPairwise {
  gcclComm* comm = nullptr;
  std::shared_ptr<gccl::Model> model;
  std::shared_ptr<gccl::Topology> topo;
  std::shared_ptr<gccl::PairwiseService> service;
  std::vector<int> neighbours;
  // Fault-tolerant mode: the ranks that failed since it was made, and the
  // neighbours of the graph re-formed without them.
  std::vector<uint8_t> dead;
  std::vector<int> liveNeighbours;
  std::vector<uint64_t> sendSeq;  // per peer
  uint64_t seed = 0;
  uint64_t id = 0;
  gccl::transport::MessageMeta meta;
  std::shared_ptr<gccl::Executor> exec;  // copies and mixes on the caller's thread
  gccl::ExecBuffer snapshot, reply;      // in the model's memory type
  gccl::CodecScratch scratch;            // the caller's, for its exchanges
  uint64_t exchanges = 0;                // seeds the stochastic codecs
  size_t replyBytes = 0;                 // of the last exchange's reply
};

namespace gccl {

namespace {

HandleRegistry<gcclPairwise>& pairwiseHandles() {
  static auto* r = new HandleRegistry<gcclPairwise>("pairwise handle");
  return *r;
}

gcclResult_t runServiceOp(gcclPairwise* p, bool add) {
  gcclRequest* req = newRequest(p->comm->timeoutMs);
  return launch(p->comm, std::make_unique<ServiceOp>(p->service, add, req), req, nullptr);
}

// Create's and destroy's meeting points: an exact barrier, or in
// fault-tolerant mode the survivors' (phase 0 at create, 1 and 2 at destroy).
gcclResult_t meetAll(gcclPairwise* p, uint64_t phase) {
  if (!p->comm->faultTolerant) return gcclBarrier(p->comm, nullptr, nullptr);
  gcclRequest* req = newRequest(p->comm->timeoutMs);
  uint64_t id = (uint64_t{1} << 63) | (p->id << 8) | phase;
  return launch(p->comm, makeSurvivorBarrierOp(id, req), req, nullptr);
}

// The neighbours to pick a partner from: in fault-tolerant mode, once ranks
// failed, those of the graph re-formed without every rank that failed since
// the object was made.
const std::vector<int>& liveNeighbours(gcclPairwise* p) {
  if (!p->comm->faultTolerant) return p->neighbours;
  bool changed = false;
  for (const auto& f : p->comm->engine->failedRanks())
    if (!p->dead[static_cast<size_t>(f.first)]) {
      p->dead[static_cast<size_t>(f.first)] = 1;
      changed = true;
    }
  if (changed) p->liveNeighbours = neighboursIn(*p->topo, p->comm->rank, p->dead);
  return std::find(p->dead.begin(), p->dead.end(), 1) == p->dead.end() ? p->neighbours
                                                                       : p->liveNeighbours;
}

}  // namespace

}  // namespace gccl

using namespace gccl;

extern "C" {

gcclResult_t gcclPairwiseCreate(gcclPairwise_t* pairwise, void* x, size_t count,
                                gcclDataType_t datatype, gcclTopology_t topo, uint64_t seed,
                                gcclComm_t comm) {
  return gcclPairwiseCreateEx(pairwise, x, count, datatype, topo, seed, nullptr, comm);
}

gcclResult_t gcclPairwiseCreateEx(gcclPairwise_t* pairwise, void* x, size_t count,
                                  gcclDataType_t datatype, gcclTopology_t topo, uint64_t seed,
                                  const gcclGossipOptions_t* options, gcclComm_t comm) {
  const char* call = options == nullptr ? "gcclPairwiseCreate" : "gcclPairwiseCreateEx";
  return apiCall(comm, call, nullptr, [&]() -> gcclResult_t {
    GCCL_REQUIRE(pairwise != nullptr, gcclInvalidArgument, "%s: pairwise (the output) is NULL",
                 call);
    size_t bytes;
    MemoryType mem;
    GCCL_CHECK(checkGossipModel(comm, x, count, datatype, call, &bytes, &mem));
    std::shared_ptr<Topology> t;
    GCCL_CHECK(checkTopologyFor(comm, topo, gcclMixDoublyStochastic, call, &t));
    WireCodec codec;
    GCCL_CHECK(readGossipOptions(options, call, &codec));
    GCCL_CHECK(checkCodecType(codec, datatype, call));
    size_t capacity = bytes;
    if (codec.active) GCCL_CHECK(codec.maxBytes(count, datatype, &capacity));
    auto* p = new gcclPairwise();
    p->comm = comm;
    p->model = std::make_shared<Model>();
    p->model->x = x;
    p->model->count = count;
    p->model->type = datatype;
    p->model->bytes = bytes;
    p->model->mem = mem;
    p->model->codec = codec;
    p->model->capacity = capacity;
    p->model->rank = comm->rank;
    p->exec = comm->engine->executor();
    p->topo = t;
    p->seed = seed;
    p->meta = makeMeta(OpKind::kPairwise, datatype, gcclSum, 0,
                       withCodecSignature(count, codec.signature));
    // Neighbours: every rank this one is linked with at any step of the period.
    p->neighbours = neighboursIn(*t, comm->rank, {});
    p->dead.assign(static_cast<size_t>(comm->nranks), 0);
    p->sendSeq.assign(static_cast<size_t>(comm->nranks), 0);
    // Ids wrap before the membership agreement's (transports/tags.h).
    p->id = comm->asyncObjects++ % (transport::kMaxAsyncObjectId + 1);
    p->service = std::make_shared<PairwiseService>(p->model, p->meta, p->id);
    gcclResult_t r = p->snapshot.allocate(p->exec, capacity, p->model->mem);
    if (r == gcclSuccess) r = p->reply.allocate(p->exec, capacity, p->model->mem);
    if (r == gcclSuccess) r = p->scratch.allocate(*p->model, p->exec);
    if (r == gcclSuccess) r = p->service->init(p->neighbours, p->exec, p->topo, comm->nranks);
    // Every rank serves before any rank asks: register, then meet in a barrier.
    if (r == gcclSuccess) r = runServiceOp(p, true);
    if (r == gcclSuccess) r = meetAll(p, 0);
    if (r != gcclSuccess) {
      delete p;
      return r;
    }
    pairwiseHandles().add(p);
    *pairwise = p;
    return gcclSuccess;
  });
}

gcclResult_t gcclPairwiseLock(gcclPairwise_t p) {
  clearThreadLastError();
  GCCL_CHECK(pairwiseHandles().check(p, "gcclPairwiseLock"));
  p->model->lock.lock();
  return gcclSuccess;
}

gcclResult_t gcclPairwiseUnlock(gcclPairwise_t p) {
  clearThreadLastError();
  GCCL_CHECK(pairwiseHandles().check(p, "gcclPairwiseUnlock"));
  p->model->lock.unlock();
  return gcclSuccess;
}

gcclResult_t gcclPairwiseExchange(gcclPairwise_t p, uint64_t step, int* partner) {
  const char* call = "gcclPairwiseExchange";
  clearThreadLastError();
  GCCL_CHECK(pairwiseHandles().check(p, call));
  return apiCall(p->comm, call, nullptr, [&]() -> gcclResult_t {
    const std::vector<int>& neighbours = liveNeighbours(p);
    if (neighbours.empty()) {
      if (partner != nullptr) *partner = -1;
      return gcclSuccess;
    }
    uint64_t pick =
        mixBits(p->seed ^ mixBits(static_cast<uint64_t>(p->comm->rank) ^ mixBits(step)));
    int peer = neighbours[pick % neighbours.size()];
    Model& m = *p->model;
    size_t sendBytes = 0;
    {
      std::lock_guard<std::mutex> guard(m.lock);
      uint64_t salt = mixBits(static_cast<uint64_t>(m.rank)) ^ mixBits(p->exchanges++);
      GCCL_CHECK(encodeModel(*p->exec, m, p->scratch, salt, p->snapshot.data(), &sendBytes));
    }
    gcclRequest* req = newRequest(p->comm->timeoutMs);
    uint64_t seq = p->sendSeq[static_cast<size_t>(peer)]++;
    bool lost = false;
    auto op = std::make_unique<ExchangeOp>(peer, p->id, seq, p->snapshot.data(), sendBytes,
                                           p->reply.data(), m.capacity, &p->replyBytes, &lost,
                                           p->meta, req);
    GCCL_CHECK(launch(p->comm, std::move(op), req, nullptr));
    if (lost) {  // the partner failed first: nothing changes here
      if (partner != nullptr) *partner = -1;
      return gcclSuccess;
    }
    {
      // x += (s_j - s_i) / 2: the partner's half of the difference.
      std::lock_guard<std::mutex> guard(m.lock);
      GCCL_CHECK(addHalfDifference(*p->exec, m, p->scratch, p->snapshot.data(), p->reply.data(),
                                   p->replyBytes, peer));
    }
    if (partner != nullptr) *partner = peer;
    return gcclSuccess;
  });
}

gcclResult_t gcclPairwiseDestroy(gcclPairwise_t p) {
  const char* call = "gcclPairwiseDestroy";
  clearThreadLastError();
  GCCL_CHECK(pairwiseHandles().check(p, call));
  pairwiseHandles().remove(p);
  // Every rank's exchanges are done once all have reached the first barrier;
  // then nobody can still need this rank's service. The second keeps every
  // rank's service receives withdrawn before any rank may close its
  // connections (a receive still posted then would read as lost data).
  gcclResult_t r = apiCall(p->comm, call, nullptr, [&]() -> gcclResult_t {
    GCCL_CHECK(meetAll(p, 1));
    GCCL_CHECK(runServiceOp(p, false));
    return meetAll(p, 2);
  });
  delete p;
  return r;
}

}  // extern "C"
