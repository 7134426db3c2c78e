// Barrier (dissemination) and the point-to-point operations.
#include <string>

#include "coll/algorithms.h"
#include "base/check.h"

namespace gccl {

namespace {

// Round k: tell rank r + 2^k that this rank arrived, hear from r - 2^k.
// After ceil(log2 n) rounds every rank has heard, transitively, from all.
class BarrierOp final : public Op {
 public:
  BarrierOp(const CollArgs& a, gcclRequest* req)
      : Op(OpKind::kBarrier, makeMeta(OpKind::kBarrier, gcclUint8, gcclSum, 0, 0), req), a_(a) {}

  gcclResult_t start(OpContext& ctx) override { return post(ctx); }

  gcclResult_t progress(OpContext& ctx, bool* done) override {
    for (;;) {
      GCCL_CHECK(checkTransfer(send_));
      GCCL_CHECK(checkTransfer(recv_));
      if (send_.pending() || recv_.pending()) {
        *done = false;
        return gcclSuccess;
      }
      distance_ *= 2;
      ++round_;
      if (distance_ >= a_.nranks) {
        *done = true;
        return gcclSuccess;
      }
      GCCL_CHECK(post(ctx));
    }
  }

 private:
  gcclResult_t post(OpContext& ctx) {
    int n = a_.nranks;
    if (distance_ >= n) return gcclSuccess;
    uint64_t tag = collectiveTag(seq, static_cast<uint64_t>(round_));
    GCCL_CHECK(postRecv(ctx, (a_.rank - distance_ + n) % n, nullptr, 0, tag, &recv_));
    return postSend(ctx, (a_.rank + distance_) % n, nullptr, 0, tag, &send_);
  }
  CollArgs a_;
  int distance_ = 1;
  int round_ = 0;
  Transfer send_, recv_;
};

class P2POp final : public Op {
 public:
  P2POp(bool isSend, void* data, size_t bytes, MemoryType mem, int peer, uint64_t seq,
        gcclRequest* req)
      : Op(OpKind::kSendRecv, makeMeta(OpKind::kSendRecv, gcclUint8, gcclSum, 0, 0), req),
        isSend_(isSend),
        data_(data),
        bytes_(bytes),
        mem_(mem),
        peer_(peer),
        p2pSeq_(seq) {}

  const void* sendRegion(size_t* bytes) const override {
    *bytes = isSend_ ? bytes_ : 0;
    return isSend_ ? data_ : nullptr;
  }
  const void* recvRegion(size_t* bytes) const override {
    *bytes = isSend_ ? 0 : bytes_;
    return isSend_ ? nullptr : data_;
  }
  // Sends what the buffer holds now, even if a receive overwrites it meanwhile.
  // Runs on the caller's thread (gcclGroupEnd), before the batch is submitted.
  void detachSendBuffer(const std::shared_ptr<Executor>& exec) override {
    detachResult_ = copy_.allocate(exec, bytes_, mem_);
    if (detachResult_ == gcclSuccess)
      detachResult_ = exec->copy(copy_.data(), mem_, data_, mem_, bytes_);
    if (detachResult_ != gcclSuccess) {
      detachReason_ = threadLastError();
      return;
    }
    data_ = copy_.data();
  }

  gcclResult_t start(OpContext& ctx) override {
    if (detachResult_ != gcclSuccess)
      return setError(detachResult_, "copying the send buffer for rank %d: %s", peer_,
                      detachReason_.c_str());
    if (isSend_) return postSend(ctx, peer_, data_, bytes_, p2pTag(p2pSeq_), &xfer_);
    return postRecv(ctx, peer_, data_, bytes_, p2pTag(p2pSeq_), &xfer_, /*checkMeta=*/false);
  }

  gcclResult_t progress(OpContext&, bool* done) override {
    GCCL_CHECK(checkTransfer(xfer_));
    *done = xfer_.done();
    return gcclSuccess;
  }

 private:
  bool isSend_;
  void* data_;
  size_t bytes_;
  MemoryType mem_;
  int peer_;
  uint64_t p2pSeq_;
  Transfer xfer_;
  ExecBuffer copy_;
  gcclResult_t detachResult_ = gcclSuccess;
  std::string detachReason_;
};

}  // namespace

std::unique_ptr<Op> makeBarrierOp(const CollArgs& args, gcclRequest* req) {
  return std::make_unique<BarrierOp>(args, req);
}

std::unique_ptr<Op> makeSendOp(const void* data, size_t bytes, MemoryType mem, int peer,
                               uint64_t seq, gcclRequest* req) {
  return std::make_unique<P2POp>(true, const_cast<void*>(data), bytes, mem, peer, seq, req);
}

std::unique_ptr<Op> makeRecvOp(void* data, size_t bytes, MemoryType mem, int peer, uint64_t seq,
                               gcclRequest* req) {
  return std::make_unique<P2POp>(false, data, bytes, mem, peer, seq, req);
}

}  // namespace gccl
