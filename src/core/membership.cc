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
//
// Header (32 bytes): magic u32, type u8, pad u8, payload length u16, nranks
// u32, views u32, round u64, value u64. Then the rank flags and one
// incarnation u32 per rank; each view: epoch u64, switch point u64, alive
// flags, joined flags, incarnations; then the payload.

namespace {

size_t viewBytes(int n) {
  return 16 + 2 * flagBytes(n) + 4 * static_cast<size_t>(n);
}

void putIncs(const std::vector<uint32_t>& incs, int n, uint8_t* out) {
  for (int r = 0; r < n; ++r)
    putLe32(out + 4 * r, static_cast<size_t>(r) < incs.size() ? incs[static_cast<size_t>(r)] : 0);
}

std::vector<uint32_t> getIncs(const uint8_t* in, int n) {
  std::vector<uint32_t> incs(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r)
    incs[static_cast<size_t>(r)] = getLe32(in + 4 * r);
  return incs;
}

std::vector<uint8_t> mixingOf(const Membership::View& v) {
  std::vector<uint8_t> m = v.alive;
  for (size_t r = 0; r < m.size(); ++r)
    if (v.joined[r]) m[r] = 0;
  return m;
}

}  // namespace

size_t Membership::maxBytes(int nranks) {
  return kHeaderBytes + flagBytes(nranks) + 4 * static_cast<size_t>(nranks) +
         kWireViews * viewBytes(nranks) + kMaxPayloadBytes;
}

std::vector<uint8_t> Membership::encode(const Message& m, int nranks) {
  size_t fb = flagBytes(nranks);
  size_t payload = std::min(m.payload.size(), kMaxPayloadBytes);
  size_t views = std::min(m.history.size(), kWireViews);
  size_t first = m.history.size() - views;
  std::vector<uint8_t> out(
      kHeaderBytes + fb + 4 * static_cast<size_t>(nranks) + views * viewBytes(nranks) + payload, 0);
  putLe32(out.data(), kMagic);
  out[4] = static_cast<uint8_t>(m.type);
  putLe16(out.data() + 6, static_cast<uint16_t>(payload));
  putLe32(out.data() + 8, static_cast<uint32_t>(nranks));
  putLe32(out.data() + 12, static_cast<uint32_t>(views));
  putLe64(out.data() + 16, m.round);
  putLe64(out.data() + 24, m.value);
  putFlags(m.ranks, out.data() + kHeaderBytes);
  putIncs(m.incs, nranks, out.data() + kHeaderBytes + fb);
  uint8_t* p = out.data() + kHeaderBytes + fb + 4 * static_cast<size_t>(nranks);
  for (size_t i = first; i < m.history.size(); ++i) {
    const View& v = m.history[i];
    putLe64(p, v.epoch);
    putLe64(p + 8, v.switchSeq);
    putFlags(v.alive, p + 16);
    putFlags(v.joined, p + 16 + fb);
    putIncs(v.incs, nranks, p + 16 + 2 * fb);
    p += viewBytes(nranks);
  }
  if (payload > 0) memcpy(p, m.payload.data(), payload);
  return out;
}

