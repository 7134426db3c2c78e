// Fault-tolerant mode's agreement on who is alive (membership.h).
#include "core/membership.h"

#include <algorithm>
#include <cstring>

#include "base/check.h"
#include "base/clock.h"
#include "base/le.h"
#include "base/log.h"
#include "core/engine.h"
#include "transports/tags.h"

namespace gccl {

namespace {

constexpr uint32_t kMagic = 0x626d6367;  // "gcmb"
constexpr size_t kHeaderBytes = 32;
constexpr uint64_t kSeqMask = (1ull << 48) - 1;
// Signature of membership messages (receives accept any).
constexpr uint64_t kMetaInfo = 0x6d656d62u;  // "memb"

size_t flagBytes(int n) {
  return (static_cast<size_t>(n) + 7) / 8;
}

void putFlags(const std::vector<uint8_t>& flags, uint8_t* out) {
  for (size_t i = 0; i < flags.size(); ++i)
    if (flags[i]) out[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
}

std::vector<uint8_t> getFlags(const uint8_t* in, int n) {
  std::vector<uint8_t> flags(static_cast<size_t>(n));
  for (size_t i = 0; i < flags.size(); ++i)
    flags[i] = (in[i / 8] >> (i % 8)) & 1;
  return flags;
}

std::string listOf(const std::vector<uint8_t>& flags, bool which) {
  std::string s;
  for (size_t i = 0; i < flags.size(); ++i)
    if ((flags[i] != 0) == which) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s.empty() ? "none" : s;
}

}  // namespace

// ---- wire format ---------------------------------------------------------------------

size_t Membership::maxBytes(int nranks) {
  // Header, one set of flags, and a history of at most nranks views.
  return kHeaderBytes + flagBytes(nranks) + static_cast<size_t>(nranks) * (8 + flagBytes(nranks)) +
         kMaxPayloadBytes;
}

std::vector<uint8_t> Membership::encode(const Message& m, int nranks) {
  size_t fb = flagBytes(nranks);
  size_t payload = std::min(m.payload.size(), kMaxPayloadBytes);
  std::vector<uint8_t> out(kHeaderBytes + fb + m.history.size() * (8 + fb) + payload, 0);
  putLe32(out.data(), kMagic);
  out[4] = static_cast<uint8_t>(m.type);
  putLe16(out.data() + 6, static_cast<uint16_t>(payload));
  putLe32(out.data() + 8, static_cast<uint32_t>(nranks));
  putLe32(out.data() + 12, static_cast<uint32_t>(m.history.size()));
  putLe64(out.data() + 16, m.round);
  putLe64(out.data() + 24, m.value);
  putFlags(m.ranks, out.data() + kHeaderBytes);
  uint8_t* p = out.data() + kHeaderBytes + fb;
  for (const View& v : m.history) {
    putLe64(p, v.switchSeq);
    putFlags(v.alive, p + 8);
    p += 8 + fb;
  }
  if (payload > 0) memcpy(p, m.payload.data(), payload);
  return out;
}

bool Membership::decode(const uint8_t* data, size_t len, int nranks, Message* out) {
  size_t fb = flagBytes(nranks);
  if (len < kHeaderBytes + fb || getLe32(data) != kMagic) return false;
  if (getLe32(data + 8) != static_cast<uint32_t>(nranks)) return false;
  uint8_t type = data[4];
  if (type < static_cast<uint8_t>(Type::kSuspect) || type > static_cast<uint8_t>(Type::kBarrier))
    return false;
  uint32_t views = getLe32(data + 12);
  size_t payload = getLe16(data + 6);
  if (views > static_cast<uint32_t>(nranks) || payload > kMaxPayloadBytes ||
      len != kHeaderBytes + fb + views * (8 + fb) + payload)
    return false;
  Message m;
  m.type = static_cast<Type>(type);
  m.round = getLe64(data + 16);
  m.value = getLe64(data + 24);
  m.ranks = getFlags(data + kHeaderBytes, nranks);
  const uint8_t* p = data + kHeaderBytes + fb;
  uint64_t previous = 0;
  for (uint32_t i = 0; i < views; ++i) {
    View v;
    v.switchSeq = getLe64(p);
    v.alive = getFlags(p + 8, nranks);
    if (v.switchSeq < previous) return false;  // switch points only grow
    previous = v.switchSeq;
    m.history.push_back(std::move(v));
    p += 8 + fb;
  }
  m.payload.assign(p, p + payload);
  *out = std::move(m);
  return true;
}

// ---- life cycle ----------------------------------------------------------------------

Membership::Membership(Engine* engine, int rank, int nranks, int64_t timeoutMs)
    : engine_(engine),
      rank_(rank),
      n_(nranks),
      timeoutMs_(timeoutMs),
      failed_(static_cast<size_t>(nranks), 0),
      sendSeq_(static_cast<size_t>(nranks), 0),
      recvSeq_(static_cast<size_t>(nranks), 0),
      in_(static_cast<size_t>(nranks)) {}

Membership::~Membership() = default;

gcclResult_t Membership::start() {
  for (int p = 0; p < n_; ++p)
    if (p != rank_) GCCL_CHECK(postReceive(p));
  return gcclSuccess;
}

gcclResult_t Membership::postReceive(int peer) {
  Incoming& in = in_[static_cast<size_t>(peer)];
  transport::Connection* c = engine_->connection(peer);
  if (c == nullptr) return gcclSuccess;
  if (in.buf.empty()) in.buf.resize(maxBytes(n_));
  uint64_t tag = transport::kMembershipTagBase | (recvSeq_[static_cast<size_t>(peer)] & kSeqMask);
  in.posted = true;
  return c->irecv(in.buf.data(), in.buf.size(), tag, {transport::kMetaAny, 0}, &in.req);
}

void Membership::send(int peer, const Message& m) {
  transport::Connection* c = engine_->connection(peer);
  if (c == nullptr) return;  // failed: its share of the agreement is moot
  auto o = std::make_unique<Outgoing>();
  o->bytes = encode(m, n_);
  o->peer = peer;
  uint64_t tag = transport::kMembershipTagBase | (sendSeq_[static_cast<size_t>(peer)]++ & kSeqMask);
  if (c->isend(o->bytes.data(), o->bytes.size(), tag, {kMetaInfo, o->bytes.size()}, &o->req) !=
      gcclSuccess) {
    // The connection is broken: the engine learns of it from the connection.
    GCCL_INFO(kLogNet, "rank %d: membership message to rank %d not sent: %s", rank_, peer,
              threadLastError());
    return;
  }
  out_.push_back(std::move(o));
}

void Membership::forgetPeer(int peer) {
  Incoming& in = in_[static_cast<size_t>(peer)];
  transport::Connection* c = engine_->connection(peer);
  if (in.posted && in.req.pending() && c != nullptr) c->cancel(&in.req);
  in.posted = false;
  // Sends to it are dropped below once the connection is gone (their
  // requests are no longer touched by anyone).
  for (auto it = out_.begin(); it != out_.end();)
    it = (*it)->peer == peer ? out_.erase(it) : it + 1;
}

// ---- views ---------------------------------------------------------------------------

const std::vector<uint8_t>* Membership::aliveFor(uint64_t seq) const {
  const std::vector<uint8_t>* alive = nullptr;
  for (const View& v : history_)
    if (v.switchSeq <= seq) alive = &v.alive;
  return alive;
}

int Membership::coordinator() const {
  const std::vector<uint8_t>* alive = history_.empty() ? nullptr : &history_.back().alive;
  for (int r = 0; r < n_; ++r)
    if ((alive == nullptr || (*alive)[static_cast<size_t>(r)]) && !isFailed(r)) return r;
  return rank_;
}

uint64_t Membership::newRound() {
  uint64_t attempt = (maxRound_ >> 16) + 1;
  maxRound_ = (attempt << 16) | static_cast<uint64_t>(rank_);
  return maxRound_;
}

int64_t Membership::nextDeadlineMs() const {
  int64_t half = std::max<int64_t>(timeoutMs_ / 2, 1);
  int64_t d = 0;
  if (leading_) d = roundStartMs_ + half;
  if (gated_ && !leading_) {
    // (The probe's answer arrives as an event on the connection.)
    int64_t m = (pingSentMs_ != 0 ? pingSentMs_ : gatedSinceMs_) + half;
    d = d == 0 ? m : std::min(d, m);
  }
  return d;
}

void Membership::declareFailed(int r, const std::string& reason) {
  if (r == rank_ || isFailed(r)) return;
  engine_->peerFailed(r, reason);  // calls onPeerFailed
}

void Membership::onPeerFailed(int peer) {
  if (isFailed(peer)) return;
  failed_[static_cast<size_t>(peer)] = 1;
  forgetPeer(peer);
  suspicionPending_ = true;
}

void Membership::adoptHistory(const std::vector<View>& history) {
  if (history.size() > history_.size()) history_ = history;
  if (history_.empty()) return;
  const std::vector<uint8_t>& alive = history_.back().alive;
  for (int r = 0; r < n_; ++r)
    if (!alive[static_cast<size_t>(r)] && !isFailed(r))
      declareFailed(r, "the survivors agreed that it failed");
}

// ---- rounds --------------------------------------------------------------------------

void Membership::startRound(int64_t now) {
  leading_ = true;
  round_ = newRound();
  roundStartMs_ = now;
  const std::vector<uint8_t>* alive = history_.empty() ? nullptr : &history_.back().alive;
  proposal_.assign(static_cast<size_t>(n_), 0);
  for (int r = 0; r < n_; ++r)
    proposal_[static_cast<size_t>(r)] =
        (alive == nullptr || (*alive)[static_cast<size_t>(r)]) && !isFailed(r) ? 1 : 0;
  acked_.assign(static_cast<size_t>(n_), 0);
  ackNext_.assign(static_cast<size_t>(n_), 0);
  bestHistory_ = history_;
  // This rank acknowledges its own proposal.
  if (!gated_) firstGatedMs_ = now;
  gated_ = true;
  gatedSinceMs_ = now;
  ackedRound_ = round_;
  ackedTo_ = rank_;
  acked_[static_cast<size_t>(rank_)] = 1;
  ackNext_[static_cast<size_t>(rank_)] = engine_->nextSequence();
  GCCL_INFO(kLogNet, "rank %d: proposing the view %s (round %llx)", rank_,
            listOf(proposal_, true).c_str(), static_cast<unsigned long long>(round_));
  Message m;
  m.type = Type::kPropose;
  m.round = round_;
  m.ranks = proposal_;
  sendToProposal(m);
  maybeCommit();
}

void Membership::sendToProposal(const Message& m) {
  for (int r = 0; r < n_; ++r)
    if (r != rank_ && proposal_[static_cast<size_t>(r)]) send(r, m);
}

void Membership::maybeCommit() {
  if (!leading_) return;
  for (int r = 0; r < n_; ++r)
    if (proposal_[static_cast<size_t>(r)] && !acked_[static_cast<size_t>(r)]) return;
  uint64_t switchSeq = 0;
  for (int r = 0; r < n_; ++r)
    if (proposal_[static_cast<size_t>(r)])
      switchSeq = std::max(switchSeq, ackNext_[static_cast<size_t>(r)]);
  std::vector<View> history = bestHistory_;
  bool changed = history.empty() ? std::count(proposal_.begin(), proposal_.end(), 1) != n_
                                 : history.back().alive != proposal_;
  if (changed) {
    View v;
    v.switchSeq = std::max(switchSeq, history.empty() ? 0 : history.back().switchSeq);
    v.alive = proposal_;
    history.push_back(std::move(v));
  }
  Message m;
  m.type = Type::kCommit;
  m.round = round_;
  m.history = history;
  sendToProposal(m);
  if (changed)
    GCCL_WARN(kLogNet,
              "rank %d: the survivors agreed: ranks %s alive, from collective #%llu on (failed: "
              "%s)",
              rank_, listOf(proposal_, true).c_str(),
              static_cast<unsigned long long>(history.back().switchSeq),
              listOf(proposal_, false).c_str());
  leading_ = false;
  gated_ = false;
  adoptHistory(history);
}

gcclResult_t Membership::handle(int from, const Message& m, int64_t now) {
  maxRound_ = std::max(maxRound_, m.round);
  switch (m.type) {
    case Type::kSuspect: {
      // New failures start a round (onPeerFailed); known ones only when the
      // agreed view still has them and no round runs.
      const std::vector<uint8_t>* alive = history_.empty() ? nullptr : &history_.back().alive;
      bool inView = false;
      for (int r = 0; r < n_; ++r) {
        if (!m.ranks[static_cast<size_t>(r)] || r == rank_) continue;
        inView = inView || alive == nullptr || (*alive)[static_cast<size_t>(r)];
        declareFailed(r, "rank " + std::to_string(from) + " found it failed");
      }
      if (coordinator() == rank_ && inView && !leading_) suspicionPending_ = true;
      return gcclSuccess;
    }
    case Type::kPropose: {
      if (m.round <= ackedRound_) return gcclSuccess;  // an older round
      if (!m.ranks[static_cast<size_t>(rank_)]) {
        // The coordinator counts this rank as failed: the survivors go on
        // without it, and their connections to it close.
        GCCL_WARN(kLogNet, "rank %d: rank %d proposed a view without this rank (%s)", rank_, from,
                  listOf(m.ranks, true).c_str());
        return gcclSuccess;
      }
      for (int r = 0; r < n_; ++r)
        if (!m.ranks[static_cast<size_t>(r)] && r != rank_)
          declareFailed(r, "rank " + std::to_string(from) + " proposed the survivors without it");
      leading_ = leading_ && from == rank_;
      if (!gated_) firstGatedMs_ = now;
      gated_ = true;
      gatedSinceMs_ = now;
      pingSentMs_ = 0;
      ackedRound_ = m.round;
      ackedTo_ = from;
      Message ack;
      ack.type = Type::kAck;
      ack.round = m.round;
      ack.value = engine_->nextSequence();
      ack.ranks = failedFlags();
      ack.history = history_;
      send(from, ack);
      return gcclSuccess;
    }
    case Type::kAck: {
      if (!leading_ || m.round != round_) return gcclSuccess;
      // A member that knows of a failure the proposal still includes.
      bool stale = false;
      for (int r = 0; r < n_; ++r)
        if (m.ranks[static_cast<size_t>(r)] && proposal_[static_cast<size_t>(r)] && r != rank_) {
          declareFailed(r, "rank " + std::to_string(from) + " found it failed");
          stale = true;
        }
      if (stale) return gcclSuccess;  // a new round follows (suspicionPending_)
      acked_[static_cast<size_t>(from)] = 1;
      ackNext_[static_cast<size_t>(from)] = m.value;
      if (m.history.size() > bestHistory_.size()) bestHistory_ = m.history;
      maybeCommit();
      return gcclSuccess;
    }
    case Type::kCommit:
      if (m.round < ackedRound_) return gcclSuccess;
      adoptHistory(m.history);
      gated_ = false;
      return gcclSuccess;
    case Type::kShrink:
      shrinkIds_.emplace_back(m.value, m.payload);
      if (shrinkIds_.size() > 4) shrinkIds_.erase(shrinkIds_.begin());
      return gcclSuccess;
    case Type::kBarrier: {
      std::vector<uint8_t>& arrived = barriers_[m.value];
      arrived.resize(static_cast<size_t>(n_), 0);
      arrived[static_cast<size_t>(from)] = 1;
      return gcclSuccess;
    }
  }
  return gcclSuccess;
}

gcclResult_t Membership::poll(int64_t now) {
  // Completed sends go.
  while (!out_.empty() && !out_.front()->req.pending())
    out_.pop_front();
  // Arrivals, in order per peer.
  for (int p = 0; p < n_; ++p) {
    Incoming& in = in_[static_cast<size_t>(p)];
    while (in.posted && !in.req.pending() && !isFailed(p)) {
      in.posted = false;
      if (in.req.failed()) break;  // the connection failed: the engine hears of it
      ++recvSeq_[static_cast<size_t>(p)];
      Message m;
      if (!decode(in.buf.data(), in.req.bytes, n_, &m))
        return setError(gcclRemoteError, "rank %d sent a malformed membership message (%zu bytes)",
                        p, in.req.bytes);
      GCCL_CHECK(postReceive(p));
      GCCL_CHECK(handle(p, m, now));
    }
  }
  // A failure found here goes to the coordinator (or starts a round).
  if (suspicionPending_) {
    suspicionPending_ = false;
    int c = coordinator();
    if (c == rank_) {
      startRound(now);
    } else {
      Message m;
      m.type = Type::kSuspect;
      m.round = maxRound_;
      m.ranks = failedFlags();
      send(c, m);
    }
  }
  // Deadlines: a member that does not acknowledge, a coordinator that does
  // not commit.
  int64_t half = std::max<int64_t>(timeoutMs_ / 2, 1);
  if (leading_ && now - roundStartMs_ >= half) {
    for (int r = 0; r < n_; ++r)
      if (proposal_[static_cast<size_t>(r)] && !acked_[static_cast<size_t>(r)])
        declareFailed(r, "it did not answer the survivors' agreement for " +
                             std::to_string(now - roundStartMs_) + " ms");
    if (suspicionPending_) return poll(now);
  }
  // A member waits for the commit as long as the coordinator answers
  // liveness probes (it may itself wait for a stopped member), up to a cap.
  transport::Connection* c = gated_ && !leading_ && ackedTo_ >= 0 && ackedTo_ != rank_
                                 ? engine_->connection(ackedTo_)
                                 : nullptr;
  if (c != nullptr && now - gatedSinceMs_ >= half) {
    std::string why;
    if (now - firstGatedMs_ >= 4 * timeoutMs_) {
      why = "it did not finish the survivors' agreement in " + std::to_string(now - firstGatedMs_) +
            " ms";
    } else if (pingSentMs_ == 0) {
      pingSentMs_ = now;
      if (c->sendPing() != gcclSuccess)
        why = std::string("probing it failed: ") + threadLastError();
    } else if (c->lastPongMs() >= pingSentMs_) {
      gatedSinceMs_ = now;  // alive: wait on
      pingSentMs_ = 0;
    } else if (now - pingSentMs_ >= half) {
      why = "it ran the survivors' agreement but did not respond for " +
            std::to_string(now - pingSentMs_) + " ms";
    }
    if (!why.empty()) {
      declareFailed(ackedTo_, why);
      gatedSinceMs_ = now;
      pingSentMs_ = 0;
      if (suspicionPending_) return poll(now);
    }
  }
  return gcclSuccess;
}

// ---- shrink ---------------------------------------------------------------------------

bool Membership::settled() const {
  if (gated_ || leading_ || suspicionPending_) return false;
  std::vector<uint8_t> alive = currentAlive();
  for (int r = 0; r < n_; ++r)
    if ((alive[static_cast<size_t>(r)] != 0) == isFailed(r)) return false;
  return true;
}

std::vector<uint8_t> Membership::currentAlive() const {
  if (!history_.empty()) return history_.back().alive;
  return std::vector<uint8_t>(static_cast<size_t>(n_), 1);
}

void Membership::announceShrink(uint64_t epoch, const std::vector<uint8_t>& id) {
  Message m;
  m.type = Type::kShrink;
  m.round = maxRound_;
  m.value = epoch;
  m.ranks = failedFlags();
  m.payload = id;
  std::vector<uint8_t> alive = currentAlive();
  for (int r = 0; r < n_; ++r)
    if (r != rank_ && alive[static_cast<size_t>(r)]) send(r, m);
}

void Membership::arriveAtBarrier(uint64_t id) {
  std::vector<uint8_t>& arrived = barriers_[id];
  arrived.resize(static_cast<size_t>(n_), 0);
  arrived[static_cast<size_t>(rank_)] = 1;
  Message m;
  m.type = Type::kBarrier;
  m.round = maxRound_;
  m.value = id;
  m.ranks = failedFlags();
  for (int r = 0; r < n_; ++r)
    if (r != rank_ && !isFailed(r)) send(r, m);
}

bool Membership::barrierPassed(uint64_t id) {
  auto it = barriers_.find(id);
  if (it == barriers_.end()) return false;
  for (int r = 0; r < n_; ++r)
    if (!isFailed(r) && !it->second[static_cast<size_t>(r)]) return false;
  barriers_.erase(it);
  return true;
}

bool Membership::shrinkId(uint64_t epoch, std::vector<uint8_t>* id) const {
  for (const auto& [e, bytes] : shrinkIds_)
    if (e == epoch) {
      *id = bytes;
      return true;
    }
  return false;
}

namespace {

class ShrinkOp final : public Op {
 public:
  ShrinkOp(ShrinkStep step, ShrinkState* state, gcclRequest* req)
      : Op(OpKind::kShrink, transport::MessageMeta{}, req), step_(step), state_(state) {}
  gcclResult_t start(OpContext& ctx) override {
    Membership* m = ctx.engine->membership();
    GCCL_REQUIRE(m != nullptr, gcclInvalidUsage,
                 "gcclCommShrink needs fault-tolerant mode (gcclConfig_t.faultTolerant or "
                 "GCCL_FAULT_TOLERANT=1)");
    if (step_ == ShrinkStep::kAnnounce) {
      GCCL_REQUIRE(m->epoch() == state_->epoch, gcclRemoteError,
                   "gcclCommShrink: another rank failed during the shrink (view %llu, now %llu); "
                   "call it again",
                   static_cast<unsigned long long>(state_->epoch),
                   static_cast<unsigned long long>(m->epoch()));
      m->announceShrink(state_->epoch, state_->id);
    }
    return gcclSuccess;
  }
  gcclResult_t progress(OpContext& ctx, bool* done) override {
    Membership* m = ctx.engine->membership();
    switch (step_) {
      case ShrinkStep::kSettle:
        *done = m->settled();
        if (*done) {
          state_->epoch = m->epoch();
          state_->alive = m->currentAlive();
        }
        return gcclSuccess;
      case ShrinkStep::kAnnounce:
        *done = true;
        return gcclSuccess;
      case ShrinkStep::kAwait:
        GCCL_REQUIRE(m->epoch() == state_->epoch, gcclRemoteError,
                     "gcclCommShrink: another rank failed during the shrink (view %llu, now "
                     "%llu); call it again",
                     static_cast<unsigned long long>(state_->epoch),
                     static_cast<unsigned long long>(m->epoch()));
        *done = m->shrinkId(state_->epoch, &state_->id);
        return gcclSuccess;
    }
    return gcclSuccess;
  }

 private:
  ShrinkStep step_;
  ShrinkState* state_;
};

}  // namespace

std::unique_ptr<Op> makeShrinkOp(ShrinkStep step, ShrinkState* state, gcclRequest* req) {
  return std::make_unique<ShrinkOp>(step, state, req);
}

namespace {

class SurvivorBarrierOp final : public Op {
 public:
  SurvivorBarrierOp(uint64_t id, gcclRequest* req)
      : Op(OpKind::kShrink, transport::MessageMeta{}, req), id_(id) {}
  gcclResult_t start(OpContext& ctx) override {
    Membership* m = ctx.engine->membership();
    GCCL_REQUIRE(m != nullptr, gcclInternalError,
                 "a survivors' barrier outside fault-tolerant mode");
    m->arriveAtBarrier(id_);
    return gcclSuccess;
  }
  gcclResult_t progress(OpContext& ctx, bool* done) override {
    *done = ctx.engine->membership()->barrierPassed(id_);
    return gcclSuccess;
  }

 private:
  uint64_t id_;
};

}  // namespace

std::unique_ptr<Op> makeSurvivorBarrierOp(uint64_t id, gcclRequest* req) {
  return std::make_unique<SurvivorBarrierOp>(id, req);
}

}  // namespace gccl
