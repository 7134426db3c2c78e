// Gossip mixing steps: PushSum (SGP) and neighbour averaging (D-PSGD).
//
// One step on a topology: this rank sends its tensor to each out-peer and
// folds in what its in-peers sent, x <- a_ii x + sum_j a_ij y_j. Senders send
// the tensor as it is (not pre-scaled): the receiver knows a_ij from the
// topology, so a single snapshot serves every out-peer and no precision is
// lost to a scaled copy in a half type. PushSum also carries the push-sum
// weight, always as a float64 message of its own.
//
// The tensor travels in slices. Slice s is folded in once it has arrived
// from every in-peer, with one pass of the mixing kernel in in-peer order,
// so a step's result does not depend on arrival order, and folding overlaps
// the arrival of later slices. Receives are windowed (a few slices per
// in-peer at a time); every send is posted at the start from the snapshot,
// so no rank's sends wait on its receives and the exchange cannot deadlock.
//
// With a codec (GossipArgs::codec), each slice is encoded once at the start
// into a buffer of the op (every out-peer gets the same bytes) and a slice is
// folded as x <- x + sum_j a_ij q_j - (sum_k a_ki) q_i, where q = decode of
// an encoding: this rank's own q_i is decoded from the bytes it sent, so it
// keeps exactly what it did not send and the sums over ranks are conserved.
// Lattice messages are decoded against the slice of x they are folded into.
//
// Fault-tolerant mode: the step uses the graph of the ranks the survivors
// agreed are alive for its sequence number (bindView), and goes on without
// a peer that fails: nothing is folded from what a failed in-peer did not
// deliver, and a slice (or the weight) that could not be delivered to a
// failed out-peer stays with the sender, whose self weight grows by that
// peer's share, so the survivors' sums of x and w lose only what the failed
// ranks held. Slices are then folded only once their sends have finished.
// At the step where a restarted rank joins, its donor also sends it the
// tensor and the weight (gossip/join.h) and keeps what it did not take.
#include <algorithm>
#include <string>
#include <vector>

#include "base/check.h"
#include "gossip/gossip_ops.h"
#include "gossip/join.h"

namespace gccl {

namespace {

constexpr size_t kWindow = 4;

class MixOp final : public Op {
 public:
  MixOp(const GossipArgs& a, gcclRequest* req)
      : Op(a.pushSum ? OpKind::kPushSum : OpKind::kNeighborAverage,
           makeGossipMeta(a.pushSum ? OpKind::kPushSum : OpKind::kNeighborAverage, a.type, a.step,
                          a.topo->fingerprint(a.step), a.count, a.codec.signature),
           req),
        a_(a),
        elem_(elementSize(a.type)),
        bytes_(a.count * elem_) {}

  bool tolerant() const override { return true; }

  void bindView(OpContext& ctx) override {
    const std::vector<uint8_t>* alive = ctx.aliveFor(seq);
    if (alive == nullptr) return;
    std::shared_ptr<Topology> restricted;
    if (a_.topo->restrictedTo(*alive, &restricted) != gcclSuccess) {
      bindError_ = threadLastError();
      return;
    }
    a_.topo = std::move(restricted);
    meta_ = makeGossipMeta(kind_, a_.type, a_.step, a_.topo->fingerprint(a_.step), a_.count,
                           a_.codec.signature);
  }

