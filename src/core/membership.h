// Fault-tolerant mode: how the survivors agree on who is alive, and from
// which collective on each of them mixes over a graph without the failed.
//
// Each rank keeps the agreed history of views: view 0 is every rank from
// sequence number 0; each later view names the ranks alive and the first
// collective sequence number that uses it (its switch point). Every rank
// applies the same history, so for any collective all survivors use the same
// graph, and no rank mixes with a graph its peers do not use.
//
// A new view is agreed in rounds run by a coordinator, the lowest rank of
// the current view that this rank does not consider failed:
//  1. A rank that finds a peer failed (its connection broke, it stopped
//     answering, or the survivors said so) closes the connection, tells the
//     ops (fault-tolerant ops go on without it, exact collectives fail) and
//     sends SUSPECT (the ranks it considers failed) to the coordinator; the
//     coordinator itself starts a round.
//  2. PROPOSE(round, alive): the coordinator's candidate view. A member
//     marks the ranks it leaves out as failed, stops starting collectives
//     (the gate) and answers ACK(round, next sequence number it would
//     start, the ranks it considers failed, its history).
//  3. When every member of the candidate acknowledged and none knows of a
//     failure the candidate still includes, the coordinator sends
//     COMMIT(round, history), where the new view switches at the largest
//     sequence number any member would start next (so nobody has started a
//     collective at or past it) and the history is the longest any member
//     had (a coordinator that died mid-commit may have committed a view to
//     some members only). Members adopt it and open the gate.
//  A member that knows of a failure the candidate includes makes the
//  coordinator start a new round; a member that does not acknowledge within
//  half the timeout is failed, and so is a coordinator that does not commit
//  within half the timeout of an acknowledgement. Rounds are numbered
//  (attempt << 16 | coordinator), larger than any round seen, so members
//  answer only the newest.
//
// Rejoin: a restarted rank gets a new incarnation (1, 2, ... from the
// rendezvous root), connects to every member it can reach (the engine adopts
// such a connection, failing the old incarnation if it still counted as
// alive) and sends JOIN to each. The coordinator then proposes a view with
// it; the joiner acknowledges like any member (its next sequence number is
// 0) and adopts the committed history. Every failure report names the
// incarnation it is about, so a report about the old process never fails the
// new one. A view records the incarnations it holds and which ranks joined
// with it: at its switch point those ranks take no part in the graph and get
// their model instead, each from its donor (the nearest rank below it,
// cyclically, that mixed before: a neighbour on the ring and the exponential
// graphs); from the next sequence number on they mix like the others.
//
// Messages are asynchronous traffic (transports/tags.h) with a sequence
// number per peer and direction, so they never queue behind collectives.
// Driver only, like everything the engine owns.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/op.h"
#include "core/request.h"
#include "gccl/gccl.h"
#include "transports/transport.h"

namespace gccl {

class Engine;

class Membership {
 public:
  // An agreed view: the alive flags (one per rank), their incarnations, the
  // ranks that joined with it, and its first sequence number. Epochs count
  // the views agreed after view 0 (which is every rank, incarnation 0).
  struct View {
    uint64_t epoch = 0;
    uint64_t switchSeq = 0;
    std::vector<uint8_t> alive;
    std::vector<uint8_t> joined;
    std::vector<uint32_t> incs;
    std::vector<uint8_t> mixing;  // alive but not joined (not on the wire)
  };
  using Join = RankJoin;

