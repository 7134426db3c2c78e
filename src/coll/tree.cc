// Rooted collectives: Broadcast and Reduce.
//
// Small messages take a binomial tree (ceil(log2 n) hops). Large ones take a
// chain through the ranks in order from the root, cut into slices so every
// link is busy at once: the time approaches one message's transfer time
// whatever n is. Ranks are renumbered so the root is virtual rank 0.
#include <vector>

#include "coll/algorithms.h"
#include "base/check.h"

namespace gccl {

namespace {

constexpr size_t kReduceWindow = 8;

class RootedOp : public Op {
 protected:
  RootedOp(OpKind kind, const CollArgs& a, gcclRequest* req)
      : Op(kind, makeMeta(kind, a.type, kind == OpKind::kReduce ? a.op : gcclSum, a.root, a.count),
           req),
        a_(a),
        elem_(elementSize(a.type)),
        bytes_(a.count * elem_),
        v_((a.rank - a.root + a.nranks) % a.nranks) {}
  int real(int v) const { return (v + a_.root) % a_.nranks; }
  size_t nslices() const {
    size_t sliceElems = std::max<size_t>(1, a_.chunkBytes / elem_);
    size_t n = std::max<size_t>(1, (a_.count + sliceElems - 1) / sliceElems);
    return std::min(n, (size_t{1} << kTagStepBits) - 1);
  }
  CollArgs a_;
  size_t elem_, bytes_;
  int v_;
};

// ---- Broadcast ------------------------------------------------------------

// The last rank of the order (virtual rank n-1) tells the root, with an
// empty message under this step, that it has its data. The root waits for
// it, so a root that other ranks do not agree on never returns alone: ranks
// that name different roots see each other's messages and report the
// mismatch (see Engine::checkMismatch) instead of each keeping its own data.
constexpr uint64_t kBroadcastAckStep = (uint64_t{1} << kTagStepBits) - 1;

class BroadcastOp final : public RootedOp {
 public:
  BroadcastOp(const CollArgs& a, bool pipelined, gcclRequest* req)
      : RootedOp(OpKind::kBroadcast, a, req), pipelined_(pipelined) {}

  gcclResult_t start(OpContext& ctx) override {
    int n = a_.nranks;
    if (v_ == 0) GCCL_CHECK(ctx.exec->copy(a_.recv, a_.recvMem, a_.send, a_.sendMem, bytes_));
    if (n == 1) return gcclSuccess;
    if (v_ == 0)
      GCCL_CHECK(
          postRecv(ctx, real(n - 1), nullptr, 0, collectiveTag(seq, kBroadcastAckStep), &ack_));
    if (!pipelined_) {
      // Binomial tree: receive from the parent, then send to the children.
      int mask = 1;
      while (mask < n && !(v_ & mask))
        mask <<= 1;
      childMask_ = mask >> 1;
      if (v_ != 0) {
        recvs_.resize(1);
        GCCL_CHECK(
            postRecv(ctx, real(v_ - mask), a_.recv, bytes_, collectiveTag(seq, 0), &recvs_[0]));
      }
      return gcclSuccess;
    }
    slices_ = nslices();
    if (v_ > 0) {
      recvs_.resize(slices_);
      for (size_t s = 0; s < slices_; ++s) {
        size_t b = splitPoint(a_.count, slices_, s), e = splitPoint(a_.count, slices_, s + 1);
        GCCL_CHECK(postRecv(ctx, real(v_ - 1), static_cast<uint8_t*>(a_.recv) + b * elem_,
                            (e - b) * elem_, collectiveTag(seq, s), &recvs_[s]));
      }
    }
    if (v_ < n - 1) sends_.resize(slices_);
    return gcclSuccess;
  }