  gcclResult_t start(OpContext& ctx) override {
    GCCL_REQUIRE(bindError_.empty(), gcclInternalError, "%s", bindError_.c_str());
    tolerate_ = ctx.faultTolerant;
    a_.topo->outPeers(a_.step, ctx.rank, &out_, &self_);
    a_.topo->inPeers(a_.step, ctx.rank, &in_);
    size_t sliceElems = std::max<size_t>(1, ctx.params->chunkBytes / elem_);
    slices_ = std::max<size_t>(1, (a_.count + sliceElems - 1) / sliceElems);
    // Tag steps 1..slices_ (the last two are the join's).
    slices_ = std::min(slices_, (size_t{1} << kTagStepBits) - 3);
    sliceBytes_ = ((a_.count + slices_ - 1) / slices_) * elem_;
    sliceBytes_ = (sliceBytes_ + 63) & ~size_t{63};
    window_ = std::min(kWindow, slices_);
    size_t npeers = in_.size();
    // Scratch: window_ x npeers receive slots. In place, what is sent is
    // what gets mixed: a slice is folded only once every out-peer has its
    // copy of it (its send is complete), so no snapshot of x is needed.
    // With a codec, slots hold encodings, and the scratch also holds this
    // rank's encoded slices and a decoded slice per in-peer and its own.
    inPlace_ = a_.send == a_.recv;
    coded_ = a_.codec.active;
    slotBytes_ = sliceBytes_;
    size_t extra = 0;
    if (coded_) {
      size_t maxLen = (a_.count + slices_ - 1) / slices_;
      GCCL_CHECK(a_.codec.maxBytes(maxLen, a_.type, &slotBytes_));
      slotBytes_ = (slotBytes_ + 63) & ~size_t{63};
      extra = slices_ * slotBytes_ + (npeers + 1) * sliceBytes_;
    }
    void* p = nullptr;
    GCCL_CHECK(ctx.scratch(window_ * npeers * slotBytes_ + extra + 64, a_.recvMem, &p));
    slots_ = static_cast<uint8_t*>(p);
    encoded_ = slots_ + window_ * npeers * slotBytes_;
    decoded_ = encoded_ + slices_ * slotBytes_;
    const uint8_t* source = static_cast<const uint8_t*>(a_.send);
    if (!inPlace_) GCCL_CHECK(ctx.exec->copy(a_.recv, a_.recvMem, a_.send, a_.sendMem, bytes_));
    if (coded_) {
      encodedLen_.resize(slices_);
      for (size_t s = 0; s < slices_; ++s) {
        size_t b, len;
        range(s, &b, &len);
        GCCL_CHECK(encodeSlice(ctx, s, source + b * elem_, len));
      }
      for (const auto& o : out_)
        sentShare_ += o.weight;
    }
    if (a_.pushSum) __atomic_load(a_.psWeight, &weightOut_, __ATOMIC_ACQUIRE);
    GCCL_CHECK(postJoinSends(ctx, source));

    sends_.resize(out_.size() * (slices_ + 1));
    recvs_.resize(in_.size() * (slices_ + 1));
    weightsIn_.assign(in_.size(), 0);
    for (size_t j = 0; j < in_.size(); ++j) {
      if (a_.pushSum)
        GCCL_CHECK(postRecv(ctx, in_[j].peer, &weightsIn_[j], sizeof(double), collectiveTag(seq, 0),
                            &recvs_[j * (slices_ + 1)]));
    }
    for (size_t k = 0; k < out_.size(); ++k) {
      Transfer* t = &sends_[k * (slices_ + 1)];
      if (a_.pushSum)
        GCCL_CHECK(
            postSend(ctx, out_[k].peer, &weightOut_, sizeof(double), collectiveTag(seq, 0), t));
      for (size_t s = 0; s < slices_; ++s) {
        size_t b, len;
        range(s, &b, &len);
        if (coded_)
          GCCL_CHECK(postSend(ctx, out_[k].peer, encoded_ + s * slotBytes_, encodedLen_[s],
                              collectiveTag(seq, 1 + s), t + 1 + s));
        else
          GCCL_CHECK(postSend(ctx, out_[k].peer, source + b * elem_, len * elem_,
                              collectiveTag(seq, 1 + s), t + 1 + s));
      }
    }
    return gcclSuccess;
  }

