// Pipelined ring: AllReduce (reduce-scatter then all-gather), ReduceScatter
// and AllGather.
//
// The data is cut into n chunks (one per rank) and every chunk into the same
// number of slices. Each slice walks through the ring's steps on its own, so
// while one slice is being reduced the next ones are on the wire. Slices take
// a scratch slot in order, from a window of the same size on every rank; a
// rank's left neighbour can only start slice s after finishing one of the
// slices before it, so whatever this rank needs to free a slot was sent
// before the frame it may be waiting to place: the ring cannot deadlock.
#include <algorithm>
#include <vector>

#include "coll/algorithms.h"
#include "base/check.h"

namespace gccl {

namespace {

constexpr size_t kWindow = 8;

class RingOp final : public Op {
 public:
  RingOp(RingMode mode, const CollArgs& a, gcclRequest* req)
      : Op(mode == RingMode::kAllReduce       ? OpKind::kAllReduce
           : mode == RingMode::kReduceScatter ? OpKind::kReduceScatter
                                              : OpKind::kAllGather,
           makeMeta(mode == RingMode::kAllReduce       ? OpKind::kAllReduce
                    : mode == RingMode::kReduceScatter ? OpKind::kReduceScatter
                                                       : OpKind::kAllGather,
                    a.type, mode == RingMode::kAllGather ? gcclSum : a.op, 0, a.count),
           req),
        mode_(mode),
        a_(a),
        n_(a.nranks),
        r_(a.rank),
        elem_(elementSize(a.type)) {}

  gcclResult_t start(OpContext& ctx) override {
    const auto* src = static_cast<const uint8_t*>(a_.send);
    auto* dst = static_cast<uint8_t*>(a_.recv);
    if (n_ == 1) {
      size_t bytes = a_.count * elem_;
      GCCL_CHECK(ctx.exec->copy(dst, a_.recvMem, src, a_.sendMem, bytes));
      if (mode_ != RingMode::kAllGather && a_.op == gcclAvg && bytes > 0)
        GCCL_CHECK(ctx.exec->divide(dst, dst, a_.count, a_.type, 1, a_.recvMem));
      finished_ = true;
      return gcclSuccess;
    }
    if (mode_ == RingMode::kAllReduce) {
      totalSteps_ = 2 * (n_ - 1);
    } else {
      totalSteps_ = n_ - 1;
    }
    // AllGather out of place: this rank's own block goes into place first.
    if (mode_ == RingMode::kAllGather) {
      uint8_t* mine = dst + static_cast<size_t>(r_) * a_.count * elem_;
      GCCL_CHECK(ctx.exec->copy(mine, a_.recvMem, src, a_.sendMem, a_.count * elem_));
    }
    size_t maxChunkElems = mode_ == RingMode::kAllReduce ? (a_.count + n_ - 1) / n_ : a_.count;
    size_t sliceElems = std::max<size_t>(1, a_.chunkBytes / elem_);
    nslices_ = std::max<size_t>(1, (maxChunkElems + sliceElems - 1) / sliceElems);
    size_t maxSlices = ((size_t{1} << kTagStepBits) - 1) / static_cast<size_t>(totalSteps_);
    nslices_ = std::min(nslices_, maxSlices);
    maxSliceBytes_ = ((maxChunkElems + nslices_ - 1) / nslices_) * elem_;
    maxSliceBytes_ = (maxSliceBytes_ + 63) & ~size_t{63};
    window_ = std::min(kWindow, nslices_);
    buffersPerSlot_ =
        mode_ == RingMode::kReduceScatter ? 2 : (mode_ == RingMode::kAllReduce ? 1 : 0);
    if (buffersPerSlot_ > 0) {
      void* p = nullptr;
      GCCL_CHECK(ctx.scratch(window_ * buffersPerSlot_ * maxSliceBytes_ + 64, a_.recvMem, &p));
      scratch_ = static_cast<uint8_t*>(p);
    }
    slices_.resize(nslices_);
    for (size_t i = 0; i < window_; ++i)
      freeSlots_.push_back(window_ - 1 - i);
    return gcclSuccess;
  }

  gcclResult_t progress(OpContext& ctx, bool* done) override {
    if (finished_) {
      *done = true;
      return gcclSuccess;
    }
    bool moved = true;
    while (moved) {
      moved = false;
      while (nextSlice_ < nslices_ && !freeSlots_.empty()) {
        Slice& s = slices_[nextSlice_];
        s.slot = freeSlots_.back();
        freeSlots_.pop_back();
        s.active = true;
        active_.push_back(nextSlice_++);
      }
      for (size_t k = 0; k < active_.size();) {
        size_t idx = active_[k];
        Slice& s = slices_[idx];
        if (!s.posted) {
          // Posting may complete other slices' receives from staged bytes:
          // go round again so no completion waits for an event that never comes.
          GCCL_CHECK(postStep(ctx, idx, s));
          s.posted = true;
          moved = true;
        }
        GCCL_CHECK(checkTransfer(s.send));
        GCCL_CHECK(checkTransfer(s.recv));
        if (!s.send.done() || !s.recv.done()) {
          ++k;
          continue;
        }
        GCCL_CHECK(finishStep(ctx, idx, s));
        moved = true;
        s.posted = false;
        if (++s.step == totalSteps_) {
          s.active = false;
          freeSlots_.push_back(s.slot);
          active_[k] = active_.back();
          active_.pop_back();
          ++slicesDone_;
          continue;
        }
      }
    }
    *done = slicesDone_ == nslices_;
    return gcclSuccess;
  }

 private:
  struct Slice {
    int step = 0;
    size_t slot = 0;
    bool active = false;
    bool posted = false;
    Transfer send, recv;
  };

