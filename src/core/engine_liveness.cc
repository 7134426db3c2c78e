// The engine's deadlines and liveness checks (see engine.h, "Failure
// model"): what a stalled op waits for, probing those peers, reading their
// liveness reports, and the verdicts: a mismatched call, a peer that is alive
// but has not called the operation, a stopped peer, the backstop.
#include <algorithm>
#include <string>
#include <vector>

#include "base/check.h"
#include "core/engine.h"
#include "base/clock.h"

namespace gccl {

namespace {

// Liveness report layout (little-endian): started u64, flags u8 (bit 0
// running, bit 1 a collective runs), runningSeq u64, meta info u64, meta
// count u64, then two strings, each a u16 length and bytes: the running
// op's description and the last collective's.
void putU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out->push_back(static_cast<char>(v >> (8 * i)));
}
void putText(std::string* out, const std::string& text, size_t room) {
  size_t len = std::min(text.size(), room);
  out->push_back(static_cast<char>(len & 0xff));
  out->push_back(static_cast<char>(len >> 8));
  out->append(text, 0, len);
}
bool getU64(const std::string& in, size_t* at, uint64_t* v) {
  if (in.size() - *at < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i)
    *v |= static_cast<uint64_t>(static_cast<uint8_t>(in[*at + i])) << (8 * i);
  *at += 8;
  return true;
}
bool getText(const std::string& in, size_t* at, std::string* text) {
  if (in.size() - *at < 2) return false;
  size_t len =
      static_cast<uint8_t>(in[*at]) | static_cast<size_t>(static_cast<uint8_t>(in[*at + 1])) << 8;
  *at += 2;
  if (in.size() - *at < len) return false;
  text->assign(in, *at, len);
  *at += len;
  return true;
}

std::string collectiveTagSeqText(uint64_t tag) {
  return "#" + std::to_string(transport::tagSequence(tag));
}
}  // namespace

const std::string& Engine::livenessReport() const {
  if (!reportStale_) return report_;
  reportStale_ = false;
  std::string r;
  putU64(&r, startedSeqs_);
  const Op* front = active_.empty() ? nullptr : active_.front().get();
  bool collective = front != nullptr && front->hasSequence();
  r.push_back(static_cast<char>((front != nullptr ? 1 : 0) | (collective ? 2 : 0)));
  putU64(&r, collective ? front->seq : 0);
  putU64(&r, collective ? front->meta().info : 0);
  putU64(&r, collective ? front->meta().count : 0);
  std::string running = front == nullptr ? "" : front->describe();
  if (active_.size() > 1) running += " (and " + std::to_string(active_.size() - 1) + " more)";
  size_t room = (transport::kMaxLivenessReportBytes - r.size() - 4) / 2;
  putText(&r, running, room);
  putText(&r,
          startedSeqs_ == 0
              ? std::string()
              : describeMeta(lastCollectiveMeta_) + " #" + std::to_string(lastCollectiveSeq_),
          room);
  report_ = std::move(r);
  return report_;
}

void Engine::collectAnswers(int64_t now) {
  int64_t half = std::max<int64_t>(opt_.timeoutMs / 2, 1);
  std::vector<size_t> silent;
  for (size_t p = 0; p < probeSentMs_.size(); ++p) {
    int64_t sent = probeSentMs_[p];
    if (sent == 0) continue;
    auto& c = conns_[p];
    if (c && c->lastPongMs() >= sent) {
      probeSentMs_[p] = 0;
      PeerStatus st;
      const std::string& in = c->peerLivenessReport();
      size_t at = 0;
      uint64_t flags = 0;
      bool ok = getU64(in, &at, &st.started) && at < in.size();
      if (ok) flags = static_cast<uint8_t>(in[at++]);
      ok = ok && getU64(in, &at, &st.runningSeq) && getU64(in, &at, &st.runningMeta.info) &&
           getU64(in, &at, &st.runningMeta.count) && getText(in, &at, &st.runningDesc) &&
           getText(in, &at, &st.lastDesc);
      if (!ok) continue;  // an answer without a report proves liveness only
      st.running = (flags & 1) != 0;
      st.runningCollective = (flags & 2) != 0;
      st.answeredMs = c->lastPongMs();
      peerStatus_[p] = std::move(st);
      continue;
    }
    if (now - sent < half) continue;
    if (membership_) {
      peerFailed(static_cast<int>(p), "rank " + std::to_string(p) + " did not respond for " +
                                          std::to_string(now - std::min(sent, lastProgressMs_)) +
                                          " ms (process stopped, hung or unreachable) during " +
                                          active_.front()->describe());
      if (active_.empty()) return;
      continue;
    }
    silent.push_back(p);
  }
  if (silent.empty()) return;
  // Name every silent peer, not the first: where a stopped process can hold
  // up what others send through a shared queue (UCX's shared-memory FIFO),
  // a live peer's answer may be stuck behind the stopped one's, and only the
  // whole list is true.
  std::string who;
  for (size_t i = 0; i < silent.size(); ++i) {
    if (i > 0) who += i + 1 == silent.size() ? " and " : ", ";
    who += "rank " + std::to_string(silent[i]);
  }
  int64_t since = now - std::min(probeSentMs_[silent.front()], lastProgressMs_);
  fail(gcclTimeout, who +
                        (silent.size() == 1   ? " did"
                         : silent.size() == 2 ? " both did"
                                              : " all did") +
                        " not respond for " + std::to_string(since) +
                        " ms (process stopped, hung or unreachable) during " +
                        active_.front()->describe());
}