  gcclResult_t progress(OpContext& ctx, bool* done) override {
    for (bool moved = true; moved;) {
      moved = false;
      // Post receives for the slices that fit in the window.
      while (posted_ < slices_ && posted_ < folded_ + window_) {
        size_t b, len;
        range(posted_, &b, &len);
        for (size_t j = 0; j < in_.size(); ++j)
          GCCL_CHECK(postRecv(ctx, in_[j].peer, slot(posted_, j), coded_ ? slotBytes_ : len * elem_,
                              collectiveTag(seq, 1 + posted_),
                              &recvs_[j * (slices_ + 1) + 1 + posted_]));
        ++posted_;
        moved = true;
      }
      // Fold in the oldest slice once every in-peer's part is here.
      while (folded_ < posted_) {
        bool ready = true;
        for (size_t j = 0; j < in_.size(); ++j) {
          const Transfer& t = recvs_[j * (slices_ + 1) + 1 + folded_];
          GCCL_CHECK(check(ctx, t));
          ready = ready && !t.pending();
        }
        for (size_t k = 0; ((inPlace_ && !coded_) || tolerate_) && k < out_.size(); ++k) {
          const Transfer& t = sends_[k * (slices_ + 1) + 1 + folded_];
          GCCL_CHECK(check(ctx, t));
          ready = ready && !t.pending();
        }
        // A joiner takes the whole tensor as it was before the step.
        for (const Transfer& t : joinSends_) {
          GCCL_CHECK(check(ctx, t));
          ready = ready && !t.pending();
        }
        if (!ready) break;
        GCCL_CHECK(fold(ctx, folded_));
        ++folded_;
        moved = true;
      }
    }
    if (folded_ < slices_) {
      *done = false;
      return gcclSuccess;
    }
    for (auto* list : {&sends_, &joinSends_})
      for (auto& t : *list) {
        GCCL_CHECK(check(ctx, t));
        if (t.pending()) {
          *done = false;
          return gcclSuccess;
        }
      }
    if (a_.pushSum) {
      for (size_t j = 0; j < in_.size(); ++j) {
        GCCL_CHECK(check(ctx, recvs_[j * (slices_ + 1)]));
        if (recvs_[j * (slices_ + 1)].pending()) {
          *done = false;
          return gcclSuccess;
        }
      }
      // A weight a failed out-peer did not get stays here; one a failed
      // in-peer did not send is not there.
      double w = (self_ + keptShare(0) + joinKept(0)) * weightOut_;
      for (size_t j = 0; j < in_.size(); ++j)
        if (recvs_[j * (slices_ + 1)].done()) w += in_[j].weight * weightsIn_[j];
      __atomic_store(a_.psWeight, &w, __ATOMIC_RELEASE);
    }
    *done = true;
    return gcclSuccess;
  }

 private:
  // A failed transfer with a failed peer is no error in fault-tolerant mode.
  gcclResult_t check(OpContext& ctx, const Transfer& t) {
    if (tolerate_ && ctx.lostToFailure(t)) return gcclSuccess;
    return checkTransfer(t);
  }
  // Part `part` (0: the weight, 1 + s: slice s): the out-peers' shares
  // that were not delivered (their peer failed).
  double keptShare(size_t part) const {
    double kept = 0;
    for (size_t k = 0; tolerate_ && k < out_.size(); ++k)
      if (sends_[k * (slices_ + 1) + part].req.failed()) kept += out_[k].weight;
    return kept;
  }
  // The joiners this rank gives its model to at this step (join.h): the
  // header, then the whole tensor as it is before the step.
  gcclResult_t postJoinSends(OpContext& ctx, const uint8_t* source) {
    if (!tolerate_) return gcclSuccess;
    joiners_ = joinersFrom(ctx, seq);
    if (joiners_.empty()) return gcclSuccess;
    double k = static_cast<double>(joiners_.size());
    JoinHeader h;
    h.layout = JoinLayout::kWhole;
    h.pushSum = a_.pushSum;
    h.type = a_.type;
    h.count = a_.count;
    h.step = a_.step;
    h.weight = weightOut_;
    if (a_.pushSum) {
      // Each joiner gets as much of this rank's own share as it keeps.
      joinShare_ = self_ / (k + 1);
      self_ -= k * joinShare_;
      h.coefficient = joinShare_;
    }
    joinHeaders_.assign(joiners_.size() * kJoinHeaderBytes, 0);
    joinSends_.resize(2 * joiners_.size());
    for (size_t i = 0; i < joiners_.size(); ++i) {
      uint8_t* hb = joinHeaders_.data() + i * kJoinHeaderBytes;
      encodeJoinHeader(h, hb);
      GCCL_CHECK(postSend(ctx, joiners_[i], hb, kJoinHeaderBytes,
                          collectiveTag(seq, kJoinHeaderStep), &joinSends_[2 * i]));
      GCCL_CHECK(postSend(ctx, joiners_[i], source, bytes_, collectiveTag(seq, kJoinDataStep),
                          &joinSends_[2 * i + 1]));
    }
    return gcclSuccess;
  }
  // Part 0 (the header, with the weight) or 1 (the tensor): the joiners'
  // shares that were not delivered (the joiner failed again).
  double joinKept(size_t part) const {
    double kept = 0;
    for (size_t i = 0; i < joiners_.size(); ++i)
      if (joinSends_[2 * i + part].req.failed()) kept += joinShare_;
    return kept;
  }
  void range(size_t s, size_t* b, size_t* len) const {
    *b = splitPoint(a_.count, slices_, s);
    *len = splitPoint(a_.count, slices_, s + 1) - *b;
  }
  uint8_t* slot(size_t slice, size_t peer) const {
    return slots_ + ((slice % window_) * in_.size() + peer) * slotBytes_;
  }
  // The codec's parameters for slice s: its own seed for stochastic rounding.
  kernels::codec::Params sliceParams(size_t s, size_t len, int rank) const {
    return a_.codec.forMessage(len, mixBits(mixBits(a_.step) ^ static_cast<uint64_t>(rank)) + s);
  }
  gcclResult_t encodeSlice(OpContext& ctx, size_t s, const void* src, size_t len) {
    return ctx.exec->encode(sliceParams(s, len, ctx.rank), src, len, a_.type,
                            encoded_ + s * slotBytes_, slotBytes_, &encodedLen_[s], nullptr,
                            a_.recvMem);
  }
  gcclResult_t fold(OpContext& ctx, size_t s) {
    size_t b, len;
    range(s, &b, &len);
    if (len == 0) return gcclSuccess;
    uint8_t* x = static_cast<uint8_t*>(a_.recv) + b * elem_;
    // Terms of the in-peers whose part arrived (all of them unless one failed).
    ys_.clear();
    bs_.clear();
    double kept = keptShare(1 + s);
    double joinKept = this->joinKept(1);
    kernels::codec::Params p = coded_ ? sliceParams(s, len, ctx.rank) : kernels::codec::Params{};
    for (size_t j = 0; j < in_.size(); ++j) {
      const Transfer& t = recvs_[j * (slices_ + 1) + 1 + s];
      if (!t.done()) continue;  // a failed in-peer's: nothing to fold
      bs_.push_back(in_[j].weight);
      if (!coded_) {
        ys_.push_back(slot(s, j));
        continue;
      }
      // Decode what the in-peer sent, against x.
      uint8_t* q = decoded_ + j * sliceBytes_;
      gcclResult_t r = ctx.exec->decode(p, slot(s, j), t.req.bytes, len, a_.type, q,
                                        a_.codec.reference(x), a_.recvMem);
      if (r != gcclSuccess)
        return setError(r, "decoding the message from rank %d: %s", in_[j].peer, threadLastError());
      ys_.push_back(q);
    }
    if (!coded_)
      return ctx.exec->mix(x, self_ + kept + joinKept, ys_.data(), bs_.data(),
                           static_cast<int>(ys_.size()), len, a_.type, a_.recvMem);
    // And what this rank sent, decoded as its out-peers decode it.
    if (!out_.empty()) {
      uint8_t* q = decoded_ + in_.size() * sliceBytes_;
      GCCL_CHECK(ctx.exec->decode(p, encoded_ + s * slotBytes_, encodedLen_[s], len, a_.type, q,
                                  a_.codec.reference(x), a_.recvMem));
      ys_.push_back(q);
      bs_.push_back(-(sentShare_ - kept));
    }
    double given = joinShare_ * static_cast<double>(joiners_.size()) - joinKept;
    return ctx.exec->mix(x, 1.0 - given, ys_.data(), bs_.data(), static_cast<int>(ys_.size()), len,
                         a_.type, a_.recvMem);
  }

