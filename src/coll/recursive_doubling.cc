// AllReduce by recursive doubling, for small messages (latency-bound).
//
// With p the largest power of two <= n and e = n - p extra ranks: ranks
// 0..2e-1 pair up first, the even one of each pair hands its data to the odd
// one and sits out; the p remaining ranks exchange whole buffers with the
// partner at distance 1, 2, 4 ... (in renumbered ranks), each combining
// mine OP theirs with a commutative kernel, so both partners hold the same
// bits; at the end every odd rank of a pair returns the result to its even
// partner.
#include <vector>

#include "coll/algorithms.h"
#include "base/check.h"

namespace gccl {

namespace {

class RecursiveDoublingOp final : public Op {
 public:
  RecursiveDoublingOp(const CollArgs& a, gcclRequest* req)
      : Op(OpKind::kAllReduce, makeMeta(OpKind::kAllReduce, a.type, a.op, 0, a.count), req),
        a_(a),
        bytes_(a.count * elementSize(a.type)) {}

  gcclResult_t start(OpContext& ctx) override {
    int n = a_.nranks, r = a_.rank;
    pow2_ = 1;
    while (pow2_ * 2 <= n)
      pow2_ *= 2;
    extra_ = n - pow2_;
    rounds_ = 0;
    while ((1 << rounds_) < pow2_)
      ++rounds_;
    void* p = nullptr;
    GCCL_CHECK(ctx.scratch(bytes_ + 64, a_.recvMem, &p));
    tmp_ = static_cast<uint8_t*>(p);
    if (r < 2 * extra_) {
      newRank_ = (r % 2 == 0) ? -1 : r / 2;
    } else {
      newRank_ = r - extra_;
    }
    if (newRank_ >= 0) GCCL_CHECK(ctx.exec->copy(a_.recv, a_.recvMem, a_.send, a_.sendMem, bytes_));
    phase_ = 0;
    return postPhase(ctx);
  }

  gcclResult_t progress(OpContext& ctx, bool* done) override {
    for (;;) {
      GCCL_CHECK(checkTransfer(send_));
      GCCL_CHECK(checkTransfer(recv_));
      if (send_.pending() || recv_.pending()) {
        *done = false;
        return gcclSuccess;
      }
      GCCL_CHECK(finishPhase(ctx));
      ++phase_;
      if (phase_ > rounds_ + 1) {
        *done = true;
        return gcclSuccess;
      }
      GCCL_CHECK(postPhase(ctx));
    }
  }

 private:
  int realRank(int newRank) const { return newRank < extra_ ? newRank * 2 + 1 : newRank + extra_; }
  void reset(Transfer* t) { t->req.state = transport::RequestState::kDone; }

  // Phase 0: fold the extra ranks in; 1..rounds: exchanges; rounds+1: hand back.
  gcclResult_t postPhase(OpContext& ctx) {
    reset(&send_);
    reset(&recv_);
    int r = a_.rank;
    uint64_t tag = collectiveTag(seq, static_cast<uint64_t>(phase_));
    if (phase_ == 0) {
      if (r >= 2 * extra_) return gcclSuccess;
      if (newRank_ < 0) return postSend(ctx, r + 1, a_.send, bytes_, tag, &send_);
      return postRecv(ctx, r - 1, tmp_, bytes_, tag, &recv_);
    }
    if (phase_ <= rounds_) {
      if (newRank_ < 0) return gcclSuccess;
      int partner = realRank(newRank_ ^ (1 << (phase_ - 1)));
      GCCL_CHECK(postRecv(ctx, partner, tmp_, bytes_, tag, &recv_));
      return postSend(ctx, partner, a_.recv, bytes_, tag, &send_);
    }
    if (r >= 2 * extra_) return gcclSuccess;
    if (newRank_ < 0) return postRecv(ctx, r + 1, a_.recv, bytes_, tag, &recv_);
    return postSend(ctx, r - 1, a_.recv, bytes_, tag, &send_);
  }

  gcclResult_t finishPhase(OpContext& ctx) {
    bool received = phase_ <= rounds_ && newRank_ >= 0 && (phase_ > 0 || a_.rank < 2 * extra_);
    if (received && bytes_ > 0)
      GCCL_CHECK(ctx.exec->reduce(a_.recv, a_.recv, tmp_, a_.count, a_.type, a_.op, a_.recvMem));
    // Divide once, before the result is handed back, so every rank holds the same bits.
    if (phase_ == rounds_ && a_.op == gcclAvg && newRank_ >= 0 && bytes_ > 0)
      GCCL_CHECK(ctx.exec->divide(a_.recv, a_.recv, a_.count, a_.type, a_.nranks, a_.recvMem));
    return gcclSuccess;
  }

  CollArgs a_;
  size_t bytes_;
  int pow2_ = 1, extra_ = 0, rounds_ = 0, newRank_ = 0, phase_ = 0;
  uint8_t* tmp_ = nullptr;
  Transfer send_, recv_;
};

}  // namespace

std::unique_ptr<Op> makeRecursiveDoublingAllReduce(const CollArgs& args, gcclRequest* req) {
  return std::make_unique<RecursiveDoublingOp>(args, req);
}

}  // namespace gccl
