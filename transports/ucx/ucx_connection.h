// One peer over UCX (UCP active messages on one endpoint; the worker, its
// progress and its dispatch are shared: ucx_worker.h).
//
// Why active messages and not the tag API: UCP's tag matching is per worker,
// across all endpoints, on one 64-bit tag, and gccl's tags already use all 64
// bits (tags.h), so the peer could not be told apart by the tag; and a
// message of a tag nobody receives yet must not hold up the others. Active
// messages carry gccl's own header (tag and signature, ucx_wire.h) and arrive
// in a callback whatever was posted: the connection matches them by tag, in
// arrival order per tag, as the tcp and shm transports do. A small message
// (UCX's eager protocols) is copied into the receive when one is posted, or
// held in UCX's own buffer until one is (UCP_AM_FLAG_PERSISTENT_DATA: no copy
// of ours); a large one (rendezvous) arrives as a descriptor, and the data
// moves (zero-copy where UCX can: CMA between processes of one host, RDMA on
// a verbs network) straight into the posted buffer with
// ucp_am_recv_data_nbx. So a message nobody receives yet costs UCX buffer
// space for a small one and nothing but its descriptor for a large one.
//
// Trust: see ucx_transport.h. The connection is usable once the peer's HELLO
// proved the secret (its endpoint is then bound here) and its WELCOME said
// the peer has bound this rank's endpoint in turn, so no data is sent before
// the peer can tell where it comes from.
//
// Control (never waits behind data: every message is delivered to the
// callback on arrival, whatever is posted): ping and pong (with the poller's
// liveness report), the abort notice with its reason, and a goodbye.
//
// A dead peer breaks the connection with an error naming it, unless it said
// goodbye first. Endpoints ask for UCP_ERR_HANDLING_MODE_PEER (a failed wire,
// noticed by UCX's transports or its keepalive, calls the error handler);
// UCX 1.13's shared-memory transports have no peer failure handling, so
// where UCX finds no wire with it the endpoint is made without. A peer on
// this host (same boot and pid namespace) is also watched through a pidfd
// (pidfd_open), which the engine's poller reports when the process exits:
// at once, whatever UCX notices. Elsewhere, without peer failure handling,
// the engine's liveness probes are what notice.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "transports/transport.h"
#include "transports/ucx/ucx_worker.h"

namespace gccl::ucx {

class UcxConnection final : public transport::Connection {
 public:
  UcxConnection(std::shared_ptr<Worker> worker, int peer);
  ~UcxConnection() override;
  UcxConnection(const UcxConnection&) = delete;
  UcxConnection& operator=(const UcxConnection&) = delete;

  // ---- set-up (the transport's connect) ----
  // Creates the endpoint to the peer's worker address and sends HELLO;
  // peerPid > 0 (a process of this host and pid namespace) also watches the
  // peer's process through a pidfd, so its death is noticed at once.
  gcclResult_t open(const std::string& peerAddress, int peerPid);
  // The peer proved the secret and said it bound this rank's endpoint.
  bool ready() const { return helloSeen_ && welcomeSeen_; }
  bool broken() const { return !broken_.empty(); }
  gcclResult_t failed() const;

  // ---- from the worker's dispatch ----
  void onHandshake(Kind kind, const Handshake& h, ucp_ep_h replyEp);
  // UCS_INPROGRESS when the connection keeps `data` (until a receive takes it).
  ucs_status_t onMessage(const Header& h, void* data, size_t length, bool rendezvous);
  void runDeferred();

  // ---- transport::Connection ----
  gcclResult_t start() override;
  const char* transportName() const override { return "ucx"; }
  bool needsPolling() const override { return true; }
  gcclResult_t poll(bool* moved) override;
  bool armForSleep() override;
  gcclResult_t isend(const void* data, size_t len, uint64_t tag, transport::MessageMeta meta,
                     transport::Request* req) override;
  gcclResult_t irecv(void* data, size_t capacity, uint64_t tag, transport::MessageMeta expect,
                     transport::Request* req) override;
  void cancel(transport::Request* req) override;
  void abandon() override;
  gcclResult_t onEvents(int fd, uint32_t events) override;
  void sendAbortNotice(const char* reason) override;
  void sendCloseNotice() override;
  const std::string& peerAbortReason() const override { return abortReason_; }
  bool peerClosed() const override { return peerClosed_; }
  gcclResult_t sendPing() override;
  int64_t lastPongMs() const override { return lastPongMs_; }
  const std::string& peerLivenessReport() const override { return peerReport_; }
  uint64_t bytesSent() const override { return bytesSent_; }
  uint64_t bytesReceived() const override { return bytesReceived_; }
  uint64_t messagesSent() const override { return messagesSent_; }
  uint64_t messagesReceived() const override { return messagesReceived_; }
  int peer() const override { return peer_; }
  void pausedFrames(std::vector<std::pair<uint64_t, transport::MessageMeta>>* out) const override;