void Engine::probe(int64_t now, const std::vector<const Transfer*>& waiting) {
  for (const Transfer* t : waiting) {
    size_t p = static_cast<size_t>(t->peer);
    auto& c = conns_[p];
    if (t->peer == opt_.rank || !c || probeSentMs_[p] != 0) continue;
    probeSentMs_[p] = now;
    if (c->sendPing() != gcclSuccess) connectionFailed(c.get(), gcclRemoteError);
    if (broken_) return;
  }
  int64_t quarter = std::max<int64_t>(opt_.timeoutMs / 4, 1);
  nextProbeMs_ = std::max(lastProgressMs_ + 2 * quarter, now + quarter);
}

void Engine::judgeWaits(int64_t now, const std::vector<const Transfer*>& waiting) {
  bool pastTimeout = now - lastProgressMs_ >= opt_.timeoutMs;
  std::string mine = active_.front()->describe();
  for (const Transfer* t : waiting) {
    if (t->peer == opt_.rank) continue;
    const PeerStatus& st = peerStatus_[static_cast<size_t>(t->peer)];
    if (st.answeredMs < lastProgressMs_) continue;  // no answer during this stall yet
    std::string who = "rank " + std::to_string(t->peer);
    std::string last = st.lastDesc.empty() ? "it has called no collective yet"
                                           : "its last collective call: " + st.lastDesc;
    std::string doing = st.running ? "it is running " + st.runningDesc : "it is idle";
    bool sequenced = transport::isCollectiveTag(t->tag);
    if (!sequenced) {
      // Point-to-point or gossip-service traffic: only an idle peer is a verdict.
      if (pastTimeout && !st.running) {
        fail(gcclTimeout, who + " is alive but has not posted the " +
                              (t->isRecv ? "send" : "receive") + " that " + mine +
                              " waits for after " + std::to_string(now - lastProgressMs_) +
                              " ms (" + doing + "; " + last + ")");
        return;
      }
      continue;
    }
    uint64_t seq = transport::tagSequence(t->tag);
    const Op* op = nullptr;
    for (const auto& a : active_)
      if (a->isCollective() && a->seq == seq) op = a.get();
    std::string what =
        op != nullptr ? op->describe() : mine + " (collective #" + std::to_string(seq) + ")";
    if (st.runningCollective && st.runningSeq == seq) {
      if (op != nullptr && op->hasSequence() && !isJoinMeta(op->meta()) &&
          !isJoinMeta(st.runningMeta) &&
          (st.runningMeta.info != op->meta().info || st.runningMeta.count != op->meta().count)) {
        fail(gcclInvalidUsage, "mismatched collective calls: " + who + " called " +
                                   describeMeta(st.runningMeta) + " while this rank called " +
                                   op->describe() + mismatchHint(st.runningMeta, op->meta()));
        return;
      }
      continue;  // it waits on someone else, who gets reported by its own waiters
    }
    if (!pastTimeout) continue;
    if (st.started <= seq) {
      fail(gcclTimeout, who + " is alive but has not called " + what + " after " +
                            std::to_string(now - lastProgressMs_) + " ms (" + doing + "; " + last +
                            ")");
    } else {
      fail(gcclTimeout, who + " is alive and has moved past " + what +
                            ", but what this rank waits for from it has not arrived after " +
                            std::to_string(now - lastProgressMs_) + " ms (" + doing + "; " + last +
                            ")");
    }
    return;
  }
}