  gcclResult_t progress(OpContext& ctx, bool* done) override {
    int n = a_.nranks;
    *done = false;
    if (n == 1) {
      *done = true;
      return gcclSuccess;
    }
    for (auto& t : recvs_)
      GCCL_CHECK(checkTransfer(t));
    for (auto& t : sends_)
      GCCL_CHECK(checkTransfer(t));
    GCCL_CHECK(checkTransfer(ack_));
    if (!pipelined_) {
      if (!recvs_.empty() && recvs_[0].pending()) return gcclSuccess;
      if (!sentChildren_) {
        sentChildren_ = true;
        for (int mask = childMask_; mask > 0; mask >>= 1)
          if (v_ + mask < n) {
            sends_.emplace_back();
          }
        size_t i = 0;
        for (int mask = childMask_; mask > 0; mask >>= 1)
          if (v_ + mask < n)
            GCCL_CHECK(postSend(ctx, real(v_ + mask), a_.recv, bytes_, collectiveTag(seq, 0),
                                &sends_[i++]));
      }
    } else {
      // Forward each slice as soon as it is here (the root has them all).
      while (nextSend_ < sends_.size() && (v_ == 0 || recvs_[nextSend_].done())) {
        size_t s = nextSend_++;
        size_t b = splitPoint(a_.count, slices_, s), e = splitPoint(a_.count, slices_, s + 1);
        GCCL_CHECK(postSend(ctx, real(v_ + 1), static_cast<uint8_t*>(a_.recv) + b * elem_,
                            (e - b) * elem_, collectiveTag(seq, s), &sends_[s]));
      }
      if (nextSend_ < sends_.size()) return gcclSuccess;
    }
    for (auto& t : recvs_)
      if (t.pending()) return gcclSuccess;
    if (v_ == n - 1 && !ackSent_) {
      ackSent_ = true;
      GCCL_CHECK(postSend(ctx, real(0), nullptr, 0, collectiveTag(seq, kBroadcastAckStep), &ack_));
    }
    for (auto& t : sends_)
      if (t.pending()) return gcclSuccess;
    if (ack_.pending()) return gcclSuccess;
    GCCL_CHECK(checkTransfer(ack_));
    *done = true;
    return gcclSuccess;
  }

 private:
  bool pipelined_;
  bool ackSent_ = false;
  Transfer ack_;
  int childMask_ = 0;
  bool sentChildren_ = false;
  size_t slices_ = 0, nextSend_ = 0;
  std::vector<Transfer> recvs_, sends_;
};

// ---- Reduce ---------------------------------------------------------------

class TreeReduceOp final : public RootedOp {
 public:
  TreeReduceOp(const CollArgs& a, gcclRequest* req) : RootedOp(OpKind::kReduce, a, req) {}

  gcclResult_t start(OpContext& ctx) override {
    // acc holds this subtree's partial result: the root's output buffer, or scratch.
    void* p = nullptr;
    GCCL_CHECK(ctx.scratch(2 * bytes_ + 128, a_.sendMem, &p));
    auto* scratch = static_cast<uint8_t*>(p);
    acc_ = v_ == 0 ? static_cast<uint8_t*>(a_.recv) : scratch;
    tmp_ = scratch + ((bytes_ + 63) & ~size_t{63});
    GCCL_CHECK(ctx.exec->copy(acc_, a_.sendMem, a_.send, a_.sendMem, bytes_));
    mask_ = 1;
    return postNext(ctx);
  }

  gcclResult_t progress(OpContext& ctx, bool* done) override {
    *done = false;
    for (;;) {
      GCCL_CHECK(checkTransfer(xfer_));
      if (xfer_.pending()) return gcclSuccess;
      if (finished_) break;
      if (receiving_ && bytes_ > 0)
        GCCL_CHECK(ctx.exec->reduce(acc_, acc_, tmp_, a_.count, a_.type, a_.op, a_.sendMem));
      mask_ <<= 1;
      GCCL_CHECK(postNext(ctx));
    }
    if (v_ == 0 && a_.op == gcclAvg && bytes_ > 0)
      GCCL_CHECK(ctx.exec->divide(acc_, acc_, a_.count, a_.type, a_.nranks, a_.sendMem));
    *done = true;
    return gcclSuccess;
  }

 private:
  // Children at distance 1, 2, 4 ... below the lowest set bit; then the parent.
  gcclResult_t postNext(OpContext& ctx) {
    xfer_.req.state = transport::RequestState::kDone;
    receiving_ = false;
    int n = a_.nranks;
    while (mask_ < n) {
      uint64_t tag =
          collectiveTag(seq, static_cast<uint64_t>(__builtin_ctz(static_cast<unsigned>(mask_))));
      if (v_ & mask_) {
        finished_ = true;
        return postSend(ctx, real(v_ - mask_), acc_, bytes_, tag, &xfer_);
      }
      if (v_ + mask_ < n) {
        receiving_ = true;
        return postRecv(ctx, real(v_ + mask_), tmp_, bytes_, tag, &xfer_);
      }
      mask_ <<= 1;
    }
    finished_ = true;
    return gcclSuccess;
  }

  uint8_t* acc_ = nullptr;
  uint8_t* tmp_ = nullptr;
  int mask_ = 1;
  bool receiving_ = false, finished_ = false;
  Transfer xfer_;
};

// Chain from virtual rank n-1 down to the root; each rank adds its own slice.
class ChainReduceOp final : public RootedOp {
 public:
  ChainReduceOp(const CollArgs& a, gcclRequest* req) : RootedOp(OpKind::kReduce, a, req) {}

