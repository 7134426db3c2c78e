// The UCX transport ("ucx"): gccl's messages over UCP active messages
// (ucx_connection.h says why not the tag API), with UCX loaded at run time
// (ucx_api.h) and progressed by the engine's loop alone (ucx_worker.h).
//
// Selection. Never part of "auto": the registry uses it when GCCL_TRANSPORT
// names it ("ucx", or a list such as "shm,ucx,tcp"). UCX chooses its own
// wires beneath (UCX_TLS, UCX_NET_DEVICES: shared memory, TCP, InfiniBand or
// RoCE); gccl's own shm and tcp transports are at least as fast on hosts
// without RDMA, so "auto" keeps them and does not pay UCX's start-up.
//
// Trust. The worker's address travels only in the bootstrap's blob table,
// which is authenticated with the communicator's secret; endpoints are made
// only to the ranks the registry chose this transport for, from those
// addresses. UCX itself authenticates nothing: any process that reaches the
// worker (its TCP port, its shared-memory segment) can make an endpoint and
// send to it. So every endpoint proves the secret before anything it sends
// is taken: its first message, HELLO, carries an HMAC-SHA256 (keyed with the
// communicator's secret) over both ranks, the communicator and both ranks'
// nonces from the blobs (fresh per communicator); the receiver binds the
// endpoint UCX reports the HELLO from to that rank, answers with a WELCOME
// (the same proof in the other direction), and drops (and logs) every
// message from an endpoint bound to no rank. A second endpoint claiming a
// rank already bound is refused. What this does not give: confidentiality
// or integrity of the bytes after the handshake (as with the tcp transport,
// an attacker on the path can read and alter them), and protection of UCX
// from strangers' connection attempts (they cost UCX resources; their
// messages are dropped).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transports/transport.h"
#include "transports/ucx/ucx_worker.h"

namespace gccl::ucx {

class UcxTransport final : public transport::Transport {
 public:
  explicit UcxTransport(const transport::TransportContext& ctx);
  ~UcxTransport() override;

  const char* name() const override { return "ucx"; }
  // libucp loads (GCCL_UCX_LIBRARY) and is recent enough.
  bool viable(std::string* why) override;
  // Makes the context and worker; the blob holds the worker's address.
  gcclResult_t listen(std::string* blob) override;
  // Both ranks run UCX; whether UCX has a wire between them shows at connect.
  bool canReach(const std::string& mine, const std::string& theirs) const override;
  // Makes an endpoint to each peer, sends HELLO, and progresses until every
  // peer has proved the secret and welcomed this rank (or the deadline).
  gcclResult_t connect(const std::vector<int>& peers, const std::vector<std::string>& blobs,
                       int64_t deadlineMs,
                       std::vector<std::unique_ptr<transport::Connection>>* out) override;
  std::string describe() const override;

 private:
  transport::TransportContext ctx_;
  const UcpApi* api_ = nullptr;
  std::shared_ptr<Worker> worker_;
  Blob self_;  // what listen() published
};

}  // namespace gccl::ucx