bool Membership::decode(const uint8_t* data, size_t len, int nranks, Message* out) {
  size_t fb = flagBytes(nranks);
  size_t fixed = kHeaderBytes + fb + 4 * static_cast<size_t>(nranks);
  if (len < fixed || getLe32(data) != kMagic) return false;
  if (getLe32(data + 8) != static_cast<uint32_t>(nranks)) return false;
  uint8_t type = data[4];
  if (type < static_cast<uint8_t>(Type::kSuspect) || type > static_cast<uint8_t>(Type::kJoin))
    return false;
  uint32_t views = getLe32(data + 12);
  size_t payload = getLe16(data + 6);
  if (views > kWireViews || payload > kMaxPayloadBytes ||
      len != fixed + views * viewBytes(nranks) + payload)
    return false;
  Message m;
  m.type = static_cast<Type>(type);
  m.round = getLe64(data + 16);
  m.value = getLe64(data + 24);
  m.ranks = getFlags(data + kHeaderBytes, nranks);
  m.incs = getIncs(data + kHeaderBytes + fb, nranks);
  const uint8_t* p = data + fixed;
  uint64_t previousSeq = 0, previousEpoch = 0;
  for (uint32_t i = 0; i < views; ++i) {
    View v;
    v.epoch = getLe64(p);
    v.switchSeq = getLe64(p + 8);
    v.alive = getFlags(p + 16, nranks);
    v.joined = getFlags(p + 16 + fb, nranks);
    v.incs = getIncs(p + 16 + 2 * fb, nranks);
    // Switch points only grow, epochs count up by one.
    if (v.switchSeq < previousSeq || (i > 0 && v.epoch != previousEpoch + 1) || v.epoch == 0)
      return false;
    for (int r = 0; r < nranks; ++r)
      if (v.joined[static_cast<size_t>(r)] && !v.alive[static_cast<size_t>(r)]) return false;
    previousSeq = v.switchSeq;
    previousEpoch = v.epoch;
    v.mixing = mixingOf(v);
    m.history.push_back(std::move(v));
    p += viewBytes(nranks);
  }
  m.payload.assign(p, p + payload);
  *out = std::move(m);
  return true;
}

// ---- life cycle ----------------------------------------------------------------------

namespace {
// Views kept here: enough for every op still queued (a view switches at a
// sequence number no member has started).
constexpr size_t kKeepViews = 16;
}  // namespace

Membership::Membership(Engine* engine, int rank, int nranks, int64_t timeoutMs,
                       uint32_t incarnation)
    : engine_(engine),
      rank_(rank),
      n_(nranks),
      timeoutMs_(timeoutMs),
      failed_(static_cast<size_t>(nranks), 0),
      incs_(static_cast<size_t>(nranks), 0),
      wantsIn_(static_cast<size_t>(nranks), 0),
      sendSeq_(static_cast<size_t>(nranks), 0),
      recvSeq_(static_cast<size_t>(nranks), 0),
      in_(static_cast<size_t>(nranks)) {
  incs_[static_cast<size_t>(rank)] = incarnation;
  joining_ = incarnation > 0;
  gated_ = joining_;
}

Membership::~Membership() = default;

gcclResult_t Membership::start() {
  for (int p = 0; p < n_; ++p) {
    if (p == rank_) continue;
    // A joiner could not reach it: gone, as far as this rank can tell.
    if (engine_->connection(p) == nullptr) failed_[static_cast<size_t>(p)] = 1;
    GCCL_CHECK(postReceive(p));
  }
  if (joining_) sendJoin(nowMs());
  return gcclSuccess;
}

void Membership::sendJoin(int64_t now) {
  lastJoinSentMs_ = now;
  Message m = makeMessage(Type::kJoin);
  for (int p = 0; p < n_; ++p)
    if (p != rank_ && !isFailed(p)) send(p, m);
}