 private:
  // A UCP operation in flight: its callback finds it here. One that outlives
  // the connection (destroyed while UCX still held it) is orphaned (conn
  // null) and frees itself when UCX completes it.
  struct Op {
    enum Type : uint8_t { kSend, kControl, kReceive } type = kSend;
    const UcpApi* api = nullptr;
    Worker* worker = nullptr;  // counts the op while it is orphaned
    UcxConnection* conn = nullptr;
    transport::Request* req = nullptr;  // null for control, or once cancelled
    void* ucpRequest = nullptr;
    size_t bytes = 0;
    uint8_t header[kHeaderBytes] = {};
    std::string body;  // a control message's text, or a handshake
  };
  struct Posted {
    uint64_t tag;
    uint8_t* buf;
    size_t capacity;
    transport::MessageMeta expect;
    transport::Request* req;
  };
  struct Arrival {
    Header header;
    void* data;  // held eager data or a rendezvous descriptor (UCX's)
    size_t length;
    bool rendezvous;
  };

  static void onSendDone(void* request, ucs_status_t status, void* user);
  static void onReceiveDone(void* request, ucs_status_t status, size_t length, void* user);
  static void onEndpointError(void* arg, ucp_ep_h ep, ucs_status_t status);
  void endpointFailed(ucs_status_t status);

  Op* takeOp(Op::Type type);
  void releaseOp(Op* op);
  // Sends `header` and [data, data + len) with op (its header and body set).
  gcclResult_t post(Op* op, const void* data, size_t len);
  void sendControl(Kind kind, const char* text, size_t len);
  void sendHandshake(Kind kind);
  // Takes arrival `a` into posted receive `p` (meta, size, copy or
  // rendezvous); UCS_INPROGRESS when UCX's data must stay held.
  ucs_status_t deliver(const Posted& p, const Arrival& a, bool inCallback);
  void completeReceive(transport::Request* req, size_t bytes);
  void breakWith(const std::string& why, gcclResult_t code = gcclRemoteError);
  gcclResult_t checkDeparted() const;
  void closeEndpoint();
  bool waitFor(void* req, int64_t deadlineMs);

  std::shared_ptr<Worker> worker_;
  const UcpApi& api_;
  int peer_;
  ucp_ep_h ep_ = nullptr;
  ucp_ep_h boundEp_ = nullptr;  // where the peer's messages come from
  bool started_ = false;
  bool helloSeen_ = false;
  bool welcomeSeen_ = false;
  bool abandoned_ = false;  // the engine dropped the peer as failed: no flush at close
  bool endpointLost_ = false;
  bool peerFailureHandling_ = true;  // the endpoint has UCP_ERR_HANDLING_MODE_PEER
  int pidfd_ = -1;
  bool abortSent_ = false;
  bool pidWatched_ = false;
  uint64_t events_ = 0;  // completions and arrivals, for poll()'s *moved
  uint64_t eventsSeen_ = 0;
  std::vector<Posted> posted_;     // in posting order
  std::deque<Arrival> arrivals_;   // not yet received, in arrival order
  std::vector<Arrival> toFetch_;   // rendezvous arrivals matched in a callback
  std::vector<Posted> fetchInto_;  // their receives
  std::deque<std::pair<Kind, std::string>> controlOut_;  // answers owed from a callback
  std::vector<Op*> freeOps_;
  std::vector<Op*> live_;  // in flight
  std::string broken_;
  gcclResult_t brokenCode_ = gcclRemoteError;
  std::string abortReason_;
  bool peerClosed_ = false;
  int64_t lastPongMs_ = 0;
  std::string peerReport_;
  uint64_t bytesSent_ = 0;
  uint64_t bytesReceived_ = 0;
  uint64_t messagesSent_ = 0;
  uint64_t messagesReceived_ = 0;
};

}  // namespace gccl::ucx