  // `incarnation` > 0: a restarted rank, joining until a view takes it in.
  Membership(Engine* engine, int rank, int nranks, int64_t timeoutMs, uint32_t incarnation = 0);
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Posts the receives from every peer; a joiner sends JOIN to each it reached.
  gcclResult_t start();
  // Each pass of the engine's loop: moves messages, runs rounds, enforces
  // the round deadlines. An error breaks the communicator.
  gcclResult_t poll(int64_t now);
  // The engine found `peer` failed and closed its connection.
  void onPeerFailed(int peer);
  // Before a connection closes: withdraw what is posted on it.
  void forgetPeer(int peer);
  // A connection from incarnation `incarnation` of `peer` is in place (the
  // engine failed the older one first, if it had one).
  gcclResult_t onPeerArrived(int peer, uint32_t incarnation);
  // The incarnation of `peer` this rank knows.
  uint32_t incarnation(int peer) const { return incs_[static_cast<size_t>(peer)]; }
  // The incarnation of `peer` that the view of collective `seq` holds.
  uint32_t incarnationAt(int peer, uint64_t seq) const;
  // A restarted rank: true until a view that takes it in is adopted; then
  // the sequence number of its join step (its first collective).
  bool joining() const { return joining_; }
  uint64_t joinSeq() const { return joinSeq_; }
  // The ranks that join at collective `seq`, each with its donor.
  void joinsAt(uint64_t seq, std::vector<Join>* out) const;
  // Alive in the latest agreed view, as the incarnation this rank knows
  // (view 0: every rank's first).
  bool inView(int r) const;
  // True while this rank acknowledged a round that is not committed yet:
  // it starts no collective meanwhile.
  bool gated() const { return gated_; }
  // The flags of the ranks whose graph collective `seq` uses (alive, less
  // those that join at `seq`), or null while every rank is.
  const std::vector<uint8_t>* aliveFor(uint64_t seq) const;
  // The earliest round deadline (0: none), for the engine's wait.
  int64_t nextDeadlineMs() const;

  // gcclCommShrink. Settled: no round runs and this rank's failed ranks are
  // exactly those the agreed view leaves out.
  bool settled() const;
  // How many views were agreed after view 0, and the latest alive flags.
  uint64_t epoch() const { return history_.empty() ? 0 : history_.back().epoch; }
  std::vector<uint8_t> currentAlive() const;
  // The leader of a shrink (the lowest alive rank) sends the new
  // communicator's unique id to the others of view `epoch`.
  void announceShrink(uint64_t epoch, const std::vector<uint8_t>& id);
  // The id announced for `epoch`, once it arrived.
  bool shrinkId(uint64_t epoch, std::vector<uint8_t>* id) const;
  // A barrier of the survivors (gcclPairwiseDestroy in fault-tolerant mode,
  // where an exact barrier fails once a rank has): this rank arrives at
  // barrier `id` (every alive peer is told), and it is passed once every
  // rank this rank does not consider failed has arrived; then forgotten.
  void arriveAtBarrier(uint64_t id);
  bool barrierPassed(uint64_t id);

  // Wire format (public for the unit test).
  enum class Type : uint8_t { kSuspect = 1, kPropose, kAck, kCommit, kShrink, kBarrier, kJoin };
  static constexpr size_t kMaxPayloadBytes = 256;
  // Messages carry the latest views only (older ones every member has).
  static constexpr size_t kWireViews = 4;
  struct Message {
    Type type = Type::kSuspect;
    uint64_t round = 0;
    uint64_t value = 0;            // ACK: next sequence number; SHRINK: the epoch
    std::vector<uint8_t> ranks;    // SUSPECT/ACK: failed; PROPOSE: alive (one flag per rank)
    std::vector<uint32_t> incs;    // the incarnation each flag is about
    std::vector<View> history;     // ACK, COMMIT: the latest views after view 0
    std::vector<uint8_t> payload;  // SHRINK: the new communicator's unique id
  };
  static std::vector<uint8_t> encode(const Message& m, int nranks);
  // False when the bytes are not a well-formed message for `nranks` ranks.
  static bool decode(const uint8_t* data, size_t len, int nranks, Message* out);
  static size_t maxBytes(int nranks);

 private:
  struct Outgoing {
    std::vector<uint8_t> bytes;
    transport::Request req;
    int peer = -1;
  };
  struct Incoming {
    std::vector<uint8_t> buf;
    transport::Request req;
    bool posted = false;
  };