  gcclResult_t start(OpContext& ctx) override {
    slices_ = nslices();
    sliceBytes_ = (((a_.count + slices_ - 1) / slices_) * elem_ + 63) & ~size_t{63};
    window_ = std::min(kReduceWindow, slices_);
    void* p = nullptr;
    GCCL_CHECK(ctx.scratch(window_ * sliceBytes_ + 64, a_.sendMem, &p));
    scratch_ = static_cast<uint8_t*>(p);
    state_.resize(slices_);
    for (size_t i = 0; i < window_; ++i)
      freeSlots_.push_back(window_ - 1 - i);
    return gcclSuccess;
  }

  gcclResult_t progress(OpContext& ctx, bool* done) override {
    int n = a_.nranks;
    bool first = v_ == n - 1, root = v_ == 0;
    for (bool moved = true; moved;) {
      moved = false;
      while (next_ < slices_ && !freeSlots_.empty()) {
        Slice& s = state_[next_];
        s.slot = freeSlots_.back();
        freeSlots_.pop_back();
        size_t b, len;
        range(next_, &b, &len);
        const uint8_t* mine = static_cast<const uint8_t*>(a_.send) + b * elem_;
        uint64_t tag = collectiveTag(seq, next_);
        if (first && !root) {
          GCCL_CHECK(postSend(ctx, real(v_ - 1), mine, len * elem_, tag, &s.send));
          s.phase = 2;
        } else if (n == 1) {
          s.phase = 1;
        } else {
          GCCL_CHECK(postRecv(ctx, real(v_ + 1), slot(s), len * elem_, tag, &s.recv));
          s.phase = 1;
        }
        ++next_;
        moved = true;
      }
      for (size_t i = doneUpTo_; i < next_; ++i) {
        Slice& s = state_[i];
        GCCL_CHECK(checkTransfer(s.recv));
        GCCL_CHECK(checkTransfer(s.send));
        if (s.phase == 1 && !s.recv.pending()) {
          size_t b, len;
          range(i, &b, &len);
          const uint8_t* mine = static_cast<const uint8_t*>(a_.send) + b * elem_;
          if (root) {
            uint8_t* out = static_cast<uint8_t*>(a_.recv) + b * elem_;
            if (n == 1) {
              GCCL_CHECK(ctx.exec->copy(out, a_.recvMem, mine, a_.sendMem, len * elem_));
            } else if (len > 0) {
              GCCL_CHECK(ctx.exec->reduce(out, mine, slot(s), len, a_.type, a_.op, a_.sendMem));
            }
            if (a_.op == gcclAvg && len > 0)
              GCCL_CHECK(ctx.exec->divide(out, out, len, a_.type, n, a_.sendMem));
            s.phase = 3;
          } else {
            if (len > 0)
              GCCL_CHECK(ctx.exec->reduce(slot(s), mine, slot(s), len, a_.type, a_.op, a_.sendMem));
            GCCL_CHECK(
                postSend(ctx, real(v_ - 1), slot(s), len * elem_, collectiveTag(seq, i), &s.send));
            s.phase = 2;
          }
          moved = true;
        }
        if (s.phase == 2 && !s.send.pending()) {
          s.phase = 3;
          moved = true;
        }
        if (s.phase == 3 && i == doneUpTo_) {
          freeSlots_.push_back(s.slot);
          ++doneUpTo_;
          moved = true;
        }
      }
    }
    *done = doneUpTo_ == slices_;
    return gcclSuccess;
  }

 private:
  struct Slice {
    int phase = 0;  // 0 not started, 1 receiving, 2 sending, 3 done
    size_t slot = 0;
    Transfer recv, send;
  };
  void range(size_t s, size_t* b, size_t* len) const {
    *b = splitPoint(a_.count, slices_, s);
    *len = splitPoint(a_.count, slices_, s + 1) - *b;
  }
  uint8_t* slot(const Slice& s) const { return scratch_ + s.slot * sliceBytes_; }

  size_t slices_ = 0, sliceBytes_ = 0, window_ = 0, next_ = 0, doneUpTo_ = 0;
  uint8_t* scratch_ = nullptr;
  std::vector<Slice> state_;
  std::vector<size_t> freeSlots_;
};

}  // namespace

std::unique_ptr<Op> makeBroadcastOp(const CollArgs& args, bool pipelined, gcclRequest* req) {
  return std::make_unique<BroadcastOp>(args, pipelined, req);
}

std::unique_ptr<Op> makeReduceOp(const CollArgs& args, bool pipelined, gcclRequest* req) {
  if (pipelined) return std::make_unique<ChainReduceOp>(args, req);
  return std::make_unique<TreeReduceOp>(args, req);
}

}  // namespace gccl
