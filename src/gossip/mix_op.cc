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
#include <algorithm>
#include <vector>

#include "base/check.h"
#include "gossip/gossip_ops.h"

namespace gccl {

namespace {

constexpr size_t kWindow = 4;

class MixOp final : public Op {
 public:
  MixOp(const GossipArgs& a, gcclRequest* req)
      : Op(a.pushSum ? OpKind::kPushSum : OpKind::kNeighborAverage,
           makeGossipMeta(a.pushSum ? OpKind::kPushSum : OpKind::kNeighborAverage, a.type, a.step,
                          a.topo->fingerprint(a.step), a.count),
           req),
        a_(a),
        elem_(elementSize(a.type)),
        bytes_(a.count * elem_) {}

  gcclResult_t start(OpContext& ctx) override {
    a_.topo->outPeers(a_.step, ctx.rank, &out_, &self_);
    a_.topo->inPeers(a_.step, ctx.rank, &in_);
    size_t sliceElems = std::max<size_t>(1, ctx.params->chunkBytes / elem_);
    slices_ = std::max<size_t>(1, (a_.count + sliceElems - 1) / sliceElems);
    slices_ = std::min(slices_, (size_t{1} << kTagStepBits) - 2);
    sliceBytes_ = ((a_.count + slices_ - 1) / slices_) * elem_;
    sliceBytes_ = (sliceBytes_ + 63) & ~size_t{63};
    window_ = std::min(kWindow, slices_);
    size_t npeers = in_.size();
    // Scratch: window_ x npeers receive slots. In place, what is sent is
    // what gets mixed: a slice is folded only once every out-peer has its
    // copy of it (its send is complete), so no snapshot of x is needed.
    inPlace_ = a_.send == a_.recv;
    void* p = nullptr;
    GCCL_CHECK(ctx.scratch(window_ * npeers * sliceBytes_ + 64, a_.recvMem, &p));
    slots_ = static_cast<uint8_t*>(p);
    const uint8_t* source = static_cast<const uint8_t*>(a_.send);
    if (!inPlace_) GCCL_CHECK(ctx.exec->copy(a_.recv, a_.recvMem, a_.send, a_.sendMem, bytes_));
    if (a_.pushSum) __atomic_load(a_.psWeight, &weightOut_, __ATOMIC_ACQUIRE);

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
          GCCL_CHECK(postRecv(ctx, in_[j].peer, slot(posted_, j), len * elem_,
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
          GCCL_CHECK(checkTransfer(t));
          ready = ready && t.done();
        }
        for (size_t k = 0; inPlace_ && k < out_.size(); ++k) {
          const Transfer& t = sends_[k * (slices_ + 1) + 1 + folded_];
          GCCL_CHECK(checkTransfer(t));
          ready = ready && t.done();
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
    for (auto& t : sends_) {
      GCCL_CHECK(checkTransfer(t));
      if (t.pending()) {
        *done = false;
        return gcclSuccess;
      }
    }
    if (a_.pushSum) {
      for (size_t j = 0; j < in_.size(); ++j) {
        GCCL_CHECK(checkTransfer(recvs_[j * (slices_ + 1)]));
        if (recvs_[j * (slices_ + 1)].pending()) {
          *done = false;
          return gcclSuccess;
        }
      }
      double w = self_ * weightOut_;
      for (size_t j = 0; j < in_.size(); ++j)
        w += in_[j].weight * weightsIn_[j];
      __atomic_store(a_.psWeight, &w, __ATOMIC_RELEASE);
    }
    *done = true;
    return gcclSuccess;
  }

 private:
  void range(size_t s, size_t* b, size_t* len) const {
    *b = splitPoint(a_.count, slices_, s);
    *len = splitPoint(a_.count, slices_, s + 1) - *b;
  }
  uint8_t* slot(size_t slice, size_t peer) const {
    return slots_ + ((slice % window_) * in_.size() + peer) * sliceBytes_;
  }
  gcclResult_t fold(OpContext& ctx, size_t s) {
    size_t b, len;
    range(s, &b, &len);
    if (len == 0) return gcclSuccess;
    ys_.resize(in_.size());
    bs_.resize(in_.size());
    for (size_t j = 0; j < in_.size(); ++j) {
      ys_[j] = slot(s, j);
      bs_[j] = in_[j].weight;
    }
    return ctx.exec->mix(static_cast<uint8_t*>(a_.recv) + b * elem_, self_, ys_.data(), bs_.data(),
                         static_cast<int>(in_.size()), len, a_.type, a_.recvMem);
  }

  GossipArgs a_;
  size_t elem_, bytes_;
  std::vector<PeerWeight> out_, in_;
  double self_ = 1;
  size_t slices_ = 1, sliceBytes_ = 0, window_ = 1, posted_ = 0, folded_ = 0;
  uint8_t* slots_ = nullptr;
  bool inPlace_ = false;
  double weightOut_ = 0;
  std::vector<double> weightsIn_;
  std::vector<Transfer> sends_, recvs_;
  std::vector<const void*> ys_;
  std::vector<double> bs_;
};

}  // namespace

std::unique_ptr<Op> makeMixOp(const GossipArgs& args, gcclRequest* req) {
  return std::make_unique<MixOp>(args, req);
}

}  // namespace gccl