void Engine::checkDeadlines(int64_t now) {
  if (active_.empty() || broken_) return;
  collectAnswers(now);
  if (broken_) return;
  int64_t stall = now - lastProgressMs_;
  if (stall < kFirstCheckMs) return;
  std::vector<const Transfer*> waiting;
  for (auto& op : active_)
    op->pendingTransfers(&waiting);
  if (!mismatchChecked_) {
    // A short stall: a peer's message for this collective may be waiting
    // with another signature; ask the peers what they are doing.
    mismatchChecked_ = true;
    checkMismatch();
    if (broken_) return;
    probe(now, waiting);
    if (broken_) return;
  } else if (stall >= opt_.timeoutMs / 2 && now >= nextProbeMs_) {
    probe(now, waiting);
    if (broken_) return;
  }
  judgeWaits(now, waiting);
  if (broken_) return;
  // Every peer answers yet nothing moves: the culprit should have been
  // reported by the ranks that wait on it directly; fail with what this
  // rank waits for.
  if (stall >= 2 * opt_.timeoutMs) {
    std::vector<std::string> seen;
    std::string who;
    for (const Transfer* t : waiting) {
      std::string item = t->isRecv ? "data from rank " + std::to_string(t->peer)
                                   : "rank " + std::to_string(t->peer) + " to take data";
      if (std::find(seen.begin(), seen.end(), item) != seen.end()) continue;
      seen.push_back(item);
      who += (who.empty() ? "" : ", ") + item;
    }
    fail(gcclTimeout, active_.front()->describe() + " made no progress for " +
                          std::to_string(stall) + " ms, waiting for " +
                          (who.empty() ? "nothing?" : who));
  }
}

void Engine::noteProgress() {
  // Stalls are judged in tens of milliseconds: the coarse clock will do,
  // and it is read on every message.
  lastProgressMs_ = coarseNowMs();
  mismatchChecked_ = false;
  nextProbeMs_ = 0;
}

void Engine::checkMismatch() {
  // A send or receive to this rank itself can only be matched within its
  // own batch, and everything of the batch has been posted: it never will be.
  for (auto& op : active_) {
    if (op->isCollective()) continue;
    std::vector<const Transfer*> mine;
    op->pendingTransfers(&mine);
    for (const Transfer* t : mine)
      if (t->peer == opt_.rank) {
        fail(gcclInvalidUsage,
             op->describe() + std::string(": a ") + (t->isRecv ? "receive from" : "send to") +
                 " this rank itself has no matching " + (t->isRecv ? "send" : "receive") +
                 " in the same group (a send and a receive to oneself must be issued together "
                 "between gcclGroupStart and gcclGroupEnd)");
        return;
      }
  }
  Op* op = active_.front().get();
  bool sequenced = op->hasSequence();
  std::vector<std::pair<uint64_t, transport::MessageMeta>> paused;
  for (auto& c : conns_) {
    if (!c) continue;
    paused.clear();
    c->pausedFrames(&paused);
    for (const auto& [tag, meta] : paused) {
      if (!transport::isCollectiveTag(tag)) continue;
      uint64_t seq = transport::tagSequence(tag);
      // Collectives run in order: a message for one this rank has finished
      // can only come from a rank that called something else.
      bool finished = sequenced ? seq < op->seq : seq < startedSeqs_;
      if (finished) {
        fail(gcclInvalidUsage,
             "mismatched collective calls: rank " + std::to_string(c->peer()) + " sent data for " +
                 describeMeta(meta) + " " + collectiveTagSeqText(tag) +
                 ", which this rank has already completed as a different call (the ranks "
                 "disagree on an argument such as the root)");
        return;
      }
      // Ops that send nothing of their own (meta 0) have no signature to compare.
      if (!sequenced || seq != op->seq || isJoinMeta(op->meta())) continue;
      if (meta.info == op->meta().info && meta.count == op->meta().count) continue;
      fail(gcclInvalidUsage, "mismatched collective calls: rank " + std::to_string(c->peer()) +
                                 " called " + describeMeta(meta) + " while this rank called " +
                                 op->describe() + mismatchHint(meta, op->meta()));
      return;
    }
  }
}

}  // namespace gccl
