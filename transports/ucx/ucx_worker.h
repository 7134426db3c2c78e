// One UCP context and worker per communicator, shared by the ucx transport's
// connections to every peer (transports/ucx/ucx_connection.h).
//
// Progress. The worker is created with UCP_FEATURE_WAKEUP and never gets a
// thread of its own: the engine's loop drives it. Every connection's poll()
// and the events of the worker's wake-up fd (ucp_worker_get_efd, watched
// through the engine's Poller on behalf of one live connection) call
// progress(), which runs ucp_worker_progress until it reports nothing (a
// bounded number of rounds), then what the callbacks deferred: rendezvous
// receives to start, answers to send. Before the engine sleeps, arm()
// progresses once more and arms the fd with ucp_worker_arm; UCS_ERR_BUSY (an
// event arrived meanwhile) means progress again and do not sleep yet.
//
// Dispatch. One active-message handler (ucx_wire.h) serves every endpoint.
// UCX does not say who sent a message; it gives the endpoint to reply on
// (every message is sent with UCP_AM_SEND_FLAG_REPLY). Handshake messages
// name their sender rank and are verified by that rank's connection, which
// then binds the reply endpoint to itself (bindEndpoint); every other message
// goes to the connection its reply endpoint is bound to, and a message from
// an endpoint bound to none is dropped and logged.
//
// Threads: every call comes from the communicator's driver (as for every
// transport), so the worker runs in UCS_THREAD_MODE_SERIALIZED.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "transports/transport.h"
#include "transports/ucx/ucx_api.h"
#include "transports/ucx/ucx_wire.h"

namespace gccl::ucx {

class UcxConnection;

class Worker {
 public:
  // A context and worker for `ctx` (its rank, size, secret and poller).
  static gcclResult_t create(const UcpApi* api, const transport::TransportContext& ctx,
                             std::shared_ptr<Worker>* out);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  const UcpApi& api() const { return *api_; }
  ucp_worker_h handle() const { return worker_; }
  const transport::TransportContext& context() const { return ctx_; }
  // The worker's UCP address, for the blob.
  const std::string& address() const { return address_; }
  // This rank's nonce (in its blob) and, after setPeerNonce, a peer's.
  const uint8_t* nonce() const { return nonce_; }
  void setPeerNonce(int rank, const uint8_t nonce[kNonceBytes]);
  const uint8_t* peerNonce(int rank) const { return peerNonces_[static_cast<size_t>(rank)].data(); }

  // Progress until idle, then the deferred work; the number of UCP events.
  unsigned progress();
  // Before the engine sleeps: true once the wake-up fd is armed with nothing
  // pending; false when something happened or arrived meanwhile.
  bool arm();

  // Connections join when made and leave when destroyed; the first one
  // started watches the wake-up fd, and another takes over when it leaves.
  void attach(UcxConnection* c, int rank);
  void detach(UcxConnection* c, int rank);
  gcclResult_t startWatching(UcxConnection* c);
  // Messages from `ep` go to `c` from now on.
  void bindEndpoint(ucp_ep_h ep, UcxConnection* c);
  void unbindEndpoint(UcxConnection* c);
  // `c` has work to run once the current progress call returns.
  void defer(UcxConnection* c);
  // A connection completed or received something (arm() then declines).
  void noteActivity() { ++activity_; }
  // Requests of destroyed connections still in UCX's hands: `n` more, one
  // fewer. UCX aborts the process when a worker is destroyed while an
  // endpoint still holds requests, so the destructor waits for them and,
  // past its deadline, leaves the worker in place rather than crash.
  void noteOrphans(size_t n) { orphans_ += n; }
  void orphanDone() { --orphans_; }
  // A ucp_ep_close_nbx result: a request still in progress is kept (and
  // freed once complete) so that the worker outlives it.
  void adoptClose(void* request);

  // Whether endpoints ask for UCP_ERR_HANDLING_MODE_PEER: not when UCX_TLS
  // names shared-memory transports alone (UCX 1.13 has no peer failure
  // handling for them, and would log an error for each attempt), nor once an
  // endpoint found no wire with it.
  bool peerFailureHandling() const { return peerFailureHandling_; }
  void noPeerFailureHandling() { peerFailureHandling_ = false; }

  // "ucx (UCX 1.13.1, tcp,sm)".
  std::string describe() const;

 private:
  Worker(const UcpApi* api, const transport::TransportContext& ctx);
  gcclResult_t init();
  static ucs_status_t onMessage(void* arg, const void* header, size_t headerLength, void* data,
                                size_t length, const ucp_am_recv_param_t* param);
  ucs_status_t dispatch(const void* header, size_t headerLength, void* data, size_t length,
                        const ucp_am_recv_param_t* param);
  void runDeferred();
  void warnStranger(const char* what);
  // Frees the adopted closes that completed.
  void reapClosed();

  const UcpApi* api_;
  transport::TransportContext ctx_;
  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  int efd_ = -1;
  UcxConnection* watcher_ = nullptr;  // the connection the poller reports the fd's events to
  std::string address_;
  uint8_t nonce_[kNonceBytes] = {};
  std::vector<std::vector<uint8_t>> peerNonces_;
  std::vector<UcxConnection*> byRank_;
  std::unordered_map<ucp_ep_h, UcxConnection*> byEndpoint_;
  std::vector<ucp_ep_h> retired_;  // bound to a connection destroyed since
  std::vector<UcxConnection*> deferred_;
  std::vector<UcxConnection*> started_;  // may watch the fd, in start order
  uint64_t activity_ = 0;
  size_t orphans_ = 0;
  std::vector<void*> closing_;  // adopted endpoint closes, not complete yet
  bool peerFailureHandling_ = true;
  int64_t lastWarnMs_ = 0;
  uint64_t unwarned_ = 0;
};

}  // namespace gccl::ucx
