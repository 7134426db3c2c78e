// Establishing the TCP connections of a communicator: every pair of ranks is
// joined by 1 control socket, 1 socket for asynchronous traffic and N data
// sockets (N per pair, agreed by both); the higher rank connects, the
// lower one accepts, and every socket is authenticated (handshake.h). Bytes
// from anyone else on the listening port are rejected and logged; they never
// disturb the connections being made, and what they may hold is bounded
// (acceptor.h). A connector whose connection was closed before the handshake
// completed (an acceptor under attack makes room) tries again until the
// deadline.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/net_if.h"
#include "transports/tcp/acceptor.h"
#include "transports/tcp/handshake.h"
#include "transports/tcp/tcp_connection.h"

namespace gccl::tcp {

struct MeshOptions {
  int rank = 0;
  int nranks = 1;
  int64_t sockBufBytes = 0;
  std::string congestion = "auto";           // GCCL_TCP_CONGESTION (socket.h)
  int64_t helloTimeoutMs = kMaxHelloWaitMs;  // for each connection accepted
  Credentials creds;
};

// One authenticated socket to the peer at `addr`, made by `deadlineMs`. A
// connection the peer took and then closed before proving the secret was
// most likely dropped by an acceptor making room under a flood of strangers
// (acceptor.h): it is made again, until the deadline. One that is refused is
// not (gcclRemoteError before the peer accepted: it is gone).
gcclResult_t connectOne(const SockAddr& addr, const Credentials& creds, const HelloInfo& hello,
                        int64_t deadlineMs, int* out);

class TcpMesh {
 public:
  explicit TcpMesh(const MeshOptions& options) : opt_(options) {}
  // Listens on `addr` (its port may be 0); *bound is the address peers use.
  gcclResult_t listen(const SockAddr& addr, SockAddr* bound);
  // Connects to and accepts from every peer r with dataSockets[r] > 0 (the
  // others use another transport), with that many data sockets (both ranks
  // of a pair must ask for the same number). `peers[r]` is rank r's
  // listening address. On success fds[r] holds rank r's sockets: control,
  // asynchronous lane, then data.
  gcclResult_t connectAll(const std::vector<SockAddr>& peers, const std::vector<int>& dataSockets,
                          int64_t deadlineMs, std::vector<std::vector<int>>* fds);
  // Hands over the listening socket and the strangers still on it: the
  // engine keeps refusing late comers, except, with `rejoins` (its rank,
  // ranks and credentials are this mesh's), restarted ranks rejoining.
  std::unique_ptr<transport::Listener> releaseListener(const RejoinAdmission* rejoins = nullptr);

 private:
  gcclResult_t acceptLoop(const std::vector<int>& dataSockets, int64_t deadlineMs,
                          const std::atomic<bool>* stop, std::vector<std::vector<int>>* fds);
  MeshOptions opt_;
  std::unique_ptr<Acceptor> acceptor_;
};

}  // namespace gccl::tcp