Membership::Message Membership::makeMessage(Type type) const {
  Message m;
  m.type = type;
  m.round = maxRound_;
  m.ranks = failed_;
  m.incs = incs_;
  return m;
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

gcclResult_t Membership::onPeerArrived(int peer, uint32_t incarnation) {
  size_t p = static_cast<size_t>(peer);
  GCCL_INFO(kLogNet, "rank %d: rank %d (incarnation %u) connected to rejoin", rank_, peer,
            incarnation);
  incs_[p] = incarnation;
  failed_[p] = 0;
  wantsIn_[p] = 0;  // until its JOIN comes
  sendSeq_[p] = 0;
  recvSeq_[p] = 0;
  in_[p] = Incoming();
  return postReceive(peer);
}

// ---- views ---------------------------------------------------------------------------

const std::vector<uint8_t>* Membership::aliveFor(uint64_t seq) const {
  const View* view = nullptr;
  for (const View& v : history_)
    if (v.switchSeq <= seq) view = &v;
  if (view == nullptr) return nullptr;
  return seq == view->switchSeq ? &view->mixing : &view->alive;
}

uint32_t Membership::incarnationAt(int peer, uint64_t seq) const {
  const View* view = nullptr;
  for (const View& v : history_)
    if (v.switchSeq <= seq) view = &v;
  if (view != nullptr) return view->incs[static_cast<size_t>(peer)];
  // View 0 holds every rank's first incarnation (before the oldest view
  // kept: that view's, the best guess left).
  return history_.empty() ? 0 : history_.front().incs[static_cast<size_t>(peer)];
}

void Membership::joinsAt(uint64_t seq, std::vector<Join>* out) const {
  out->clear();
  const View* view = nullptr;
  for (const View& v : history_)
    if (v.switchSeq <= seq) view = &v;
  if (view == nullptr || view->switchSeq != seq) return;
  // The donor: the nearest rank below the joiner (cyclically) that mixed
  // before, its in-neighbour on the ring and on the exponential graphs; a
  // view always holds one (membership.h).
  for (int r = 0; r < n_; ++r) {
    if (!view->joined[static_cast<size_t>(r)]) continue;
    int donor = -1;
    for (int d = 1; d < n_ && donor < 0; ++d) {
      int q = (r - d + n_) % n_;
      if (view->mixing[static_cast<size_t>(q)]) donor = q;
    }
    out->push_back({r, donor});
  }
}

bool Membership::inView(int r) const {
  size_t i = static_cast<size_t>(r);
  if (history_.empty()) return incs_[i] == 0;
  const View& v = history_.back();
  return v.alive[i] && v.incs[i] == incs_[i];
}

int Membership::coordinator() const {
  // A joiner leads nothing: it asks the lowest member it reached.
  for (int r = 0; r < n_; ++r)
    if (joining_ ? r != rank_ && !isFailed(r) : inView(r) && !isFailed(r)) return r;
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
  if (joining_) {
    int64_t j = lastJoinSentMs_ + joinRepeatMs();
    d = d == 0 ? j : std::min(d, j);
  }
  return d;
}

int64_t Membership::joinRepeatMs() const {
  return std::max<int64_t>(timeoutMs_ / 8, 100);
}

void Membership::declareFailed(int r, const std::string& reason) {
  if (r == rank_ || isFailed(r)) return;
  engine_->peerFailed(r, reason);  // calls onPeerFailed
}

void Membership::onPeerFailed(int peer) {
  if (isFailed(peer)) return;
  failed_[static_cast<size_t>(peer)] = 1;
  wantsIn_[static_cast<size_t>(peer)] = 0;
  forgetPeer(peer);
  suspicionPending_ = true;
}

void Membership::appendView(View v) {
  v.mixing = mixingOf(v);
  history_.push_back(std::move(v));
  if (history_.size() > kKeepViews) history_.erase(history_.begin());
}

void Membership::adoptHistory(const std::vector<View>& history) {
  uint64_t last = epoch();
  for (const View& v : history)
    if (v.epoch > last) {
      appendView(v);
      last = v.epoch;
    }
  if (history_.empty()) return;
  const View& latest = history_.back();
  if (joining_) {
    // The incarnations of the others are the view's; this rank is in once a
    // view holds its own.
    for (int r = 0; r < n_; ++r)
      if (r != rank_ && latest.alive[static_cast<size_t>(r)])
        incs_[static_cast<size_t>(r)] =
            std::max(incs_[static_cast<size_t>(r)], latest.incs[static_cast<size_t>(r)]);
    if (inView(rank_)) {
      joining_ = false;
      joinSeq_ = latest.switchSeq;
      for (const View& v : history_)
        if (v.alive[static_cast<size_t>(rank_)] &&
            v.incs[static_cast<size_t>(rank_)] == incs_[static_cast<size_t>(rank_)]) {
          joinSeq_ = v.switchSeq;
          break;
        }
      engine_->adoptSequence(joinSeq_);
      GCCL_WARN(kLogNet,
                "rank %d: rejoined (incarnation %u): the survivors took it in from "
                "collective #%llu on (ranks %s alive)",
                rank_, incs_[static_cast<size_t>(rank_)], static_cast<unsigned long long>(joinSeq_),
                listOf(latest.alive, true).c_str());
    }
  }
  for (int r = 0; r < n_; ++r) {
    size_t i = static_cast<size_t>(r);
    if (latest.alive[i]) wantsIn_[i] = 0;
    // A restarted rank the survivors took back no longer counts as failed.
    if (r != rank_ && latest.alive[i] && latest.incs[i] == incs_[i] && !isFailed(r) &&
        engine_->isPeerFailed(r) && engine_->connection(r) != nullptr)
      engine_->peerBack(r);
    // A rank the view leaves out fails here too, unless what this rank knows
    // is a newer incarnation of it (a restarted process on its way in).
    if (!latest.alive[i] && !isFailed(r) && current(r, latest.incs[i]))
      declareFailed(r, "the survivors agreed that it failed");
  }
}

// ---- rounds --------------------------------------------------------------------------

void Membership::startRound(int64_t now) {
  if (joining_) return;  // (it found no member to ask)
  leading_ = true;
  round_ = newRound();
  roundStartMs_ = now;
  proposal_.assign(static_cast<size_t>(n_), 0);
  for (int r = 0; r < n_; ++r) {
    size_t i = static_cast<size_t>(r);
    bool joiner = wantsIn_[i] && engine_->connection(r) != nullptr;
    proposal_[i] = (inView(r) || joiner) && !isFailed(r) ? 1 : 0;
  }
  // A rank left out because it failed is named with the incarnation that
  // failed; one left out although connected (a restarted rank that has not
  // asked in yet) with the incarnation the last view held, so that the
  // view fails the old process only.
  proposalIncs_ = incs_;
  for (int r = 0; r < n_; ++r) {
    size_t i = static_cast<size_t>(r);
    if (!proposal_[i] && !isFailed(r))
      proposalIncs_[i] = history_.empty() ? 0 : history_.back().incs[i];
  }
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
  Message m = makeMessage(Type::kPropose);
  m.round = round_;
  m.ranks = proposal_;
  m.incs = proposalIncs_;
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
  const View* prev = history.empty() ? nullptr : &history.back();
  bool changed = false;
  for (int r = 0; r < n_; ++r) {
    size_t i = static_cast<size_t>(r);
    bool wasIn = prev == nullptr ? true : prev->alive[i] != 0;
    uint32_t wasInc = prev == nullptr ? 0 : prev->incs[i];
    changed =
        changed || (proposal_[i] != 0) != wasIn || (proposal_[i] && proposalIncs_[i] != wasInc);
  }
  if (changed) {
    View v;
    v.epoch = (prev == nullptr ? 0 : prev->epoch) + 1;
    v.switchSeq = std::max(switchSeq, prev == nullptr ? 0 : prev->switchSeq);
    v.alive = proposal_;
    v.incs = proposalIncs_;
    v.joined.assign(static_cast<size_t>(n_), 0);
    for (int r = 0; r < n_; ++r) {
      size_t i = static_cast<size_t>(r);
      if (!proposal_[i]) continue;
      bool wasIn = prev == nullptr ? true : prev->alive[i] && prev->incs[i] == proposalIncs_[i];
      if (prev == nullptr && proposalIncs_[i] != 0) wasIn = false;
      // A new incarnation joins; one that joined with the previous view and
      // has not had its join step yet (no collective between) still does.
      bool pendingJoin = prev != nullptr && prev->joined[i] && prev->switchSeq == v.switchSeq &&
                         prev->incs[i] == proposalIncs_[i];
      v.joined[i] = !wasIn || pendingJoin ? 1 : 0;
    }
    bool anyMixing = false;
    for (int r = 0; r < n_; ++r)
      anyMixing =
          anyMixing || (v.alive[static_cast<size_t>(r)] && !v.joined[static_cast<size_t>(r)]);
    if (!anyMixing) {
      // Nobody left with a model to give (cannot happen: the coordinator is
      // a member); keep the joiners out rather than start from nothing.
      for (int r = 0; r < n_; ++r)
        if (v.joined[static_cast<size_t>(r)]) v.alive[static_cast<size_t>(r)] = 0;
      std::fill(v.joined.begin(), v.joined.end(), 0);
    }
    history.push_back(std::move(v));
  }
  Message m = makeMessage(Type::kCommit);
  m.round = round_;
  m.history = history;
  sendToProposal(m);
  if (changed) {
    const View& v = history.back();
    std::string joined = listOf(v.joined, true);
    GCCL_WARN(kLogNet,
              "rank %d: the survivors agreed: ranks %s alive, from collective #%llu on (failed: "
              "%s; joining: %s)",
              rank_, listOf(v.alive, true).c_str(), static_cast<unsigned long long>(v.switchSeq),
              listOf(v.alive, false).c_str(), joined.c_str());
  }
  leading_ = false;
  gated_ = false;
  adoptHistory(history);
}

gcclResult_t Membership::handle(int from, const Message& m, int64_t now) {
  maxRound_ = std::max(maxRound_, m.round);
  switch (m.type) {
    case Type::kSuspect: {
      // New failures start a round (onPeerFailed); known ones only when the
      // agreed view still has them and no round runs. A report about an
      // older incarnation than this rank knows is moot.
      bool inViewNow = false;
      for (int r = 0; r < n_; ++r) {
        if (!m.ranks[static_cast<size_t>(r)] || r == rank_) continue;
        if (!current(r, m.incs[static_cast<size_t>(r)])) continue;
        inViewNow = inViewNow || inView(r);
        declareFailed(r, "rank " + std::to_string(from) + " found it failed");
      }
      if (coordinator() == rank_ && inViewNow && !leading_) suspicionPending_ = true;
      return gcclSuccess;
    }
    case Type::kJoin: {
      // A restarted rank connected and asks in (it repeats until it is).
      wantsIn_[static_cast<size_t>(from)] = 1;
      if (coordinator() == rank_ && !inView(from) && !leading_) suspicionPending_ = true;
      return gcclSuccess;
    }
    case Type::kPropose: {
      if (m.round <= ackedRound_) return gcclSuccess;  // an older round
      if (!m.ranks[static_cast<size_t>(rank_)] ||
          m.incs[static_cast<size_t>(rank_)] != incs_[static_cast<size_t>(rank_)]) {
        // The coordinator counts this rank as failed: the survivors go on
        // without it, and their connections to it close.
        GCCL_WARN(kLogNet, "rank %d: rank %d proposed a view without this rank (%s)", rank_, from,
                  listOf(m.ranks, true).c_str());
        return gcclSuccess;
      }
      if (joining_)
        for (int r = 0; r < n_; ++r)
          if (r != rank_ && !isFailed(r) && m.ranks[static_cast<size_t>(r)])
            incs_[static_cast<size_t>(r)] =
                std::max(incs_[static_cast<size_t>(r)], m.incs[static_cast<size_t>(r)]);
      for (int r = 0; r < n_; ++r)
        if (!m.ranks[static_cast<size_t>(r)] && r != rank_ && inView(r) &&
            current(r, m.incs[static_cast<size_t>(r)]))
          declareFailed(r, "rank " + std::to_string(from) + " proposed the survivors without it");
      leading_ = leading_ && from == rank_;
      if (!gated_) firstGatedMs_ = now;
      gated_ = true;
      gatedSinceMs_ = now;
      pingSentMs_ = 0;
      ackedRound_ = m.round;
      ackedTo_ = from;
      Message ack = makeMessage(Type::kAck);
      ack.round = m.round;
      ack.value = engine_->nextSequence();
      ack.history = history_;
      send(from, ack);
      return gcclSuccess;
    }
    case Type::kAck: {
      if (!leading_ || m.round != round_) return gcclSuccess;
      // A member that knows of a failure the proposal still includes, or
      // that has no connection to an incarnation the proposal includes.
      bool stale = false;
      for (int r = 0; r < n_; ++r) {
        size_t i = static_cast<size_t>(r);
        if (!proposal_[i] || r == rank_ || r == from) continue;
        if (m.incs[i] < proposalIncs_[i]) {
          GCCL_INFO(kLogNet, "rank %d: rank %d has no connection to rank %d's incarnation %u yet",
                    rank_, from, r, proposalIncs_[i]);
          wantsIn_[i] = 0;  // until it asks again
          suspicionPending_ = true;
          stale = true;
        } else if (m.ranks[i] && m.incs[i] == proposalIncs_[i]) {
          declareFailed(r, "rank " + std::to_string(from) + " found it failed");
          stale = true;
        }
      }
      if (stale) return gcclSuccess;  // a new round follows (suspicionPending_)
      acked_[static_cast<size_t>(from)] = 1;
      ackNext_[static_cast<size_t>(from)] = m.value;
      uint64_t theirs = m.history.empty() ? 0 : m.history.back().epoch;
      uint64_t best = bestHistory_.empty() ? 0 : bestHistory_.back().epoch;
      if (theirs > best) {
        // Theirs is newer: keep what this rank has before its first view.
        std::vector<View> merged;
        for (const View& v : bestHistory_)
          if (m.history.empty() || v.epoch < m.history.front().epoch) merged.push_back(v);
        merged.insert(merged.end(), m.history.begin(), m.history.end());
        bestHistory_ = std::move(merged);
      }
      maybeCommit();
      return gcclSuccess;
    }
    case Type::kCommit:
      if (m.round < ackedRound_) return gcclSuccess;
      adoptHistory(m.history);
      gated_ = joining_;
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
  // A joiner repeats its JOIN until a view takes it in (a coordinator may
  // have dropped it, or failed).
  if (joining_ && now - lastJoinSentMs_ >= joinRepeatMs()) sendJoin(now);
  // A failure found here goes to the coordinator (or starts a round).
  if (suspicionPending_) {
    suspicionPending_ = false;
    int c = coordinator();
    if (c == rank_) {
      startRound(now);
    } else if (!joining_) {
      send(c, makeMessage(Type::kSuspect));
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
  if (joining_) return false;
  for (int r = 0; r < n_; ++r)
    if (r != rank_ && inView(r) == isFailed(r)) return false;
  return true;
}

std::vector<uint8_t> Membership::currentAlive() const {
  if (!history_.empty()) return history_.back().alive;
  return std::vector<uint8_t>(static_cast<size_t>(n_), 1);
}

void Membership::announceShrink(uint64_t epoch, const std::vector<uint8_t>& id) {
  Message m = makeMessage(Type::kShrink);
  m.value = epoch;
  m.payload = id;
  std::vector<uint8_t> alive = currentAlive();
  for (int r = 0; r < n_; ++r)
    if (r != rank_ && alive[static_cast<size_t>(r)]) send(r, m);
}

void Membership::arriveAtBarrier(uint64_t id) {
  std::vector<uint8_t>& arrived = barriers_[id];
  arrived.resize(static_cast<size_t>(n_), 0);
  arrived[static_cast<size_t>(rank_)] = 1;
  Message m = makeMessage(Type::kBarrier);
  m.value = id;
  for (int r = 0; r < n_; ++r)
    if (r != rank_ && inView(r) && !isFailed(r)) send(r, m);
}

bool Membership::barrierPassed(uint64_t id) {
  auto it = barriers_.find(id);
  if (it == barriers_.end()) return false;
  for (int r = 0; r < n_; ++r)
    if (r != rank_ && inView(r) && !isFailed(r) && !it->second[static_cast<size_t>(r)])
      return false;
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

namespace {

class JoinedOp final : public Op {
 public:
  JoinedOp(uint64_t* joinSeq, gcclRequest* req)
      : Op(OpKind::kShrink, transport::MessageMeta{}, req), joinSeq_(joinSeq) {}
  gcclResult_t start(OpContext& ctx) override {
    GCCL_REQUIRE(ctx.engine->membership() != nullptr, gcclInternalError,
                 "a rejoin outside fault-tolerant mode");
    deadlineMs_ = nowMs() + ctx.timeoutMs;
    return gcclSuccess;
  }
  gcclResult_t progress(OpContext& ctx, bool* done) override {
    Membership* m = ctx.engine->membership();
    *done = !m->joining();
    if (*done) {
      *joinSeq_ = m->joinSeq();
      return gcclSuccess;
    }
    GCCL_REQUIRE(nowMs() < deadlineMs_, gcclTimeout,
                 "the survivors did not take this rank in within %lld ms (every member it "
                 "reached was asked; see their logs)",
                 static_cast<long long>(ctx.timeoutMs));
    return gcclSuccess;
  }

 private:
  uint64_t* joinSeq_;
  int64_t deadlineMs_ = 0;
};

}  // namespace

std::unique_ptr<Op> makeJoinedOp(uint64_t* joinSeq, gcclRequest* req) {
  return std::make_unique<JoinedOp>(joinSeq, req);
}

}  // namespace gccl
