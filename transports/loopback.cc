#include "transports/loopback.h"

#include <cstring>

#include "base/check.h"

namespace gccl::transport {

gcclResult_t LoopbackConnection::match(const Pending& send, const Pending& recv) {
  recv.req->peerMeta = send.meta;
  if (recv.meta.info != kMetaAny &&
      (recv.meta.info != send.meta.info || recv.meta.count != send.meta.count)) {
    recv.req->metaMismatch = true;
    recv.req->state = RequestState::kFailed;
    send.req->state = RequestState::kFailed;
    return gcclSuccess;
  }
  if (send.len > recv.len) {
    recv.req->state = RequestState::kFailed;
    send.req->state = RequestState::kFailed;
    return setError(gcclInvalidUsage,
                    "rank %d sent itself a message of %zu bytes to a receive buffer of %zu bytes",
                    rank_, send.len, recv.len);
  }
  if (send.len > 0) memcpy(recv.data, send.data, send.len);
  bytes_ += send.len;
  ++messages_;
  recv.req->bytes = send.len;
  send.req->bytes = send.len;
  recv.req->state = RequestState::kDone;
  send.req->state = RequestState::kDone;
  return gcclSuccess;
}

gcclResult_t LoopbackConnection::isend(const void* data, size_t len, uint64_t tag, MessageMeta meta,
                                       Request* req) {
  req->state = RequestState::kPending;
  Pending s{const_cast<void*>(data), len, tag, meta, req};
  for (size_t i = 0; i < recvs_.size(); ++i) {
    if (recvs_[i].tag != tag) continue;
    Pending r = recvs_[i];
    recvs_.erase(recvs_.begin() + static_cast<long>(i));
    return match(s, r);
  }
  sends_.push_back(s);
  return gcclSuccess;
}

gcclResult_t LoopbackConnection::irecv(void* data, size_t capacity, uint64_t tag,
                                       MessageMeta expect, Request* req) {
  req->state = RequestState::kPending;
  req->metaMismatch = false;
  Pending r{data, capacity, tag, expect, req};
  for (size_t i = 0; i < sends_.size(); ++i) {
    if (sends_[i].tag != tag) continue;
    Pending s = sends_[i];
    sends_.erase(sends_.begin() + static_cast<long>(i));
    return match(s, r);
  }
  recvs_.push_back(r);
  return gcclSuccess;
}

void LoopbackConnection::cancel(Request* req) {
  for (auto* list : {&sends_, &recvs_})
    for (size_t i = 0; i < list->size(); ++i)
      if ((*list)[i].req == req) {
        list->erase(list->begin() + static_cast<long>(i));
        req->state = RequestState::kFailed;
        return;
      }
}

}  // namespace gccl::transport