  GossipArgs a_;
  std::string bindError_;
  bool tolerate_ = false;
  size_t elem_, bytes_;
  std::vector<PeerWeight> out_, in_;
  double self_ = 1;
  size_t slices_ = 1, sliceBytes_ = 0, window_ = 1, posted_ = 0, folded_ = 0;
  uint8_t* slots_ = nullptr;
  bool inPlace_ = false;
  bool coded_ = false;
  size_t slotBytes_ = 0;        // a receive slot: a slice, or its largest encoding
  uint8_t* encoded_ = nullptr;  // coded: slices_ encodings of this rank's slices
  uint8_t* decoded_ = nullptr;  // coded: in_.size() + 1 decoded slices
  std::vector<size_t> encodedLen_;
  double sentShare_ = 0;  // coded: sum of the out-peers' weights
  double weightOut_ = 0;
  std::vector<double> weightsIn_;
  std::vector<Transfer> sends_, recvs_;
  // Rejoin: the joiners this rank donates to, the part of its model each
  // takes (PushSum; 0 for averaging), headers, and per joiner header + tensor.
  std::vector<int> joiners_;
  double joinShare_ = 0;
  std::vector<uint8_t> joinHeaders_;
  std::vector<Transfer> joinSends_;
  std::vector<const void*> ys_;
  std::vector<double> bs_;
};

}  // namespace

std::unique_ptr<Op> makeMixOp(const GossipArgs& args, gcclRequest* req) {
  return std::make_unique<MixOp>(args, req);
}

}  // namespace gccl