  int coordinator() const;
  bool isFailed(int r) const { return failed_[static_cast<size_t>(r)] != 0; }
  // A report about incarnation `inc` of `r` concerns the one this rank knows.
  bool current(int r, uint32_t inc) const { return inc >= incs_[static_cast<size_t>(r)]; }
  Message makeMessage(Type type) const;
  void send(int peer, const Message& m);
  // To every member of the coordinator's proposal but this rank.
  void sendToProposal(const Message& m);
  gcclResult_t postReceive(int peer);
  gcclResult_t handle(int from, const Message& m, int64_t now);
  void startRound(int64_t now);
  void maybeCommit();
  void adoptHistory(const std::vector<View>& history);
  // Appends a view (and keeps history_ short).
  void appendView(View v);
  // Marks `r` failed through the engine (closing its connection), once.
  void declareFailed(int r, const std::string& reason);
  uint64_t newRound();
  // A joiner's JOIN to every member it reached, repeated every joinRepeatMs().
  void sendJoin(int64_t now);
  int64_t joinRepeatMs() const;

  Engine* engine_;
  int rank_, n_;
  int64_t timeoutMs_;
  std::vector<uint8_t> failed_;   // as this rank knows it (about incs_)
  std::vector<uint32_t> incs_;    // the incarnation of each rank this rank knows
  std::vector<uint8_t> wantsIn_;  // a rank that sent JOIN and is not in the view yet
  std::vector<View> history_;     // the latest views after view 0, oldest first
  bool joining_ = false;
  uint64_t joinSeq_ = 0;
  int64_t lastJoinSentMs_ = 0;
  std::vector<uint64_t> sendSeq_, recvSeq_;
  std::vector<Incoming> in_;
  std::deque<std::unique_ptr<Outgoing>> out_;
  uint64_t maxRound_ = 0;  // the largest round number seen
  // Member side.
  bool gated_ = false;
  uint64_t ackedRound_ = 0;
  int ackedTo_ = -1;
  int64_t gatedSinceMs_ = 0;  // since the last proposal, or the coordinator's last answer
  int64_t firstGatedMs_ = 0;  // since the gate closed
  int64_t pingSentMs_ = 0;    // a liveness probe to the coordinator is out
  // Coordinator side.
  bool leading_ = false;
  uint64_t round_ = 0;
  std::vector<uint8_t> proposal_;
  std::vector<uint32_t> proposalIncs_;
  std::vector<uint8_t> acked_;
  std::vector<uint64_t> ackNext_;
  std::vector<View> bestHistory_;
  int64_t roundStartMs_ = 0;
  bool suspicionPending_ = false;  // a failure to report to the coordinator
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> shrinkIds_;  // by epoch, latest few
  std::map<uint64_t, std::vector<uint8_t>> barriers_;                 // by id: who has arrived
};

class Op;
// The ops gcclCommShrink runs on the old communicator's engine (fault-
// tolerant mode only): wait until the agreement has settled, then report
// the epoch and alive flags; announce the new id (the leader); wait for it
// (the others). Results are written when the op completes.
struct ShrinkState {
  uint64_t epoch = 0;
  std::vector<uint8_t> alive;
  std::vector<uint8_t> id;  // announce: what to send; await: what arrived
};
enum class ShrinkStep { kSettle, kAnnounce, kAwait };
std::unique_ptr<Op> makeShrinkOp(ShrinkStep step, ShrinkState* state, gcclRequest* req);
// Arrives at the survivors' barrier `id` and completes once it is passed.
std::unique_ptr<Op> makeSurvivorBarrierOp(uint64_t id, gcclRequest* req);
// A restarted rank: completes once a view takes it in, with the sequence
// number of its join step in *joinSeq (fails after the timeout).
std::unique_ptr<Op> makeJoinedOp(uint64_t* joinSeq, gcclRequest* req);

}  // namespace gccl
