// A rank's connection to itself: sends and receives matched by tag in memory.
// Lets algorithms and user code treat "self" like any other peer.
#pragma once

#include <vector>

#include "transports/transport.h"

namespace gccl::transport {

class LoopbackConnection final : public Connection {
 public:
  explicit LoopbackConnection(int rank) : rank_(rank) {}
  const char* transportName() const override { return "loopback"; }
  gcclResult_t isend(const void* data, size_t len, uint64_t tag, MessageMeta meta,
                     Request* req) override;
  gcclResult_t irecv(void* data, size_t capacity, uint64_t tag, MessageMeta expect,
                     Request* req) override;
  void cancel(Request* req) override;
  gcclResult_t onEvents(int, uint32_t) override { return gcclSuccess; }
  void sendAbortNotice(const char*) override {}
  void sendCloseNotice() override {}
  const std::string& peerAbortReason() const override { return empty_; }
  bool peerClosed() const override { return false; }
  gcclResult_t sendPing() override { return gcclSuccess; }
  int64_t lastPongMs() const override { return 0; }
  // A matched pair is one message sent and one received, of the same bytes.
  uint64_t bytesSent() const override { return bytes_; }
  uint64_t bytesReceived() const override { return bytes_; }
  uint64_t messagesSent() const override { return messages_; }
  uint64_t messagesReceived() const override { return messages_; }
  int peer() const override { return rank_; }
  // Fails what is pending (a rank never fails itself, but the contract holds).
  void abandon() override {
    for (auto* list : {&sends_, &recvs_})
      for (const Pending& p : *list)
        if (p.req->pending()) p.req->state = RequestState::kFailed;
    sends_.clear();
    recvs_.clear();
  }

 private:
  struct Pending {
    void* data;
    size_t len;  // send: length; receive: capacity
    uint64_t tag;
    MessageMeta meta;
    Request* req;
  };
  gcclResult_t match(const Pending& send, const Pending& recv);

  int rank_;
  std::vector<Pending> sends_, recvs_;
  uint64_t bytes_ = 0;
  uint64_t messages_ = 0;
  std::string empty_;
};

}  // namespace gccl::transport