  int mod(int x) const { return ((x % n_) + n_) % n_; }
  // Element range of slice `s` of chunk `c`.
  void sliceRange(int c, size_t s, size_t* begin, size_t* len) const {
    size_t cBegin, cLen;
    if (mode_ == RingMode::kAllReduce) {
      cBegin = splitPoint(a_.count, static_cast<size_t>(n_), static_cast<size_t>(c));
      cLen = splitPoint(a_.count, static_cast<size_t>(n_), static_cast<size_t>(c) + 1) - cBegin;
    } else {
      cBegin = static_cast<size_t>(c) * a_.count;
      cLen = a_.count;
    }
    size_t b = splitPoint(cLen, nslices_, s), e = splitPoint(cLen, nslices_, s + 1);
    *begin = cBegin + b;
    *len = e - b;
  }
  uint8_t* slotBuffer(const Slice& s, int which) const {
    return scratch_ + (s.slot * buffersPerSlot_ + static_cast<size_t>(which)) * maxSliceBytes_;
  }
  bool inReducePhase(int step) const { return mode_ != RingMode::kAllGather && step < n_ - 1; }

  // Chunks sent and received at `step` (see the header of this file).
  void stepChunks(int step, int* sendChunk, int* recvChunk) const {
    switch (mode_) {
      case RingMode::kAllReduce:
        if (step < n_ - 1) {
          *sendChunk = mod(r_ - step);
          *recvChunk = mod(r_ - step - 1);
        } else {
          int u = step - (n_ - 1);
          *sendChunk = mod(r_ + 1 - u);
          *recvChunk = mod(r_ - u);
        }
        return;
      case RingMode::kReduceScatter:
        *sendChunk = mod(r_ - step - 1);
        *recvChunk = mod(r_ - step - 2);
        return;
      case RingMode::kAllGather:
        *sendChunk = mod(r_ - step);
        *recvChunk = mod(r_ - step - 1);
        return;
    }
  }

  gcclResult_t postStep(OpContext& ctx, size_t idx, Slice& s) {
    int sc = 0, rc = 0;
    stepChunks(s.step, &sc, &rc);
    size_t sBegin, sLen, rBegin, rLen;
    sliceRange(sc, idx, &sBegin, &sLen);
    sliceRange(rc, idx, &rBegin, &rLen);
    const auto* src = static_cast<const uint8_t*>(a_.send);
    auto* dst = static_cast<uint8_t*>(a_.recv);
    const uint8_t* sendPtr;
    uint8_t* recvPtr;
    switch (mode_) {
      case RingMode::kAllReduce:
        sendPtr = s.step == 0 ? src + sBegin * elem_ : dst + sBegin * elem_;
        recvPtr = s.step < n_ - 1 ? slotBuffer(s, 0) : dst + rBegin * elem_;
        break;
      case RingMode::kReduceScatter:
        sendPtr = s.step == 0 ? src + sBegin * elem_ : slotBuffer(s, (s.step - 1) % 2);
        recvPtr = slotBuffer(s, s.step % 2);
        break;
      case RingMode::kAllGather:
      default:
        sendPtr = dst + sBegin * elem_;
        recvPtr = dst + rBegin * elem_;
        break;
    }
    uint64_t tag = collectiveTag(seq, static_cast<uint64_t>(s.step) * nslices_ + idx);
    GCCL_CHECK(postRecv(ctx, mod(r_ - 1), recvPtr, rLen * elem_, tag, &s.recv));
    GCCL_CHECK(postSend(ctx, mod(r_ + 1), sendPtr, sLen * elem_, tag, &s.send));
    return gcclSuccess;
  }

  gcclResult_t finishStep(OpContext& ctx, size_t idx, Slice& s) {
    if (!inReducePhase(s.step)) return gcclSuccess;
    int sc = 0, rc = 0;
    stepChunks(s.step, &sc, &rc);
    size_t begin, len;
    sliceRange(rc, idx, &begin, &len);
    if (len == 0) return gcclSuccess;
    const auto* mine = static_cast<const uint8_t*>(a_.send) + begin * elem_;
    bool last = s.step == n_ - 2;
    uint8_t* in;
    uint8_t* out;
    if (mode_ == RingMode::kAllReduce) {
      in = slotBuffer(s, 0);
      out = static_cast<uint8_t*>(a_.recv) + begin * elem_;
    } else {
      in = slotBuffer(s, s.step % 2);
      out = last ? static_cast<uint8_t*>(a_.recv) +
                       (begin - static_cast<size_t>(r_) * a_.count) * elem_
                 : in;
    }
    GCCL_CHECK(ctx.exec->reduce(out, mine, in, len, a_.type, a_.op, a_.recvMem));
    if (last && a_.op == gcclAvg)
      GCCL_CHECK(ctx.exec->divide(out, out, len, a_.type, n_, a_.recvMem));
    return gcclSuccess;
  }

  RingMode mode_;
  CollArgs a_;
  int n_, r_;
  size_t elem_;
  int totalSteps_ = 0;
  size_t nslices_ = 0, window_ = 0, maxSliceBytes_ = 0, buffersPerSlot_ = 0;
  uint8_t* scratch_ = nullptr;
  std::vector<Slice> slices_;
  std::vector<size_t> freeSlots_;
  std::vector<size_t> active_;
  size_t nextSlice_ = 0, slicesDone_ = 0;
  bool finished_ = false;
};

}  // namespace

std::unique_ptr<Op> makeRingOp(RingMode mode, const CollArgs& args, gcclRequest* req) {
  return std::make_unique<RingOp>(mode, args, req);
}

}  // namespace gccl
